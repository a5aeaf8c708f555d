from __future__ import annotations

from datetime import date

import pytest

from shopml.dates import DateWindow


def test_single_day_window():
    window = DateWindow.ending(date(2026, 1, 3))
    assert window.dates() == [date(2026, 1, 3)]
    assert window.predicate("landing_date") == "landing_date = '2026-01-03'"


def test_backfill_window_lists_every_day_in_order():
    window = DateWindow.ending(date(2026, 1, 3), date(2026, 1, 1))
    assert window.dates() == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    assert window.predicate("d") == "d >= '2026-01-01' AND d <= '2026-01-03'"
    assert str(window) == "2026-01-01..2026-01-03"


def test_window_must_not_run_backwards():
    with pytest.raises(ValueError, match="after it ends"):
        DateWindow.ending(date(2026, 1, 1), date(2026, 1, 2))
