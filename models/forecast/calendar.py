"""Public-holiday calendar features of forecast target days, from the ``holidays`` package.

A calendar is named ``COUNTRY`` or ``COUNTRY-SUBDIVISION`` (the package's ISO codes: ``GB``, ``GB-ENG``,
``US-CA``); an empty name means no holidays, so every target day reads "not a holiday, none soon".
Days are counted as days since 1970-01-01 so whole horizons are looked up with one ``searchsorted``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _split(calendar: str) -> tuple[str, str | None]:
    country, _, subdivision = calendar.partition("-")
    return country, subdivision or None


@lru_cache(maxsize=32)
def holiday_days(calendar: str, first_year: int, last_year: int) -> np.ndarray:
    """Sorted holiday dates of ``first_year..last_year`` as days since the epoch (empty without a calendar)."""
    if not calendar:
        return np.empty(0, dtype=np.int64)
    import holidays

    country, subdivision = _split(calendar)
    dates = holidays.country_holidays(country, subdiv=subdivision, years=range(first_year, last_year + 1))
    return np.sort(np.array(sorted(dates), dtype="datetime64[D]").astype(np.int64))


def holiday_features(days: np.ndarray, holidays: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """(1.0 where a day is a holiday, days until the next holiday on or after it, capped at ``cap``).

    Days to the next holiday let the model learn run-ups (orders placed before a closure) as well as
    the holiday itself; beyond ``cap`` days, or past the calendar's last year, the value is ``cap``.
    """
    days = np.asarray(days, dtype=np.int64)
    if len(holidays) == 0:
        return np.zeros(days.shape), np.full(days.shape, float(cap))
    nxt = np.searchsorted(holidays, days, side="left")
    ahead = np.where(nxt < len(holidays), holidays[np.minimum(nxt, len(holidays) - 1)] - days, cap)
    return (ahead == 0).astype(float), np.minimum(ahead, cap).astype(float)
