"""Retrieval model: learns planted tastes, is deterministic per seed, scores unseen SKUs by content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from models.recommend.retrieval import load_retrieval, save_retrieval, top_n, train_retrieval_model
from shopml.config.recommend import RetrievalConfig

CONFIG = RetrievalConfig(embedding_dim=8, epochs=25, batch_size=64, learning_rate=0.05, price_bands=2)


@pytest.fixture(scope="module")
def two_tastes() -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 users in two groups; each group touches only its own category's ten SKUs."""
    rng = np.random.default_rng(3)
    items = pd.DataFrame(
        {
            "sku": [f"{c}{i}" for c in "AB" for i in range(10)],
            "category": ["A"] * 10 + ["B"] * 10,
            "brand": ["b1", "b2"] * 10,
            "unit_price": np.linspace(1, 20, 20),
        }
    )
    rows = []
    for user in range(40):
        group = "AB"[user % 2]
        for sku in rng.choice(10, 5, replace=False):
            rows.append({"user_id": f"u{user}", "sku": f"{group}{sku}", "strength": float(rng.integers(1, 6))})
    return pd.DataFrame(rows), items


def _top_categories(trained, interactions, items, n=5) -> list[float]:
    users = np.array([f"u{u}" for u in range(40)], dtype=object)
    _, user_vectors = trained.user_vectors(users)
    item_vectors = trained.item_vectors(items)
    _, columns = top_n(lambda a, b: user_vectors[a:b] @ item_vectors.T, len(users), n)
    wanted = np.array(["AB"[u % 2] for u in range(40)])
    return (items["category"].to_numpy()[columns] == wanted[:, None]).mean()


def test_bpr_learns_planted_tastes(two_tastes):
    interactions, items = two_tastes
    trained = train_retrieval_model(interactions, items, CONFIG, seed=7)
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    assert _top_categories(trained, interactions, items) >= 0.95


def test_softmax_learns_planted_tastes(two_tastes):
    interactions, items = two_tastes
    config = CONFIG.model_copy(update={"loss": "softmax", "batch_size": 32})
    trained = train_retrieval_model(interactions, items, config, seed=7)
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    assert _top_categories(trained, interactions, items) >= 0.9


def test_training_is_deterministic_for_a_seed(two_tastes):
    interactions, items = two_tastes
    small = CONFIG.model_copy(update={"epochs": 3})
    first = train_retrieval_model(interactions, items, small, seed=11).model.state_dict()
    second = train_retrieval_model(interactions, items, small, seed=11).model.state_dict()
    other = train_retrieval_model(interactions, items, small, seed=12).model.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["users.weight"], other["users.weight"])


def test_unseen_sku_is_scored_from_its_content(two_tastes):
    interactions, items = two_tastes
    trained = train_retrieval_model(interactions, items, CONFIG, seed=7)
    new = pd.DataFrame({"sku": ["A-new"], "category": ["A"], "brand": ["unseen-brand"], "unit_price": [3.0]})
    vector = trained.item_vectors(new)[0]
    content = trained.model.content
    expected = content[0].weight[1] + content[1].weight[0] + content[2].weight[1]  # category A, unknown brand, band 1
    torch.testing.assert_close(vector, expected.detach())
    _, users = trained.user_vectors(np.array([f"u{u}" for u in range(40)], dtype=object))
    scores = (users @ vector).numpy()
    # Users of group A (even ids) like the new category-A SKU more than group B does.
    assert scores[0::2].mean() > scores[1::2].mean()


def test_save_and_load_round_trip(two_tastes, tmp_path):
    interactions, items = two_tastes
    trained = train_retrieval_model(interactions, items, CONFIG.model_copy(update={"epochs": 2}), seed=7)
    save_retrieval(trained, tmp_path, "retrieval_serve")
    loaded = load_retrieval(tmp_path, "retrieval_serve")
    torch.testing.assert_close(loaded.item_vectors(items), trained.item_vectors(items))
    assert loaded.user_ids.equals(trained.user_ids)
    assert loaded.history == trained.history


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch.cuda.is_available() is False here")
def test_cuda_path_learns_planted_tastes(two_tastes):
    interactions, items = two_tastes
    trained = train_retrieval_model(interactions, items, CONFIG, seed=7, device="cuda")
    assert trained.device.type == "cuda"
    assert _top_categories(trained, interactions, items) >= 0.95
