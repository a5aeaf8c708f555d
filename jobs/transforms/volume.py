"""Expected daily event volume, from the shop's own weekly rhythm.

Shops trade by the week: a Monday after a quiet weekend, a closed Saturday or a
bank holiday look like anomalies against the day before, not against the same
weekday of the weeks before. A day's expected volume is the median of the same
weekday over the previous ``weeks`` weeks (a day with nothing landed counts as
no trading), from the shop's first landing on. Where that median is zero the
shop's history shows no trading on that weekday, so an empty day is expected.
"""

from __future__ import annotations

from datetime import date, timedelta
from statistics import median
from typing import Any

# Fewer reference days than this and there is no rhythm to compare with (a shop's first weeks).
MIN_REFERENCE_DAYS = 2


def expected_volume(counts: dict[date, int], day: date, weeks: int, first_landing: date) -> float | None:
    """Median of ``counts`` on the same weekday over the ``weeks`` weeks before ``day``; None without history.

    Dates missing from ``counts`` on or after ``first_landing`` count as 0 (nothing landed: no trading).
    """
    references = [day - timedelta(weeks=k) for k in range(1, weeks + 1)]
    values = [counts.get(ref, 0) for ref in references if ref >= first_landing]
    return float(median(values)) if len(values) >= MIN_REFERENCE_DAYS else None


def daily_volume(
    staged: dict[date, int], history: dict[date, int], weeks: int, first_landing: date
) -> list[dict[str, Any]]:
    """One row per date of ``staged`` for the event-volume suite.

    Columns: the staged count, the expected count, their ratio (null without history or when no
    trading is expected) and ``events_on_trading_day`` (the count, null on a day the shop's history
    says it does not trade), which must be at least 1.
    """
    counts = history | staged
    rows = []
    for day in sorted(staged):
        expected = expected_volume(counts, day, weeks, first_landing)
        count = staged[day]
        rows.append(
            {
                "landing_date": str(day),
                "staged_events": count,
                "expected_events": expected,
                "change_vs_expected": count / expected if expected else None,
                "events_on_trading_day": None if expected == 0 else count,
            }
        )
    return rows
