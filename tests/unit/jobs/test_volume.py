from __future__ import annotations

from datetime import date, timedelta

from jobs.transforms.volume import daily_volume, expected_volume

MONDAY = date(2026, 3, 2)


def _weeks(weekday_counts: list[int], start: date = MONDAY, weeks: int = 4) -> dict[date, int]:
    """``weeks`` weeks of a shop trading ``weekday_counts[i]`` events on weekday i (0 = Monday); 0 lands nothing."""
    return {
        start + timedelta(days=7 * week + day): count
        for week in range(weeks)
        for day, count in enumerate(weekday_counts)
        if count
    }


def test_monday_after_a_quiet_weekend_is_compared_with_earlier_mondays():
    history = _weeks([1000, 800, 800, 800, 700, 50, 0])
    monday = MONDAY + timedelta(weeks=4)
    [row] = daily_volume({monday: 950}, history, weeks=4, first_landing=MONDAY)
    assert row["expected_events"] == 1000
    assert row["change_vs_expected"] == 0.95
    assert row["events_on_trading_day"] == 950


def test_a_weekday_the_shop_never_trades_on_expects_an_empty_day():
    history = _weeks([1000, 800, 800, 800, 700, 50, 0])
    sunday = MONDAY + timedelta(weeks=4, days=6)
    assert expected_volume(history, sunday, weeks=4, first_landing=MONDAY) == 0
    [row] = daily_volume({sunday: 0}, history, weeks=4, first_landing=MONDAY)
    assert row["events_on_trading_day"] is None and row["change_vs_expected"] is None


def test_one_closed_holiday_does_not_move_the_median():
    history = _weeks([1000, 800, 800, 800, 700, 50, 0])
    del history[MONDAY + timedelta(weeks=2)]  # a bank holiday Monday: nothing landed
    assert expected_volume(history, MONDAY + timedelta(weeks=4), weeks=4, first_landing=MONDAY) == 1000


def test_an_empty_day_where_the_shop_trades_is_flagged_by_the_trading_day_column():
    history = _weeks([1000, 800, 800, 800, 700, 50, 0])
    [row] = daily_volume({MONDAY + timedelta(weeks=4): 0}, history, weeks=4, first_landing=MONDAY)
    assert row["events_on_trading_day"] == 0 and row["change_vs_expected"] == 0


def test_no_expectation_before_the_shop_has_history():
    assert expected_volume({}, MONDAY, weeks=4, first_landing=MONDAY) is None
    [row] = daily_volume({MONDAY: 10}, {}, weeks=4, first_landing=MONDAY)
    assert row["expected_events"] is None and row["change_vs_expected"] is None and row["events_on_trading_day"] == 10


def test_days_of_the_window_count_as_history_for_later_days():
    window = _weeks([100, 100, 100, 100, 100, 0, 0], weeks=3)
    rows = daily_volume(window, {}, weeks=4, first_landing=MONDAY)
    last_monday = next(row for row in rows if row["landing_date"] == str(MONDAY + timedelta(weeks=2)))
    assert last_monday["expected_events"] == 100
    assert rows[0]["expected_events"] is None  # the first Monday has no earlier Monday
