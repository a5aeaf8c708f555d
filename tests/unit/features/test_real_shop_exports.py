"""Feature families on what real shops' order-line exports give: prices of 0, no categories, brands, views or stock.

As-of day D = 2024-03-10, purchases only, no inventory feed. The catalogue (snapshots 03-03 and 03-10, every
category and brand null, all active) is what the order-line importer derives:
P 4.00 both weeks; F 8.00 both weeks; Z 5.00 on 03-03 then 0.00 (a placeholder: unknown);
N null both weeks, never sold.
Orders on D: u1 buys 3 P at 4.00 and gets 1 P free (0.00); u2 gets 2 Z and 1 F free (0.00).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from jobs.transforms.features import (
    build_item_cooccurrence,
    build_item_features,
    build_sku_daily_demand,
    build_user_features,
    build_user_item_interactions,
    summarise_activity,
)
from shopml.config.features import FeaturesConfig
from tests.unit.features.feature_rows import AS_OF, event

CONFIG = FeaturesConfig()

EVENTS = [
    event("p1", "purchase", "u1", "s1", "P", "2024-03-10T09:00:00", 3, "4.00", "o1"),
    event("p2", "purchase", "u1", "s1", "P", "2024-03-10T09:00:00", 1, "0.00", "o1"),
    event("z1", "purchase", "u2", "s2", "Z", "2024-03-10T10:00:00", 2, "0.00", "o2"),
    event("f1", "purchase", "u2", "s2", "F", "2024-03-10T10:00:00", 1, "0.00", "o2"),
]


def products():
    prices = {"P": ("4.00", "4.00"), "F": ("8.00", "8.00"), "Z": ("5.00", "0.00"), "N": (None, None)}
    return [
        (snapshot, sku, sku.lower(), None, None, Decimal(price[week]) if price[week] is not None else None, True)
        for week, snapshot in enumerate((date(2024, 3, 3), AS_OF))
        for sku, price in prices.items()
    ]


@pytest.fixture(scope="module")
def shop(frames):
    """The five families on the real-shop frames, without an inventory feed, as rows keyed like their table."""
    data = frames(EVENTS, products())
    act = summarise_activity(data["events"], data["order_lines"], AS_OF, AS_OF, CONFIG).persist()
    built = {
        "users": (build_user_features(act, data["products"], AS_OF, CONFIG), ("user_id",)),
        "items": (build_item_features(act, data["products"], None, AS_OF, CONFIG), ("sku",)),
        "demand": (build_sku_daily_demand(act, data["products"], None, AS_OF, CONFIG), ("sku",)),
        "pairs": (build_item_cooccurrence(act, AS_OF, CONFIG), ("sku", "other_sku")),
        "interactions": (build_user_item_interactions(act, AS_OF, CONFIG), ("user_id", "sku")),
    }
    rows = {
        name: {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r.asDict() for r in frame.collect()}
        for name, (frame, keys) in built.items()
    }
    yield rows
    act.unpersist()


def test_zero_priced_sale_is_not_a_promotion(shop):
    demand = shop["demand"]
    # F: list 8.00, only a free line on D: the paid price is unknown, so the list price stands in
    assert (demand["F"]["units"], demand["F"]["unit_price"], demand["F"]["on_promotion"]) == (1.0, 8.0, False)
    # Z: free line, list price 0 (unknown) on D, 5.00 the week before: no price known, no promotion
    assert (demand["Z"]["units"], demand["Z"]["unit_price"], demand["Z"]["on_promotion"]) == (2.0, None, False)


def test_zero_priced_line_does_not_drag_the_paid_price_down(shop):
    # P: 3 units at 4.00 and 1 free; the mean over the 4 units (3.00) would read as 25% off the 4.00 list price
    p = shop["demand"]["P"]
    assert (p["units"], p["unit_price"], p["on_promotion"]) == (4.0, 4.0, False)


def test_zero_priced_lines_are_left_out_of_the_users_average_price(shop):
    u1, u2 = shop["users"]["u1"], shop["users"]["u2"]
    assert (u1["avg_unit_price"], u1["revenue_1d"], u1["orders_1d"]) == (4.0, 12.0, 1)
    assert (u2["avg_unit_price"], u2["revenue_1d"], u2["orders_1d"]) == (None, 0.0, 1)  # only free lines
    assert u1["return_rate"] == 0.0  # free units still count as bought


def test_zero_or_missing_list_price_is_unknown(shop):
    items = shop["items"]
    assert (items["P"]["unit_price"], items["P"]["price_change_7d"]) == (4.0, 0.0)
    # Z: 5.00 → 0.00 is a missing price, not a 100% price cut
    assert (items["Z"]["unit_price"], items["Z"]["price_change_7d"]) == (None, None)
    assert (items["N"]["unit_price"], items["N"]["price_change_7d"]) == (None, None)
    assert (shop["demand"]["N"]["units"], shop["demand"]["N"]["unit_price"]) == (0.0, None)


def test_families_degrade_without_categories_brands_views_or_stock(shop):
    users, items, demand = shop["users"], shop["items"], shop["demand"]
    for user in users.values():
        assert user["category_affinity"] == {}
        assert (user["view_to_cart_rate"], user["cart_to_purchase_rate"], user["sessions_28d"]) == (None, None, 1)
    assert users["u2"]["last_purchased_skus"] == ["Z", "F"]  # bought in the same instant: by SKU, descending
    assert set(items) == {"P", "F", "Z", "N"}
    for sku, item in items.items():
        assert (item["category"], item["brand"], item["active"]) == (None, None, True), sku
        assert (item["views_28d"], item["conversion_rate"]) == (0, None), sku
        assert (item["on_hand"], item["stock_status"]) == (None, "unknown"), sku
    assert (items["P"]["units_sold_1d"], items["Z"]["units_sold_28d"], items["N"]["units_sold_28d"]) == (4.0, 2.0, 0.0)
    assert items["P"]["trend_7_28"] == pytest.approx(4.0) and items["N"]["trend_7_28"] is None
    assert (items["P"]["return_rate"], items["N"]["return_rate"]) == (0.0, None)
    assert set(demand) == {"P", "F", "Z", "N"}
    for sku, row in demand.items():
        assert (row["category"], row["is_stockout"]) == (None, False), sku
    # co-purchases only: u2's free Z and F are a pair, with no co-view signal
    assert set(shop["pairs"]) == {("F", "Z"), ("Z", "F")}
    assert (shop["pairs"]["F", "Z"]["co_view_count"], shop["pairs"]["F", "Z"]["similarity"]) == (0, pytest.approx(0.7))
    assert shop["interactions"]["u2", "Z"]["strength"] == 5.0
