"""The pure near-real-time transforms and the watermark table, on hand-made data with hand-computed answers."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from jobs.transforms import realtime
from models.recommend.repeat import PAIR_COLUMNS, summarise_purchases, suppressed_repeats
from shopml.config.recommend import FilterConfig
from shopml.lake import Lake
from shopml.watermark import (
    Watermark,
    commit_watermark,
    misnamed_files,
    pending_files,
    processed_files,
    read_watermark,
    record_processed,
)

DAY_END = datetime(2026, 1, 6, tzinfo=UTC)  # end of feature day 2026-01-05


def _ts(hour: int, minute: int = 0, day: int = 6) -> pd.Timestamp:
    return pd.Timestamp(datetime(2026, 1, day, hour, minute, tzinfo=UTC))


def _events(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["event_id", "event_type", "user_id", "sku", "quantity", "event_ts"])


EVENTS = _events(
    [
        ("e1", "view", "u1", "A", 1, _ts(9)),
        ("e2", "purchase", "u1", "B", 2, _ts(9, 5)),
        ("e3", "view", None, "A", 1, _ts(9, 10)),
        ("e4", "add_to_cart", "u2", "A", 1, _ts(9, 20)),
        ("e5", "view", "u2", "C", 1, _ts(7)),
    ]
)


def test_stock_is_the_snapshot_minus_purchases_after_it_floored_at_zero():
    snapshots = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "on_hand": [5, 2, 7],
            "on_order": [0, 4, 0],
            "lead_time_days": [3, 3, 3],
            "snapshot_ts": [_ts(10, day=5), _ts(12, day=5), _ts(12, day=5)],
        }
    )
    purchases = pd.DataFrame(
        {
            "sku": ["A", "A", "B", "D"],
            "quantity": [2, 1, 3, 1],
            "event_ts": [_ts(9, day=5), _ts(11, day=5), _ts(13, day=5), _ts(13, day=5)],
        }
    )
    stock = realtime.estimate_on_hand(snapshots, purchases).set_index("sku")
    assert stock["on_hand"].to_dict() == {"A": 4, "B": 0, "C": 7}  # A's 09:00 sale is in its 10:00 snapshot
    assert stock["units_sold_since"].to_dict() == {"A": 1, "B": 3, "C": 0}
    assert stock.loc["B", "on_order"] == 4
    assert realtime.sold_out_skus(stock.reset_index()) == {"B"}


def test_stream_events_are_added_to_the_interactions_the_ranker_reads():
    interactions = pd.DataFrame(
        {
            "feature_date": [DAY_END.date() - timedelta(days=1)],
            "user_id": ["u1"],
            "sku": ["A"],
            "strength": [2.0],
            "n_views": [2],
            "n_carts": [0],
            "n_purchases": [0],
            "last_interaction_ts": [_ts(10, day=5)],
            "user": [0],
            "item": [0],
        }
    )
    weights = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    merged = realtime.add_recent_interactions(interactions, EVENTS, weights, DAY_END).set_index(["user_id", "sku"])
    just_before_end = pd.Timestamp(DAY_END) - pd.Timedelta(microseconds=1)
    assert merged.loc[("u1", "A"), ["strength", "n_views", "n_carts", "n_purchases"]].tolist() == [3.0, 3, 0, 0]
    assert merged.loc[("u1", "A"), "last_interaction_ts"] == just_before_end
    assert merged.loc[("u1", "B"), ["strength", "n_purchases"]].tolist() == [5.0, 1]
    assert merged.loc[("u2", "A"), ["strength", "n_carts"]].tolist() == [3.0, 1]
    assert len(merged) == 4  # the anonymous view is nobody's interaction
    unchanged = realtime.add_recent_interactions(interactions, EVENTS.iloc[:0], weights, DAY_END)
    assert unchanged["strength"].tolist() == [2.0]


def test_last_hour_activity_and_trending_skus():
    activity = realtime.user_activity(EVENTS, _ts(8, 30)).set_index("user_id")
    assert activity[["n_views", "n_carts", "n_purchases"]].to_dict("index") == {
        "u1": {"n_views": 1, "n_carts": 0, "n_purchases": 1},
        "u2": {"n_views": 0, "n_carts": 1, "n_purchases": 0},
    }
    assert activity.loc["u1", "last_event_ts"] == _ts(9, 5)
    items = pd.DataFrame({"sku": ["A", "B", "C"], "views_7d": [167, 0, 0]})
    trending = realtime.trending_skus(EVENTS, items, _ts(8, 30), hours=1.0, top_n=2)
    # A: 2 views in the hour against (167 + 1) / 168 = 1 view an hour usually; B: no views, trend 0.
    assert trending["sku"].tolist() == ["A", "B"]
    assert trending["trend"].tolist() == pytest.approx([2.0, 0.0])


def test_affected_users_and_skus():
    assert realtime.active_users(EVENTS) == {"u1", "u2"}
    assert realtime.purchased_skus(EVENTS) == {"B"}
    lists = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "sku": ["A", "B", "C", "B"]})
    assert realtime.holders(lists, ["B", "Z"]) == {"u1", "u3"}


def test_stream_purchases_bring_the_purchase_history_up_to_now():
    nightly_lines = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3", "u3"],
            "sku": ["A", "A", "B", "C", "C"],
            "quantity": [1.0, 2.0, 1.0, 1.0, 4.0],
            "event_date": [
                date(2025, 12, 1),
                date(2025, 12, 21),
                date(2026, 1, 2),
                date(2025, 11, 1),
                date(2025, 12, 1),
            ],
        }
    )
    feature_day, today = date(2026, 1, 5), date(2026, 1, 7)
    nightly = summarise_purchases(nightly_lines, feature_day, half_life_days=30.0)
    stream = _events(
        [
            ("s1", "purchase", "u1", "A", 3, _ts(9, day=6)),  # bought again
            ("s2", "purchase", "u2", "D", 1, _ts(10, day=7)),  # a first purchase
            ("s3", "purchase", None, "C", 1, _ts(11, day=7)),  # anonymous: nobody's history
            ("s4", "view", "u3", "C", 1, _ts(12, day=7)),
        ]
    )

    now = realtime.add_recent_purchases(nightly, stream, today, half_life_days=30.0)

    # The pairs are those of the whole history summarised today; the SKUs' habits stay the nightly's.
    everything = pd.concat(
        [
            nightly_lines,
            pd.DataFrame(
                {
                    "user_id": ["u1", "u2"],
                    "sku": ["A", "D"],
                    "quantity": [3.0, 1.0],
                    "event_date": [date(2026, 1, 6), date(2026, 1, 7)],
                }
            ),
        ],
        ignore_index=True,
    )
    expected = summarise_purchases(everything, today, half_life_days=30.0)
    columns = ["user_id", "sku", *PAIR_COLUMNS]
    got = now.pairs[columns].sort_values(["user_id", "sku"], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected.pairs[columns].sort_values(["user_id", "sku"], ignore_index=True))
    assert now.as_of == today and len(now.baskets) == len(nightly.baskets) + 2
    pd.testing.assert_frame_equal(now.skus, nightly.skus)
    # D, never bought before the feature day, is rarely re-bought: u2 just bought it, so it is suppressed now.
    rule = FilterConfig(recent_purchase_days=30, repeat_min_share=0.1)
    items = pd.DataFrame({"sku": ["A", "B", "C", "D"], "category": ["x"] * 4})
    before = set(map(tuple, suppressed_repeats(nightly, items, rule).to_numpy()))
    after = set(map(tuple, suppressed_repeats(now, items, rule).to_numpy()))
    assert ("u2", "D") not in before and ("u2", "D") in after
    unchanged = realtime.add_recent_purchases(nightly, stream.iloc[:0], feature_day, half_life_days=30.0)
    pd.testing.assert_frame_equal(
        unchanged.pairs[columns].sort_values(["user_id", "sku"], ignore_index=True),
        nightly.pairs[columns].sort_values(["user_id", "sku"], ignore_index=True),
    )


def test_sold_out_skus_are_marked_out_of_stock_and_others_keep_their_status():
    items = pd.DataFrame(
        {"sku": ["A", "B", "C"], "stock_status": ["in_stock", "low", "unknown"], "on_hand": [9.0, 2.0, np.nan]}
    )
    stock = pd.DataFrame({"sku": ["A", "B"], "on_hand": [0, 1]})
    marked = realtime.mark_sold_out(items, stock).set_index("sku")
    assert marked["stock_status"].to_dict() == {"A": "out_of_stock", "B": "low", "C": "unknown"}
    assert marked.loc["A", "on_hand"] == 0 and np.isnan(marked.loc["C", "on_hand"])


def test_payloads_have_the_served_shape():
    lists = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "rank": np.array([2, 1, 1], dtype=np.int32),
            "sku": ["B", "A", "C"],
            "score": [0.5, 0.123456789, np.nan],
            "reason": ["retrieval", "similar_to:C", "trending"],
            "is_fallback": [False, False, True],
        }
    )
    assert realtime.recommendation_payloads(lists, digits=3) == {
        "u1": {
            "is_fallback": False,
            "items": [
                {"sku": "A", "score": 0.123, "reason": "similar_to:C"},
                {"sku": "B", "score": 0.5, "reason": "retrieval"},
            ],
        },
        "u2": {"is_fallback": True, "items": [{"sku": "C", "score": None, "reason": "trending"}]},
    }
    # Re-ranked users without this list (no buy-again list any more) get an empty one.
    emptied = realtime.recommendation_payloads(lists[lists["user_id"] == "u2"], digits=3, users=["u2", "u3"])
    assert emptied == {
        "u2": {"is_fallback": True, "items": [{"sku": "C", "score": None, "reason": "trending"}]},
        "u3": {"is_fallback": False, "items": []},
    }
    plan = pd.DataFrame(
        {"sku": ["A"], "on_hand": np.array([3], dtype=np.int32), "days_of_cover": [np.inf], "status": ["reorder"]}
    )
    payloads = realtime.inventory_payloads(plan, ["on_hand", "days_of_cover", "status"], digits=2)
    assert payloads == {"A": {"on_hand": 3, "days_of_cover": None, "status": "reorder"}}
    assert type(payloads["A"]["on_hand"]) is int


def test_pending_files_are_the_ready_producer_named_ones_the_ledger_lacks_in_name_order(tmp_path):
    for name in [
        "batch-20260106T101000Z-0000.jsonl",
        "batch-20260106T100500Z-0001.jsonl",
        "batch-20260106T100500Z-0000.jsonl",
        "batch-20260106T101500Z-0000.jsonl.tmp",  # still being written
        ".batch-20260106T102000Z-0000.jsonl",
        "batch-20260106T100000Z-0000.jsonl",
        "manual-fix.jsonl",  # outside the producer contract: set aside, never taken
    ]:
        (tmp_path / name).write_text("{}\n")
    # The ledger holds 10:00 and a 10:10 of another size (rewritten since): 10:10 is taken again.
    processed = {("batch-20260106T100000Z-0000.jsonl", 3), ("batch-20260106T101000Z-0000.jsonl", 99)}
    names = [p.name for p in pending_files(tmp_path, processed, 10, (".jsonl",))]
    assert names == [
        "batch-20260106T100500Z-0000.jsonl",
        "batch-20260106T100500Z-0001.jsonl",
        "batch-20260106T101000Z-0000.jsonl",
    ]
    assert [p.name for p in pending_files(tmp_path, set(), 1, (".jsonl",))] == ["batch-20260106T100000Z-0000.jsonl"]
    assert pending_files(tmp_path / "missing", set(), 5, (".jsonl",)) == []
    assert [p.name for p in misnamed_files(tmp_path, (".jsonl",))] == ["manual-fix.jsonl"]


def _counts(day: date, landed: int, silver: int, duplicates: int = 0) -> dict:
    return {
        "landing_date": day,
        "landed": landed,
        "quarantined_clean": 1,
        "bots": 0,
        "duplicates": duplicates,
        "staged": silver,
        "quarantined_validate": landed - 1 - duplicates - silver,
        "silver": silver,
    }


def test_the_ledger_records_each_file_and_sums_its_rows_into_the_row_accounting(settings, tmp_path):
    lake = Lake(settings)
    day = date(2026, 1, 6)
    first, second = (tmp_path / f"batch-20260106T10{m}00Z-0000.jsonl" for m in ("00", "05"))
    first.write_text('{"a": 1}\n')
    second.write_text('{"b": 2}\n')
    at = datetime(2026, 1, 6, 10, 5, tzinfo=UTC)
    record_processed(lake, "events", [first], "run-1", at, {first.name: _counts(day, 10, 7)})
    record_processed(lake, "events", [second], "run-2", at, {second.name: _counts(day, 5, 2, duplicates=1)})

    assert processed_files(lake, "events") == {(first.name, 9), (second.name, 9)}
    assert processed_files(lake, "other") == set()
    row = next(r for r in lake.read_arrow("ops.stream_files").to_pylist() if r["file_name"] == first.name)
    assert row["sha256"] == hashlib.sha256(b'{"a": 1}\n').hexdigest() and row["run_id"] == "run-1"
    (accounted,) = lake.read_arrow("ops.row_accounting").to_pylist()
    assert accounted["dataset"] == "events_stream" and accounted["landing_date"] == day
    assert (accounted["landed"], accounted["silver"], accounted["duplicates"]) == (15, 9, 1)
    assert (accounted["quarantined_clean"], accounted["quarantined_validate"]) == (2, 3)
    assert accounted["run_id"] == "run-2"


def test_the_watermark_is_one_row_per_stream_replaced_in_place(settings):
    lake = Lake(settings)
    assert read_watermark(lake, "events") == Watermark("events")
    at = datetime(2026, 1, 6, 10, 6, tzinfo=UTC)
    first = Watermark("events", "batch-a.jsonl", 1, 10, {"recommendations": "v1"}, "run-1", at)
    commit_watermark(lake, first)
    commit_watermark(lake, Watermark("clicks", "batch-z.jsonl", 2, 5, {}, "run-1", at))
    second = Watermark("events", "batch-b.jsonl", 1, 7, {"recommendations": "v2", "inventory": "v1"}, "run-2", at)
    commit_watermark(lake, second)
    assert read_watermark(lake, "events") == second
    assert read_watermark(lake, "clicks").last_file == "batch-z.jsonl"
    assert len(lake.read_arrow("ops.stream_watermark")) == 2
