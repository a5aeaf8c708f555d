from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from jobs.transforms.cleaning import (
    drop_duplicate_events,
    flag_bot_sessions,
    flag_conflicting_duplicates,
    latest_per_key,
    to_order_lines,
    with_catalogue_check,
    with_event_date,
)

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)
SCHEMA = "event_id string, landing_date date, event_ts timestamp, payload string, session_id string, user_agent string"


def _events(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def test_duplicates_keep_first_landing_and_drop_replays(spark):
    ts = datetime(2026, 1, 1, 12)
    events = _events(
        spark,
        [
            ("a", D1, ts, "a1", "s", None),
            ("a", D1, ts, "a1", "s", None),  # exact duplicate line
            ("a", D2, ts, "a2", "s", None),  # resent the next day
            ("b", D2, ts, "b", "s", None),
            ("c", D2, ts, "c", "s", None),  # replay of an event an earlier landing delivered
        ],
    )
    loaded = spark.createDataFrame([("c",)], "event_id string")
    kept = {(row.event_id, row.landing_date, row.payload) for row in drop_duplicate_events(events, loaded).collect()}
    assert kept == {("a", D1, "a1"), ("b", D2, "b")}


def test_a_resend_that_says_something_else_is_a_conflict_not_a_duplicate(spark):
    ts = datetime(2026, 1, 1, 12)
    events = spark.createDataFrame(
        [
            ("a", D1, ts, "a1", "SKU-1", 1),
            ("a", D2, ts, "a1 again", "SKU-1", 1),  # the same event resent: a duplicate
            ("b", D1, ts, "b1", "SKU-1", 1),
            ("b", D2, ts, "b2", "SKU-1", 5),  # the same id, another quantity: which is true?
            ("c", D1, ts, "c", "SKU-2", None),
            ("c", D1, ts, "c'", "SKU-2", None),  # nulls compare equal
        ],
        "event_id string, landing_date date, event_ts timestamp, payload string, sku string, quantity int",
    )
    flagged = {(r.event_id, r.payload): r.conflicting_duplicate for r in flag_conflicting_duplicates(events).collect()}
    assert [key for key, conflict in flagged.items() if conflict] == [("b", "b2")]


def test_bots_by_browsing_per_session_and_day_and_by_user_agent(spark):
    ts = datetime(2026, 1, 1, 12)
    rows = [(f"busy{i}", D1, ts, "x", "busy", None, "view") for i in range(4)]
    rows += [("busy-buys", D1, ts, "x", "busy", None, "purchase")]  # a scraper's order goes with it
    rows += [(f"split{i}", D1 if i < 2 else D2, ts, "x", "split", None, "view") for i in range(4)]
    rows += [(f"bulk{i}", D1, ts, "x", "bulk-order", None, "purchase") for i in range(6)]
    rows += [("crawl", D1, ts, "x", "quiet", "Mozilla/5.0 (compatible; Googlebot/2.1)", "view")]
    rows += [("human", D1, ts, "x", "quiet2", "Mozilla/5.0", "view")]
    events = spark.createDataFrame(rows, f"{SCHEMA}, event_type string")
    flagged = {row.event_id: row.is_bot for row in flag_bot_sessions(events, 3).collect()}
    assert all(flagged[f"busy{i}"] for i in range(4)) and flagged["busy-buys"]
    assert not any(flagged[f"split{i}"] for i in range(4))  # 2 events a day each: a person
    assert not any(flagged[f"bulk{i}"] for i in range(6))  # a 6-line order is a customer, not a bot
    assert flagged["crawl"] is True
    assert flagged["human"] is False


def test_late_events_go_to_their_true_utc_date(spark):
    events = _events(spark, [("late", D2, datetime(2025, 12, 30, 23, 30), "x", "s", None)])
    assert with_event_date(events).first().event_date == date(2025, 12, 30)


def test_order_lines_sign_returns_and_fall_back_to_event_id(spark):
    events = spark.createDataFrame(
        [
            ("p", "purchase", "u", "SKU-1", 2, Decimal("5.00"), "EUR", datetime(2026, 1, 1), D1, D1, "o1", "nightly"),
            ("r", "return", "u", "SKU-1", 1, Decimal("5.00"), "EUR", datetime(2026, 1, 2), D2, D2, None, "nightly"),
            ("v", "view", "u", "SKU-1", 1, Decimal("5.00"), "EUR", datetime(2026, 1, 2), D2, D2, None, "nightly"),
        ],
        "event_id string, event_type string, user_id string, sku string, quantity int, unit_price decimal(12,2), "
        "currency string, event_ts timestamp, event_date date, landing_date date, order_id string, feed string",
    )
    lines = {row.event_id: row for row in to_order_lines(events).collect()}
    assert set(lines) == {"p", "r"}
    assert (lines["p"].quantity, lines["p"].revenue, lines["p"].order_id) == (2, Decimal("10.00"), "o1")
    assert (lines["r"].quantity, lines["r"].revenue, lines["r"].order_id) == (-1, Decimal("-5.00"), "r")


def test_latest_per_key_keeps_the_later_line(spark):
    rows = spark.createDataFrame(
        [(D1, "SKU-1", datetime(2026, 1, 1, 8), "old"), (D1, "SKU-1", datetime(2026, 1, 1, 20), "new")],
        "landing_date date, sku string, snapshot_ts timestamp, payload string",
    )
    assert [row.payload for row in latest_per_key(rows, ["landing_date", "sku"], "snapshot_ts").collect()] == ["new"]


def test_catalogue_check_flags_unknown_and_missing_skus_and_keeps_every_row(spark):
    rows = spark.createDataFrame([("e1", "SKU-1"), ("e2", "SKU-9"), ("e3", None)], "event_id string, sku string")
    # The catalogue lists a SKU once per snapshot: a SKU seen twice must not duplicate rows.
    catalogue = spark.createDataFrame([("SKU-1",), ("SKU-1",), ("SKU-2",)], "sku string")
    checked = with_catalogue_check(rows, catalogue)
    assert checked.columns == ["event_id", "sku", "sku_in_catalogue"]
    assert sorted((row.event_id, row.sku_in_catalogue) for row in checked.collect()) == [
        ("e1", True),
        ("e2", False),
        ("e3", False),
    ]
    without_catalogue = with_catalogue_check(rows, None)
    assert {row.sku_in_catalogue for row in without_catalogue.collect()} == {None}
