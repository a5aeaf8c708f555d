"""The event-volume gate on a real lake: a shop's weekly rhythm, closed days, and backfills that warn."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow.compute as pc
import pytest

from jobs.validate import check_event_volume
from shopml import accounting
from shopml.dates import DateWindow
from shopml.quality import ValidationFailed

MONDAY = date(2010, 8, 2)
# Monday busy, Saturday quiet, Sunday closed (nothing lands): the wholesaler's week.
WEEK = [1000, 800, 800, 800, 700, 50, 0]


def _land(lake, days: dict[date, int]) -> None:
    accounting.record_stage_counts(lake, "events", "test", {day: {"staged": n} for day, n in days.items()})


def _weeks(weeks: int) -> dict[date, int]:
    return {
        MONDAY + timedelta(days=7 * week + day): count
        for week in range(weeks)
        for day, count in enumerate(WEEK)
        if count
    }


def _results(lake, day: date) -> list[dict]:
    return lake.read_arrow("ops.validation_results", filter=pc.field("landing_date") == day).to_pylist()


def test_an_odd_day_deep_in_a_backfill_is_a_warning_and_the_weekly_rhythm_passes(lake):
    days = _weeks(6)
    odd = MONDAY + timedelta(weeks=3, days=2)  # a Wednesday at a tenth of its usual volume
    days[odd] = 80
    _land(lake, days)
    window = DateWindow.ending(max(days), MONDAY)
    check_event_volume(lake, window, "run")
    [failed] = [result for result in _results(lake, window.last) if not result["success"]]
    assert failed["column"] == "change_vs_expected" and failed["severity"] == "warning"
    assert failed["unexpected_count"] == 1  # quiet Saturdays, busy Mondays and closed Sundays are fine


def test_the_runs_own_date_out_of_band_stops_and_says_what_to_change(lake):
    history = _weeks(5)
    _land(lake, history)
    night = MONDAY + timedelta(weeks=5)
    _land(lake, {night: 120})
    with pytest.raises(ValidationFailed) as failed:
        check_event_volume(lake, DateWindow.ending(night), "run")
    message = str(failed.value)
    assert f"volume_anomaly on {night}: 120 staged events vs 1,000 expected (ratio 0.12" in message
    assert "SHOPML_VOLUME_MIN_RATIO" in message and "Nothing was published to silver" in message
    assert {r["severity"] for r in _results(lake, night)} == {"critical"}


def test_an_empty_day_the_shop_trades_on_stops_the_run(lake):
    _land(lake, _weeks(5))
    night = MONDAY + timedelta(weeks=5, days=1)  # a Tuesday
    _land(lake, {night: 0})
    with pytest.raises(ValidationFailed, match=f"empty_day, volume_anomaly on {night}: 0 staged events vs 800"):
        check_event_volume(lake, DateWindow.ending(night), "run")


def test_an_empty_day_the_shop_never_trades_on_passes(lake):
    _land(lake, _weeks(5))
    sunday = MONDAY + timedelta(weeks=5, days=6)
    _land(lake, {sunday: 0})
    check_event_volume(lake, DateWindow.ending(sunday), "run")
    assert all(result["success"] for result in _results(lake, sunday))
