"""Date ranges of a run: the logical date alone, or a backfill window ending at it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class DateWindow:
    """Landing dates ``first..last`` (inclusive) processed as one batch."""

    first: date
    last: date

    @classmethod
    def ending(cls, last: date, first: date | None = None) -> DateWindow:
        first = first or last
        if first > last:
            raise ValueError(f"window starts {first} after it ends {last}")
        return cls(first, last)

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=offset) for offset in range((self.last - self.first).days + 1)]

    def predicate(self, column: str) -> str:
        """A SQL predicate selecting the window, for Delta ``replaceWhere`` and filters."""
        if self.first == self.last:
            return f"{column} = '{self.first}'"
        return f"{column} >= '{self.first}' AND {column} <= '{self.last}'"

    def __str__(self) -> str:
        return str(self.last) if self.first == self.last else f"{self.first}..{self.last}"
