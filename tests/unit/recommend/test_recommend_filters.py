"""Business filters: unavailable SKUs, stockout down-ranking, and the masked top-N."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import torch

from models.recommend.baselines import recommend_fallback
from models.recommend.filters import (
    available_items,
    code_pairs,
    downrank_stockout_risk,
    stockout_risk,
)
from models.recommend.ranker import ServingContext
from models.recommend.retrieval import top_n
from shopml.config.recommend import FilterConfig

AS_OF = date(2024, 3, 31)


def test_available_items_drops_inactive_and_out_of_stock():
    items = pd.DataFrame(
        {
            "active": [False, True, True, True, None],
            "stock_status": ["in_stock", "out_of_stock", "unknown", "low", None],
        }
    )
    assert available_items(items, FilterConfig()).tolist() == [False, False, True, True, True]
    keep_oos = FilterConfig(drop_out_of_stock=False)
    assert available_items(items, keep_oos).tolist() == [False, True, True, True, True]


def test_stockout_risk_uses_plan_when_present():
    items = pd.DataFrame({"sku": ["a", "b", "c"], "stock_status": ["low", "in_stock", "in_stock"]})
    assert stockout_risk(items, None, FilterConfig(low_stock_risk=0.4)).tolist() == [0.4, 0.0, 0.0]
    plan = pd.DataFrame({"sku": ["a", "b"], "stockout_probability": [0.3, 0.8]})
    assert stockout_risk(items, plan, FilterConfig(stockout_risk_threshold=0.5)).tolist() == [0.0, 0.8, 0.0]


def test_downrank_scales_with_strength():
    scores = np.array([3.0, 2.0, 1.0, 10.0, 9.0])
    rows = np.array([0, 0, 0, 1, 1])
    risk = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(downrank_stockout_risk(scores, rows, risk, 0.3), [1.0, 0.5, -0.3, 0.7, 0.0])
    # A strong enough setting pushes user 1's top SKU below the next one.
    adjusted = downrank_stockout_risk(scores, rows, risk, 2.0)
    assert adjusted[3] < adjusted[4]


def test_top_n_applies_masks_before_the_cut():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    available = np.array([False, True, True, True])
    blocked = (np.array([1, 1]), np.array([1, 2]))
    values, columns = top_n(lambda a, b: scores[a:b].clone(), 3, 2, available, blocked, batch_rows=2)
    assert columns.tolist() == [[1, 2], [3, -1], [3, 2]]
    assert values[1, 0] == 1.0 and np.isneginf(values[1, 1])


def test_top_n_matches_brute_force():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(37, 50)).astype(np.float32)
    _, columns = top_n(lambda a, b: torch.from_numpy(scores[a:b].copy()), 37, 5, batch_rows=8)
    assert (columns == np.argsort(-scores, axis=1)[:, :5]).all()


def test_fallback_lists_skip_bought_and_unavailable(tiny_features):
    config = FilterConfig()
    bought = pd.DataFrame({"user_id": ["u1"], "sku": ["A1"]})
    context = ServingContext(
        blocked=code_pairs(bought, tiny_features.user_index, tiny_features.item_index),
        available=available_items(tiny_features.items, config),
        risk=np.zeros(len(tiny_features.items)),
    )
    lists = recommend_fallback(np.array(["u1", "stranger"], dtype=object), tiny_features, context, k=10)
    # A cold user's "discover" list is their "all" list: they have bought nothing before.
    pd.testing.assert_frame_equal(
        lists[lists["list"] == "discover"].drop(columns="list").reset_index(drop=True),
        lists[lists["list"] == "all"].drop(columns="list").reset_index(drop=True),
    )
    lists = lists[lists["list"] == "all"]
    u1 = lists[lists["user_id"] == "u1"]
    # A3 inactive, C1 out of stock, A1 bought: u1 (likes A only) gets A2 first, then B by recent sales.
    assert u1["sku"].tolist() == ["A2", "B2", "B1"]
    assert u1["reason"].tolist() == ["popular_in:A", "trending", "trending"]
    stranger = lists[lists["user_id"] == "stranger"]
    assert stranger["sku"].tolist() == ["B2", "A1", "B1", "A2"]
    assert set(stranger["reason"]) == {"trending"}
    assert lists["is_fallback"].all()
    assert lists["rank"].tolist() == [1, 2, 3, 1, 2, 3, 4]


def test_code_pairs_ignores_unknown_ids(tiny_features):
    pairs = pd.DataFrame({"user_id": ["u2", "nobody", "u1"], "sku": ["B2", "A1", "ZZ"]})
    coded = code_pairs(pairs, tiny_features.user_index, tiny_features.item_index)
    assert coded.to_dict("list") == {"user": [1], "item": [4]}
