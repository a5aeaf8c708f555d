"""XGBoost ranker learns a planted signal deterministically; reason codes follow their precedence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xgboost as xgb

from models.recommend.data import FEATURES, recent_seeds
from models.recommend.ranker import assign_reasons, train_ranker_model
from shopml.config.recommend import RankerConfig


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80 users × 20 candidates; the bought one has the most views of the user, everything else is noise."""
    rng = np.random.default_rng(seed)
    users, per_user = 80, 20
    matrix = rng.normal(size=(users * per_user, len(FEATURES))).astype(np.float32)
    views = FEATURES.index("ui_views")
    labels = np.zeros(users * per_user, dtype=np.float32)
    for user in range(users):
        rows = slice(user * per_user, (user + 1) * per_user)
        bought = user * per_user + rng.integers(per_user)
        matrix[rows, views] = rng.integers(0, 3, per_user)
        matrix[bought, views] = 5
        labels[bought] = 1
    return matrix, labels, np.repeat(np.arange(users), per_user)


def test_ranker_learns_planted_signal_deterministically():
    matrix, labels, groups = _planted(0)
    config = RankerConfig(n_estimators=30, max_depth=3, validation_fraction=0.2, early_stopping_rounds=10)
    booster, info = train_ranker_model(matrix, labels, groups, config, top_k=5, seed=1, device="cpu")
    assert info["positives"] == 80 and info["users"] == 80
    test_matrix, test_labels, _ = _planted(1)
    scores = booster.predict(xgb.DMatrix(test_matrix, feature_names=list(FEATURES))).reshape(80, 20)
    top = scores.argmax(axis=1)
    assert (test_labels.reshape(80, 20)[np.arange(80), top] == 1).mean() >= 0.95
    again, _ = train_ranker_model(matrix, labels, groups, config, top_k=5, seed=1, device="cpu")
    np.testing.assert_array_equal(
        again.predict(xgb.DMatrix(test_matrix, feature_names=list(FEATURES))).reshape(80, 20), scores
    )


def test_reasons_follow_precedence(tiny_features):
    # Item order A1 A2 A3 B1 B2 C1; last column is the bias, ignored by the cosine.
    vectors = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.5],
            [0.9, 0.1, 0.0, 0.5],
            [1.0, 0.0, 0.0, 0.5],
            [0.0, 1.0, 0.0, 0.5],
            [0.0, 0.0, 1.0, 0.5],
            [0.0, 0.0, 1.0, 0.5],
        ]
    )
    top = pd.DataFrame(
        {
            "user": [0, 1, 0, 1, 0],
            "item": [1, 0, 4, 4, 5],
            "cooc_seed": [0, -1, -1, -1, -1],
        }
    )
    reasons = assign_reasons(top, recent_seeds(tiny_features, 10), vectors, tiny_features, RankerConfig())
    assert reasons.tolist() == [
        "similar_to:A1",  # co-purchase seed behind the candidate
        "similar_to:A2",  # u2's recent A2 is close to A1 in embedding space
        "trending",  # u1 has no interest in B, but B2's sales are rising
        "popular_in:B",  # u2 likes category B
        "retrieval",  # nothing else explains C1 for u1
    ]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch.cuda.is_available() is False here")
def test_cuda_ranker_learns_planted_signal():
    matrix, labels, groups = _planted(0)
    config = RankerConfig(n_estimators=30, max_depth=3, validation_fraction=0.2, early_stopping_rounds=10)
    booster, info = train_ranker_model(matrix, labels, groups, config, top_k=5, seed=1, device="cuda")
    assert info["params"]["device"] == "cuda"
    test_matrix, test_labels, _ = _planted(1)
    scores = booster.inplace_predict(test_matrix).reshape(80, 20)
    assert (test_labels.reshape(80, 20)[np.arange(80), scores.argmax(axis=1)] == 1).mean() >= 0.95
