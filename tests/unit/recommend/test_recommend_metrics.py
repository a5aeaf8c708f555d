"""List metrics against hand-computed values."""

from __future__ import annotations

from math import log2

import pandas as pd
import pytest

from models.recommend.metrics import (
    catalogue_coverage,
    evaluate_lists,
    fallback_share,
    intra_list_diversity,
    ranking_metrics,
)


@pytest.fixture
def recs() -> pd.DataFrame:
    # u1: a (hit), b, c (hit); u2: y, x (hit); u3 has a purchase but no list.
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "sku": ["a", "b", "c", "y", "x"],
            "rank": [1, 2, 3, 1, 2],
            "is_fallback": [False, False, False, True, True],
        }
    )


@pytest.fixture
def truth() -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "sku": ["a", "c", "x", "b"]})


def test_ranking_metrics_at_2(recs, truth):
    result = ranking_metrics(recs, truth, (2,))
    ndcg_u1 = 1.0 / (1.0 + 1.0 / log2(3))  # hit at 1 of 2 relevant
    ndcg_u2 = (1.0 / log2(3)) / 1.0  # hit at 2 of 1 relevant
    assert result["precision@2"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert result["recall@2"] == pytest.approx((0.5 + 1.0 + 0) / 3)
    assert result["ndcg@2"] == pytest.approx((ndcg_u1 + ndcg_u2) / 3)
    assert result["map@2"] == pytest.approx((1.0 / 2 + 0.5 / 1) / 3)
    assert result["hit_rate@2"] == pytest.approx(2 / 3)


def test_ranking_metrics_at_3(recs, truth):
    result = ranking_metrics(recs, truth, (3,))
    ndcg_u1 = (1.0 + 1.0 / log2(4)) / (1.0 + 1.0 / log2(3))
    ndcg_u2 = 1.0 / log2(3)
    assert result["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert result["recall@3"] == pytest.approx((1.0 + 1.0 + 0) / 3)
    assert result["ndcg@3"] == pytest.approx((ndcg_u1 + ndcg_u2) / 3)
    assert result["map@3"] == pytest.approx(((1.0 + 2 / 3) / 2 + 0.5) / 3)
    assert result["hit_rate@3"] == pytest.approx(2 / 3)


def test_perfect_list_scores_one():
    truth = pd.DataFrame({"user_id": ["u"] * 2, "sku": ["a", "b"]})
    recs = pd.DataFrame({"user_id": ["u"] * 3, "sku": ["a", "b", "c"], "rank": [1, 2, 3]})
    result = ranking_metrics(recs, truth, (2,))
    assert result == {"precision@2": 1.0, "recall@2": 1.0, "ndcg@2": 1.0, "map@2": 1.0, "hit_rate@2": 1.0}


def test_coverage_fallback_share_and_diversity(recs, truth):
    categories = pd.Series({"a": "A", "b": "A", "c": "B", "y": "B", "x": "C"})
    assert catalogue_coverage(recs, catalogue_size=10, k=2) == pytest.approx(0.4)
    # u2's list is a fallback and u3 has none: two of three users.
    assert fallback_share(recs, ["u1", "u2", "u3"]) == pytest.approx(2 / 3)
    # u1: A, A, B -> 1 - 2/6; u2: B, C -> 1.
    assert intra_list_diversity(recs, categories, k=3) == pytest.approx(((1 - 2 / 6) + 1.0) / 2)
    metrics = evaluate_lists(recs, truth, categories, 10, (2, 3))
    assert metrics["coverage@3"] == pytest.approx(0.5)
    assert metrics["fallback_share"] == pytest.approx(2 / 3)
    assert set(metrics) >= {"ndcg@2", "ndcg@3", "diversity@3"}


def test_evaluate_lists_leaves_diversity_out_when_there_is_nothing_to_measure_it_by(recs, truth):
    metrics = evaluate_lists(recs, truth, None, 10, (2, 3))
    assert "diversity@3" not in metrics
    assert metrics["coverage@3"] == pytest.approx(0.5) and "ndcg@3" in metrics
