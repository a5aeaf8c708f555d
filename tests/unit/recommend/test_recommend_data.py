"""Time split, feature coding, candidate frames and similar items on hand-made data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import torch

from models.recommend.data import (
    FEATURES,
    build_candidates,
    build_feature_set,
    build_similar_items,
    candidate_matrix,
    label_candidates,
    purchases_between,
    recent_seeds,
    split_dates,
)
from models.recommend.filters import available_items, code_pairs
from shopml.config.recommend import RecommendConfig, RetrievalConfig


def test_split_dates_and_windows():
    dates = split_dates(date(2024, 3, 31), 7)
    assert (dates.ranker_train, dates.evaluate, dates.serve) == (
        date(2024, 3, 17),
        date(2024, 3, 24),
        date(2024, 3, 31),
    )
    assert dates.windows() == {
        "ranker": (date(2024, 3, 17), date(2024, 3, 24)),
        "evaluate": (date(2024, 3, 24), date(2024, 3, 31)),
    }


def test_purchases_between_is_start_exclusive_end_inclusive():
    lines = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", None, "u3", "u1"],
            "sku": ["a", "b", "c", "d", "e", "b"],
            "line_type": ["purchase", "purchase", "return", "purchase", "purchase", "purchase"],
            "event_date": [
                date(2024, 3, 24),
                date(2024, 3, 25),
                date(2024, 3, 26),
                date(2024, 3, 26),
                date(2024, 3, 31),
                date(2024, 3, 30),
            ],
        }
    )
    bought = purchases_between(lines, date(2024, 3, 24), date(2024, 3, 31))
    assert bought.to_dict("list") == {"user_id": ["u1", "u3"], "sku": ["b", "e"]}


def test_feature_set_codes_and_lookups(tiny_features):
    assert tiny_features.item_index.tolist() == ["A1", "A2", "A3", "B1", "B2", "C1"]
    assert tiny_features.user_index.tolist() == ["u1", "u2"]
    np.testing.assert_allclose(tiny_features.affinity, [[1.0, 0.0, 0.0], [0.3, 0.7, 0.0]])
    rows = tiny_features.lookup_pairs(np.array([0, 0, 1]), np.array([0, 4, 3]))
    assert rows.tolist() == [0, -1, 3]  # interactions are coded in (user_id, sku) order: u2-B1 is the fourth
    assert recent_seeds(tiny_features, 1).to_dict("list") == {"user": [0, 1], "item": [0, 3]}


def test_candidates_union_retrieval_and_cooccurrence(tiny_features):
    config = RecommendConfig(retrieval=RetrievalConfig(n_candidates=1))
    # Retrieval ranks C1 (out of stock), A3 (inactive), then B2; u1's recent A1 brings A2 (and C1) by
    # co-occurrence, and u1's recent B1 brings B2 as well.
    item_vectors = torch.tensor([[0.1, 0.0], [0.2, 0.0], [0.9, 0.0], [0.3, 0.0], [0.8, 0.0], [1.0, 0.0]])
    user_vectors = torch.tensor([[1.0, 0.0]])
    blocked = code_pairs(
        pd.DataFrame({"user_id": ["u1"], "sku": ["A1"]}), tiny_features.user_index, tiny_features.item_index
    )
    candidates = build_candidates(
        np.array([0]),
        user_vectors,
        item_vectors,
        tiny_features,
        recent_seeds(tiny_features, 2),
        available_items(tiny_features.items, config.filters),
        blocked,
        config,
    )
    assert candidates["item"].tolist() == [1, 4]  # A2 from co-occurrence, B2 from both
    a2, b2 = candidates.iloc[0], candidates.iloc[1]
    assert np.isnan(a2["retrieval_rank"]) and b2["retrieval_rank"] == 1
    assert a2["cooc_seed"] == 0 and a2["cooc_score"] == pytest.approx(0.9)
    assert b2["cooc_seed"] == 3 and b2["cooc_score"] == pytest.approx(0.7)
    assert a2["retrieval_score"] == pytest.approx(0.2)

    matrix = candidate_matrix(candidates, tiny_features)
    assert matrix.shape == (2, len(FEATURES))
    column = {name: i for i, name in enumerate(FEATURES)}
    assert matrix[0, column["category_affinity"]] == pytest.approx(1.0)
    assert matrix[0, column["item_low_stock"]] == 1.0
    assert matrix[0, column["ui_views"]] == 0  # u1 never touched A2
    truth = pd.DataFrame({"user_id": ["u1", "u2"], "sku": ["B2", "A2"]})
    assert label_candidates(candidates, truth, tiny_features).tolist() == [0.0, 1.0]


def test_similar_items_exclude_self_and_unavailable(tiny_features):
    config = RecommendConfig(similar_k=2)
    vectors = torch.tensor(
        [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0], [1.0, 0.0, 0.0]]
    )
    similar = build_similar_items(vectors, tiny_features, available_items(tiny_features.items, config.filters), config)
    assert not (similar["sku"] == similar["similar_sku"]).any()
    assert not similar["similar_sku"].isin(["A3", "C1"]).any()
    assert similar.groupby("sku").size().max() == 2
    a1 = similar[similar["sku"] == "A1"]
    assert a1["similar_sku"].tolist()[0] == "A2"
    assert a1["reason"].tolist()[0] == "co_purchased"


def test_candidates_without_cooccurrence_table(tiny_features):
    features = build_feature_set(
        tiny_features.as_of,
        tiny_features.interactions.drop(columns=["user", "item"]),
        tiny_features.items,
        tiny_features.users,
        pd.DataFrame(columns=["sku", "other_sku", "similarity", "co_purchase_count", "rank"]),
    )
    config = RecommendConfig(retrieval=RetrievalConfig(n_candidates=2))
    candidates = build_candidates(
        np.array([1]),
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.1, 0.0], [0.2, 0.0], [0.9, 0.0], [0.3, 0.0], [0.8, 0.0], [1.0, 0.0]]),
        features,
        recent_seeds(features, 2),
        available_items(features.items, config.filters),
        code_pairs(pd.DataFrame(columns=["user_id", "sku"]), features.user_index, features.item_index),
        config,
    )
    assert candidates["item"].tolist() == [3, 4]  # B1 and B2: the best two available SKUs
    assert (candidates["cooc_seed"] == -1).all() and (candidates["cooc_score"] == 0).all()


def test_a_user_known_only_from_interactions_has_no_category_interest_yet(tiny_features):
    users = tiny_features.users[tiny_features.users["user_id"] != "u1"]
    features = build_feature_set(
        tiny_features.as_of,
        tiny_features.interactions.drop(columns=["user", "item"]),
        tiny_features.items,
        users,
        tiny_features.cooccurrence,
    )
    row = features.user_index.get_loc("u1")
    assert not features.affinity[row].any()
    assert features.affinity.sum(axis=1)[features.user_index != "u1"].all()
