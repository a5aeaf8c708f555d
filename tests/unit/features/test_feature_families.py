"""Every feature family on the tiny frames of conftest.py, against values worked out by hand."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from jobs.transforms.features import (
    build_item_cooccurrence,
    build_item_features,
    build_sku_daily_demand,
    build_user_features,
    build_user_item_interactions,
    plan_corrections,
    summarise_activity,
)
from shopml.catalog import spec
from shopml.config.features import FeaturesConfig
from tests.unit.features.feature_rows import AS_OF, BASE_EVENTS, event

CONFIG = FeaturesConfig()


def by_key(frame, *keys):
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row.asDict() for row in frame.collect()}


@pytest.fixture(scope="module")
def activity(frames):
    def build(event_rows=BASE_EVENTS, config=CONFIG):
        data = frames(event_rows)
        return summarise_activity(data["events"], data["order_lines"], AS_OF, AS_OF, config).persist(), data

    return build


def build_all(act, data, inventory=True):
    stock = data["inventory"] if inventory else None
    return {
        "gold.user_features": build_user_features(act, data["products"], AS_OF, CONFIG),
        "gold.item_features": build_item_features(act, data["products"], stock, AS_OF, CONFIG),
        "gold.user_item_interactions": build_user_item_interactions(act, AS_OF, CONFIG),
        "gold.item_cooccurrence": build_item_cooccurrence(act, AS_OF, CONFIG),
        "gold.sku_daily_demand": build_sku_daily_demand(act, data["products"], stock, AS_OF, CONFIG),
    }


@pytest.fixture(scope="module")
def base(activity):
    """The five families built once on the base events: frames and their collected rows."""
    act, data = activity()
    frames = build_all(act, data)
    return {"frames": frames, "rows": {table: frame.collect() for table, frame in frames.items()}, "data": data}


def rows_by(base, table, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r.asDict() for r in base["rows"][table]}


def test_every_family_has_the_declared_columns(base):
    for table, frame in base["frames"].items():
        assert frame.schema == spec(table).spark_schema(), table


def test_user_features(base):
    users = rows_by(base, "gold.user_features", "user_id")
    assert set(users) == {"u1", "u2"}  # anonymous traffic has no user row
    u1 = users["u1"]
    # orders: o1 on D (2 × 10.00), o2 on 02-20 (1 × 5.00, inside 28 days: window starts 02-12); the 12-01 view is
    # outside the 90-day window (starts 2023-12-12), the 01-01 view inside.
    assert (u1["orders_1d"], u1["orders_7d"], u1["orders_28d"], u1["orders_90d"]) == (1, 1, 2, 2)
    assert (u1["revenue_1d"], u1["revenue_7d"], u1["revenue_28d"], u1["revenue_90d"]) == (20.0, 20.0, 25.0, 25.0)
    assert u1["recency_days"] == 0
    assert u1["view_to_cart_rate"] == pytest.approx(1 / 4)  # views A(D), B, C, A(01-01); one cart
    assert u1["cart_to_purchase_rate"] == 1.0  # 2 purchases / 1 cart, capped
    assert u1["sessions_28d"] == 4  # s1, s2, s2b, s3
    assert u1["return_rate"] == pytest.approx(1 / 3)  # 1 of 3 units returned
    assert u1["avg_unit_price"] == pytest.approx(25 / 3)
    assert u1["days_since_first_seen"] == 69  # 2024-01-01 → 2024-03-10
    assert u1["last_purchased_skus"] == ["A", "C"]
    # interactions: A 4 (view, cart, purchase, old view) and B 1 are shoes, C 2 (view, purchase) hats
    assert u1["category_affinity"] == pytest.approx({"shoes": 5 / 7, "hats": 2 / 7})
    u2 = users["u2"]
    assert (u2["orders_1d"], u2["orders_7d"], u2["revenue_7d"], u2["recency_days"]) == (0, 1, 17.0, 1)
    assert (u2["view_to_cart_rate"], u2["cart_to_purchase_rate"], u2["return_rate"]) == (0.5, 1.0, 0.0)
    assert u2["category_affinity"] == {"shoes": 1.0}
    assert (u2["days_since_first_seen"], u2["last_purchased_skus"]) == (1, ["B"])


def test_user_first_seen_is_carried_from_the_previous_day(activity, spark):
    act, data = activity()
    previous = spark.createDataFrame(
        [(AS_OF - timedelta(days=1), "u1", 200), (AS_OF - timedelta(days=1), "gone", 5)],
        "feature_date date, user_id string, days_since_first_seen int",
    )
    users = by_key(build_user_features(act, data["products"], AS_OF, CONFIG, previous), "user_id")
    assert users["u1"]["days_since_first_seen"] == 201
    assert users["u2"]["days_since_first_seen"] == 1  # not in the previous day: first seen in the window
    assert "gone" not in users  # no event in 90 days


def test_item_features(base):
    items = rows_by(base, "gold.item_features", "sku")
    a, b, c, d = items["A"], items["B"], items["C"], items["D"]
    assert (a["category"], a["brand"], a["active"], a["unit_price"]) == ("shoes", "b1", True, 10.0)
    assert a["price_change_7d"] == pytest.approx(-0.2)  # 12.50 on 03-03 → 10.00
    assert (a["views_1d"], a["views_7d"], a["views_28d"]) == (2, 3, 3)  # u1 + anonymous on D, u2 on 03-09
    assert (a["units_sold_1d"], a["units_sold_7d"], a["units_sold_28d"]) == (2.0, 2.0, 2.0)
    assert a["trend_7_28"] == pytest.approx((5 / 7) / (5 / 28))  # 3 views + 1 cart + 1 purchase, all in 7 days
    assert a["conversion_rate"] == pytest.approx(1 / 3)
    assert a["return_rate"] == pytest.approx(0.5)  # 1 of 2 units
    assert (a["on_hand"], a["stock_status"]) == (0, "out_of_stock")
    assert (b["price_change_7d"], b["views_7d"], b["units_sold_7d"], b["conversion_rate"]) == (0.0, 2, 1.0, 0.5)
    assert (b["on_hand"], b["stock_status"]) == (3, "low")
    assert c["trend_7_28"] == pytest.approx((2 / 7) / (3 / 28))  # the 02-20 purchase is only in 28 days
    assert (c["units_sold_28d"], c["stock_status"], c["brand"]) == (1.0, "in_stock", None)
    # D: in the catalogue, inactive, no events: rates are unknown, not zero
    assert (d["active"], d["category"], d["price_change_7d"], d["trend_7_28"]) == (False, None, None, None)
    assert (d["conversion_rate"], d["return_rate"], d["on_hand"], d["stock_status"]) == (None, None, None, "unknown")


def test_item_stock_is_unknown_without_an_inventory_feed(activity):
    act, data = activity()
    items = build_item_features(act, data["products"], None, AS_OF, CONFIG).collect()
    assert {row["stock_status"] for row in items} == {"unknown"}
    assert {row["on_hand"] for row in items} == {None}


def test_user_item_interactions(base):
    pairs = rows_by(base, "gold.user_item_interactions", "user_id", "sku")

    def decay(days):
        return 0.5 ** (days / 14)

    # u1/A: view + cart + purchase on D (1 + 3 + 5), a return 4 days before (-5), a view 69 days before (+1)
    assert pairs["u1", "A"]["strength"] == pytest.approx(9 - 5 * decay(4) + decay(69))
    assert (pairs["u1", "A"]["n_views"], pairs["u1", "A"]["n_carts"], pairs["u1", "A"]["n_purchases"]) == (2, 1, 1)
    assert pairs["u1", "A"]["last_interaction_ts"] == datetime(2024, 3, 10, 9, 2)
    assert pairs["u1", "B"]["strength"] == pytest.approx(decay(5))  # the 12-01 view is outside 90 days
    assert pairs["u1", "C"]["strength"] == pytest.approx(decay(5) + 5 * decay(19))
    assert pairs["u2", "B"]["strength"] == pytest.approx(9 * decay(1))
    assert set(pairs) == {("u1", "A"), ("u1", "B"), ("u1", "C"), ("u2", "A"), ("u2", "B")}


def test_interaction_strength_is_floored_at_zero(activity):
    rows = [event("r1", "return", "u9", "s", "A", "2024-03-10T10:00:00", 1, "10.00", "o9")]
    act, _ = activity(rows)
    (row,) = build_user_item_interactions(act, AS_OF, CONFIG).collect()
    assert row["strength"] == 0.0


def test_item_cooccurrence(base):
    pairs = rows_by(base, "gold.item_cooccurrence", "sku", "other_sku")
    # co-purchase: u1 bought A and C; co-view session-days: s2 {B, C}, s6 {A, B}, s7 {A, C}; s1 {A} alone.
    # views per SKU: A 3 (s1, s6, s7), B 2, C 2; buyers: A 1, B 1, C 1.
    view_ab = 1 / math.sqrt(3 * 2)
    assert pairs["A", "C"]["similarity"] == pytest.approx(0.7 * 1.0 + 0.3 * view_ab)
    assert (pairs["A", "C"]["co_purchase_count"], pairs["A", "C"]["co_view_count"]) == (1, 1)
    assert pairs["A", "B"]["similarity"] == pytest.approx(0.3 * view_ab)
    assert pairs["B", "C"]["similarity"] == pytest.approx(0.3 * 0.5)
    ranks = {key: row["rank"] for key, row in pairs.items()}
    assert ranks == {("A", "C"): 1, ("A", "B"): 2, ("B", "C"): 1, ("B", "A"): 2, ("C", "A"): 1, ("C", "B"): 2}


def test_cooccurrence_keeps_top_n_and_skips_oversized_baskets(activity):
    viewed = [event(f"v{i}", "view", "u1", "s1", sku, f"2024-03-10T10:0{i}:00") for i, sku in enumerate("ABCD")]
    bulk = [event(f"b{i}", "view", "u2", "s2", f"X{i}", "2024-03-10T11:00:00") for i in range(5)]
    config = CONFIG.model_copy(update={"cooccurrence_top_n": 2, "max_basket_items": 4})
    act, _ = activity(viewed + bulk, config)
    rows = build_item_cooccurrence(act, AS_OF, config).collect()
    assert {row["sku"] for row in rows} == set("ABCD")  # the 5-SKU session is skipped
    assert all(row["rank"] <= 2 for row in rows) and len(rows) == 8
    # equal similarity: ties go to the smaller other_sku
    assert {(row["sku"], row["other_sku"]) for row in rows if row["rank"] == 1} == {
        ("A", "B"), ("B", "A"), ("C", "A"), ("D", "A")
    }  # fmt: skip


def test_sku_daily_demand(base):
    demand = rows_by(base, "gold.sku_daily_demand", "sku")
    assert set(demand) == {"A", "B", "C"}  # D is inactive and unsold
    a, b, c = demand["A"], demand["B"], demand["C"]
    assert (a["units"], a["unit_price"], a["category"]) == (2.0, 10.0, "shoes")
    assert a["on_promotion"] is True  # 10.00 vs 12.50 list price a week before: 20% off
    assert a["is_stockout"] is True
    assert (a["lag_1"], a["lag_7"], a["lag_14"], a["lag_28"], a["rolling_mean_7"]) == (0.0, 0.0, 0.0, 0.0, 0.0)
    # B sold 1 on 03-09 and nothing else: zero-filled series [1, 0, 0, 0, 0, 0, 0] before D
    assert (b["units"], b["unit_price"], b["on_promotion"], b["is_stockout"]) == (0.0, 20.0, False, False)
    assert b["lag_1"] == 1.0
    assert b["rolling_mean_7"] == pytest.approx(1 / 7)
    assert b["rolling_std_7"] == pytest.approx(math.sqrt(1 / 7))
    assert b["rolling_mean_28"] == pytest.approx(1 / 28)
    assert b["rolling_std_28"] == pytest.approx(math.sqrt(1 / 28))
    assert (c["rolling_mean_7"], c["rolling_mean_28"]) == (0.0, pytest.approx(1 / 28))  # the 02-20 sale
    calendar = {k: a[k] for k in ("day_of_week", "day_of_month", "month", "week_of_year", "is_weekend")}
    assert calendar == {"day_of_week": 7, "day_of_month": 10, "month": 3, "week_of_year": 10, "is_weekend": True}


def test_demand_lags_before_history_are_unknown(activity):
    act, data = activity([row for row in BASE_EVENTS if row[2] == "u2"])  # history starts 03-09
    b = by_key(build_sku_daily_demand(act, data["products"], None, AS_OF, CONFIG), "sku")["B"]
    assert (b["lag_1"], b["lag_7"], b["lag_28"]) == (1.0, None, None)
    assert (b["rolling_mean_7"], b["rolling_std_7"]) == (1.0, None)  # one known day
    assert b["is_stockout"] is False  # no inventory feed


def test_purchase_only_feed_builds_every_family(activity):
    rows = [row for row in BASE_EVENTS if row[1] in ("purchase", "return")]
    act, data = activity(rows)
    u1 = by_key(build_user_features(act, data["products"], AS_OF, CONFIG), "user_id")["u1"]
    assert (u1["view_to_cart_rate"], u1["cart_to_purchase_rate"], u1["orders_90d"]) == (None, None, 2)
    items = by_key(build_item_features(act, data["products"], data["inventory"], AS_OF, CONFIG), "sku")
    assert items["A"]["conversion_rate"] is None and items["A"]["views_28d"] == 0
    assert items["A"]["units_sold_1d"] == 2.0
    pairs = by_key(build_item_cooccurrence(act, AS_OF, CONFIG), "sku", "other_sku")
    assert pairs["A", "C"]["co_view_count"] == 0 and pairs["A", "C"]["similarity"] == pytest.approx(0.7)
    assert build_user_item_interactions(act, AS_OF, CONFIG).count() == 3
    assert build_sku_daily_demand(act, data["products"], None, AS_OF, CONFIG).count() == 3


def test_no_leakage_from_events_after_the_end_of_the_day(activity, base):
    future = [
        event("f1", "purchase", "u1", "s1", "B", "2024-03-11T00:00:00", 3, "20.00", "o7"),  # first instant of D+1
        event("f2", "view", "u3", "s9", "C", "2024-03-11T00:00:01"),
        event("f3", "view", "u3", "s9", "A", "2024-03-12T09:00:00"),
        event("f4", "add_to_cart", None, "s7", "C", "2024-03-15T09:00:00"),
    ]
    act, data = activity(BASE_EVENTS + future)
    with_future = {table: sorted(map(str, frame.collect())) for table, frame in build_all(act, data).items()}
    assert with_future == {table: sorted(map(str, rows)) for table, rows in base["rows"].items()}


def test_one_pass_over_several_dates_equals_building_each_date(activity, base):
    act, data = activity()
    days = [AS_OF - timedelta(days=1), AS_OF]
    config = CONFIG
    together = {
        "gold.user_features": build_user_features(act, data["products"], days, config),
        "gold.item_features": build_item_features(act, data["products"], data["inventory"], days, config),
        "gold.user_item_interactions": build_user_item_interactions(act, days, config),
        "gold.item_cooccurrence": build_item_cooccurrence(act, days, config),
        "gold.sku_daily_demand": build_sku_daily_demand(act, data["products"], data["inventory"], days, config),
    }
    for table, frame in together.items():
        rows = frame.collect()
        assert {row["feature_date"] for row in rows} == set(days), table
        assert sorted(map(str, (r for r in rows if r["feature_date"] == AS_OF))) == sorted(
            map(str, base["rows"][table])
        ), table
    alone = build_sku_daily_demand(act, data["products"], data["inventory"], days[0], config).collect()
    demand = together["gold.sku_daily_demand"].where(f"feature_date = '{days[0]}'").collect()
    assert sorted(map(str, demand)) == sorted(map(str, alone))


def test_plan_corrections_covers_every_day_a_late_event_is_inside():
    late = {date(2024, 3, 7): 2, date(2024, 3, 9): 1}
    assert plan_corrections(late, date(2024, 3, 10)) == [
        (date(2024, 3, 7), 2),
        (date(2024, 3, 8), 2),
        (date(2024, 3, 9), 3),
    ]
    assert plan_corrections({}, date(2024, 3, 10)) == []
