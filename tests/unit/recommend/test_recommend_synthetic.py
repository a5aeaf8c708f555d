"""The synthetic shop's re-ordering customers: staples from the consumable categories, bought again on cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommend.synthetic import build_order_lines, simulate_shop

SHOP = {"n_users": 300, "n_items": 100, "n_days": 84, "seed": 3}


@pytest.fixture(scope="module")
def reordering():
    return simulate_shop(**SHOP, reorder_share=0.3)


def _staple_purchases(shop) -> pd.DataFrame:
    purchases = shop.events[shop.events["event_type"] == "purchase"]
    return purchases.merge(shop.staples, on=["user_id", "sku"])


def test_no_share_is_the_shop_without_reordering_customers():
    shop = simulate_shop(**SHOP)
    assert shop.staples.empty
    assert (shop.events["quantity"] == 1).all()


def test_reordering_customers_are_added_to_the_same_shop_deterministically(reordering):
    plain = simulate_shop(**SHOP)
    columns = ["user_id", "sku", "event_type", "event_ts"]
    kept = plain.events[columns].merge(reordering.events[columns], how="inner")
    assert len(kept) == len(plain.events)
    pd.testing.assert_frame_equal(plain.catalogue, reordering.catalogue)
    again = simulate_shop(**SHOP, reorder_share=0.3)
    pd.testing.assert_frame_equal(again.events, reordering.events)
    pd.testing.assert_frame_equal(again.staples, reordering.staples)


def test_staples_are_a_few_consumables_per_customer(reordering):
    staples = reordering.staples
    customers = staples["user_id"].nunique()
    assert 0.2 * SHOP["n_users"] < customers < 0.4 * SHOP["n_users"]
    assert staples.groupby("user_id").size().between(1, 5).all()
    assert not staples.duplicated(["user_id", "sku"]).any()
    # 100 SKUs make 5 categories; the first fifth of them (cat000) holds the consumables.
    category = staples["sku"].map(reordering.catalogue.set_index("sku")["category"])
    assert set(category) == {"cat000"}
    assert staples["cycle_days"].between(7, 28).all()
    assert staples["cycle_days"].std() > 3  # staples fall due after different gaps


def test_staples_are_bought_again_on_their_cycle_with_noisy_quantities(reordering):
    bought = _staple_purchases(reordering).sort_values(["user_id", "sku", "event_ts"])
    gap = bought.groupby(["user_id", "sku"])["event_ts"].diff().dt.total_seconds() / 86_400
    relative = (gap / bought["cycle_days"]).dropna()
    assert len(relative) > 200
    assert abs(relative.median() - 1) < 0.05
    # The rest are the customer's ordinary purchases of a staple (one unit, off cycle), as in between-times top-ups.
    assert relative.between(0.7, 1.4).mean() > 0.95
    assert (bought["quantity"] >= 1).all()
    spread = bought.groupby(["user_id", "sku"])["quantity"].nunique()
    assert (spread > 1).mean() > 0.5


def test_order_lines_carry_quantities_and_revenue(reordering):
    lines = build_order_lines(reordering.events, reordering.catalogue)
    assert lines["quantity"].max() > 1
    np.testing.assert_allclose(lines["revenue"], lines["unit_price"] * lines["quantity"], atol=0.005)
