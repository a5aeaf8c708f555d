"""Recommender unit-test fixtures: one CPU thread, and a six-SKU feature set small enough to reason about by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import torch
import xgboost as xgb

from models.recommend.data import ITEM_FEATURES, FeatureSet, build_feature_set

AS_OF = date(2024, 3, 31)


@pytest.fixture(autouse=True)
def one_cpu_thread() -> Iterator[None]:
    """Tiny tensors on a shared two-core machine: a second thread only adds synchronisation stalls."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with xgb.config_context(nthread=1):
        yield
    torch.set_num_threads(previous)


def _ts(day: int) -> datetime:
    return datetime(2024, 3, day, 12, tzinfo=UTC)


@pytest.fixture
def tiny_features() -> FeatureSet:
    """SKUs A1-A3 (category A, A3 inactive), B1-B2 (B), C1 (C, out of stock); users u1 (likes A), u2 (B, some A)."""
    items = pd.DataFrame(
        {
            "sku": ["A1", "A2", "A3", "B1", "B2", "C1"],
            "category": ["A", "A", "A", "B", "B", "C"],
            "brand": ["x", "x", "y", "y", "z", "z"],
            "active": [True, True, False, True, True, True],
            "stock_status": ["in_stock", "low", "in_stock", "in_stock", "unknown", "out_of_stock"],
            "units_sold_7d": [5.0, 3.0, 9.0, 4.0, 6.0, 10.0],
            "views_7d": [10, 10, 10, 10, 10, 10],
            "trend_7_28": [1.0, 2.0, 1.0, 1.0, 1.5, 1.0],
        }
    )
    for column in ITEM_FEATURES:
        if column not in items:
            items[column] = 1.0
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "category_affinity": [[("A", 1.0)], [("B", 0.7), ("A", 0.3)]],
            "avg_unit_price": [2.0, 4.0],
            "recency_days": [1, 2],
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2"],
            "sku": ["A1", "B1", "B1", "A2"],
            "strength": [10.0, 1.0, 4.0, 1.0],
            "n_views": [2, 1, 1, 1],
            "n_carts": [1, 0, 1, 0],
            "n_purchases": [1, 0, 0, 0],
            "last_interaction_ts": [_ts(30), _ts(20), _ts(29), _ts(10)],
        }
    )
    cooccurrence = pd.DataFrame(
        {
            "sku": ["A1", "A1", "B1", "A2"],
            "other_sku": ["A2", "C1", "B2", "A1"],
            "similarity": [0.9, 0.8, 0.7, 0.9],
            "co_purchase_count": [2, 1, 0, 2],
            "co_view_count": [5, 4, 3, 5],
            "rank": [1, 2, 1, 1],
        }
    )
    return build_feature_set(AS_OF, interactions, items, users, cooccurrence)
