from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from jobs.transforms.raw import PRODUCT_FIELDS, parse_events, parse_records

GOOD = {
    "event_id": "e1",
    "event_type": "View",
    "user_id": "u1",
    "session_id": "s1",
    "sku": "SKU-1",
    "quantity": 1,
    "unit_price": 9.99,
    "currency": "eur",
    "event_ts": "2026-01-02T10:00:00+01:00",
}


def _bronze(spark, *payloads: str):
    rows = [(date(2026, 1, 2), "f.jsonl", payload) for payload in payloads]
    return spark.createDataFrame(rows, "landing_date date, source_file string, payload string")


def _reasons(frame) -> list[str | None]:
    return [row.quarantine_reason for row in frame.orderBy("payload").collect()]


def test_valid_event_is_typed_and_normalised(spark):
    row = parse_events(_bronze(spark, json.dumps(GOOD)), ()).first()
    assert row.quarantine_reason is None
    assert row.event_type == "view"
    assert row.currency == "EUR"
    assert row.quantity == 1
    assert row.unit_price == Decimal("9.99")
    # Offsets are honoured: 10:00 at +01:00 is 09:00 UTC.
    assert row.event_ts.astimezone(UTC) == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"event_id": "e1", "event_type":', "malformed_json"),
        ("[1, 2]", "malformed_json"),
        ("", "malformed_json"),
        (json.dumps({**GOOD, "event_id": None}), "missing_field:event_id"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "sku"}), "missing_field:sku"),
        (json.dumps({**GOOD, "event_ts": "  "}), "missing_field:event_ts"),
        (json.dumps({**GOOD, "quantity": "two"}), "invalid_type:quantity"),
        (json.dumps({**GOOD, "unit_price": "abc"}), "invalid_type:unit_price"),
        (json.dumps({**GOOD, "event_ts": "yesterday"}), "invalid_type:event_ts"),
        (json.dumps({**GOOD, "event_type": "purchase", "quantity": None}), "missing_field:quantity"),
        (json.dumps({**GOOD, "event_type": "return", "unit_price": None}), "missing_field:unit_price"),
        (json.dumps({**GOOD, "event_type": "purchase", "sku": "post"}), "non_product_line"),
    ],
)
def test_unusable_lines_get_a_reason(spark, payload, reason):
    parsed = parse_events(_bronze(spark, payload), ("POST", "DISCOUNT"))
    assert _reasons(parsed) == [reason]


def test_a_line_that_is_not_utf8_is_an_encoding_error(spark):
    """Latin-1 bytes in a landed line (Spark keeps the bytes as they landed, and they parse as JSON)."""
    line = json.dumps({**GOOD, "event_id": "cafe-1"}).encode().replace(b"cafe-1", b"caf\xe9-1")
    bronze = _bronze(spark, "placeholder").withColumn("payload", F.unhex(F.lit(line.hex())).cast("string"))
    assert _reasons(parse_events(bronze, ())) == ["encoding_error"]


def test_views_need_no_quantity_or_price(spark):
    view = {k: v for k, v in GOOD.items() if k not in ("quantity", "unit_price")}
    assert _reasons(parse_events(_bronze(spark, json.dumps(view)), ())) == [None]


def test_products_parse_booleans_and_nullable_category(spark):
    product = {"sku": "SKU-1", "title": "Mug", "category": None, "brand": None, "unit_price": "4.50", "active": True}
    broken = {**product, "active": "maybe"}
    parsed = parse_records(_bronze(spark, json.dumps(product), json.dumps(broken)), PRODUCT_FIELDS)
    rows = {row.payload: row for row in parsed.collect()}
    good = rows[json.dumps(product)]
    assert (good.active, good.category, good.unit_price, good.quarantine_reason) == (True, None, Decimal("4.50"), None)
    assert rows[json.dumps(broken)].quarantine_reason == "invalid_type:active"
