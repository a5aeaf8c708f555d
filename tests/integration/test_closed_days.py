"""A shop that never trades on Sundays: a Sunday night with nothing landed is a closed day, a Tuesday is an error."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from jobs import ingest
from shopml.land import PRESETS, land_order_lines

MONDAY = date(2010, 8, 2)


def _export(path, weeks: int) -> None:
    lines = ["Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"]
    for day in (MONDAY + timedelta(days=n) for n in range(7 * weeks)):
        if day.weekday() < 6:  # closed on Sundays
            lines.append(f"{day:%y%m%d},85048,GLASS BALL,2,{day} 10:00:00,6.95,13085,United Kingdom")
    path.write_text("\n".join(lines) + "\n")


def test_a_closed_weekday_lands_empty_and_a_missing_trading_day_fails(tmp_path, lake):
    _export(tmp_path / "export.csv", weeks=5)
    land_order_lines(tmp_path / "export.csv", lake.settings.landing, PRESETS["online-retail-ii"], ())
    last_saturday = MONDAY + timedelta(weeks=4, days=5)
    ingest.run(last_saturday, from_date=MONDAY, lake=lake)

    sunday = last_saturday + timedelta(days=1)
    assert ingest.run(sunday, lake=lake)["landed_lines"]["events"] == 0

    tuesday = MONDAY + timedelta(weeks=5, days=1)
    with pytest.raises(ingest.LandingError, match=rf"no events landed for {tuesday}.*about 1 events"):
        ingest.run(tuesday, lake=lake)
