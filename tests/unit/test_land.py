from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from shopml.land import PRESETS, land_order_lines
from tests.shop import REAL_SHOP, needs_real_shop

NON_PRODUCT = ("POST", "M")

ONLINE_RETAIL = """Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country
489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085,United Kingdom
489434,79323P,PINK LIGHTS,12,2009-12-01 07:45:00,6.75,13085,United Kingdom
489434,POST,POSTAGE,1,2009-12-01 07:45:00,18.00,13085,United Kingdom
489435,85048,GLASS BALL,6,2009-12-02 10:00:00,7.10,,United Kingdom
C489436,85048,GLASS BALL,-2,2009-12-02 11:00:00,7.10,13085,United Kingdom
489437,21000,damaged,-40,2009-12-02 12:00:00,0,,United Kingdom
489438,21001,,0,2009-12-02 12:00:00,1.0,13085,United Kingdom
489439,21002,MUG,3,not a date,1.0,13085,United Kingdom
489440,85048,GLASS BALL,1,2010-06-01 23:30:00,7.10,13085.0,United Kingdom
"""


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def landed(tmp_path: Path):
    source = tmp_path / "export.csv"
    source.write_text(ONLINE_RETAIL)
    report = land_order_lines(source, tmp_path / "landing", PRESETS["online-retail-ii"], NON_PRODUCT)
    return report, tmp_path / "landing"


def test_every_row_is_landed_or_rejected_with_a_reason(landed):
    report, landing = landed
    assert report.reconciled and report.input_rows == 9
    assert report.rejected == {"stock_adjustment": 1, "zero_quantity": 1, "invalid_timestamp": 1}
    assert report.events_by_type == {"purchase": 5, "return": 1}
    assert json.loads((landing / "_import" / "export.csv.json").read_text())["reconciled"] is True


def test_order_lines_follow_the_landing_contract(landed):
    _, landing = landed
    first = _lines(landing / "events" / "date=2009-12-01" / "order-lines.jsonl.gz")
    assert [line["event_id"] for line in first] == ["489434-1", "489434-2", "489434-3"]
    assert first[0] | {"event_ts": None} == {
        "event_id": "489434-1",
        "event_type": "purchase",
        "user_id": "13085",
        "session_id": "489434",
        "sku": "85048",
        "quantity": 12,
        "unit_price": 6.95,
        "currency": "GBP",
        "event_ts": None,
        "order_id": "489434",
        "channel": "import",
    }
    assert first[0]["event_ts"] == "2009-12-01T07:45:00+00:00"
    assert first[2]["sku"] == "POST"  # non-product lines land, for the cleaner to count
    second = _lines(landing / "events" / "date=2009-12-02" / "order-lines.jsonl.gz")
    anonymous, cancelled = second
    assert anonymous["user_id"] is None
    assert cancelled["event_type"] == "return" and cancelled["quantity"] == 2
    summer = _lines(landing / "events" / "date=2010-06-01" / "order-lines.jsonl.gz")
    assert summer[0]["event_ts"] == "2010-06-01T23:30:00+01:00"  # UK summer time, on its local trading day
    assert summer[0]["user_id"] == "13085"  # a float-formatted id is the same customer


def test_product_snapshots_hold_the_catalogue_known_so_far(landed):
    _, landing = landed
    first = {p["sku"]: p for p in _lines(landing / "products" / "date=2009-12-01" / "products.jsonl.gz")}
    assert set(first) == {"85048", "79323P"}
    assert first["85048"] == {
        "sku": "85048",
        "title": "GLASS BALL",
        "unit_price": 6.95,
        "category": None,
        "brand": None,
        "active": True,
    }
    second = {p["sku"]: p for p in _lines(landing / "products" / "date=2009-12-02" / "products.jsonl.gz")}
    assert set(second) == {"85048", "79323P"} and second["85048"]["unit_price"] == 7.10


def test_shopify_preset_marks_cancelled_orders_as_returns(tmp_path: Path):
    source = tmp_path / "orders_export.csv"
    source.write_text(
        "Name,Email,Created at,Cancelled at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku\n"
        "#1001,a@example.com,2026-01-05 10:00:00 +0100,,2,Mug,9.50,MUG-1\n"
        "#1002,,2026-01-05 11:00:00 +0100,2026-01-06 09:00:00 +0100,1,Mug,9.50,MUG-1\n"
    )
    report = land_order_lines(source, tmp_path / "landing", PRESETS["shopify"], NON_PRODUCT)
    assert report.reconciled and report.events_by_type == {"purchase": 1, "return": 1}
    lines = _lines(tmp_path / "landing" / "events" / "date=2026-01-05" / "order-lines.jsonl.gz")
    assert [(line["user_id"], line["event_type"]) for line in lines] == [
        ("a@example.com", "purchase"),
        (None, "return"),
    ]


def test_a_missing_column_names_what_the_export_has(tmp_path: Path):
    source = tmp_path / "export.csv"
    source.write_text("order,sku\n1,A\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['Invoice'.*it has \['order', 'sku'\]"):
        land_order_lines(source, tmp_path / "landing", PRESETS["online-retail-ii"], NON_PRODUCT)


@pytest.mark.slow
@needs_real_shop
def test_the_real_shop_imports_with_every_line_accounted_for(tmp_path: Path):
    report = land_order_lines(REAL_SHOP, tmp_path, PRESETS["online-retail-ii"], NON_PRODUCT)
    assert report.input_rows == 525_461 and report.reconciled
    assert report.events_by_type["return"] == 10_206  # every "C" invoice line (its README's count)
    assert set(report.rejected) == {"stock_adjustment"}
    assert report.first_date == "2009-12-01" and report.last_date == "2010-12-09"
