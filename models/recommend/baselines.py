"""Baselines the model must beat, and the popularity fallback lists for cold-start users.

All of them score the same coded feature set and go through the same top-N selection,
with the same business masks, as the model, so the comparison is like for like:
global popularity, recent popularity within the user's categories, item-item
co-occurrence over the user's history, and Spark MLlib ALS (implicit feedback).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from models.recommend.config import AlsConfig
from models.recommend.data import FeatureSet, rows_of
from models.recommend.ranker import OUTPUT_COLUMNS, ServingContext
from models.recommend.retrieval import top_n

log = logging.getLogger(__name__)

ScoreRows = Callable[[int, int], torch.Tensor]


def _top_lists(
    score_rows: ScoreRows,
    user_ids: np.ndarray,
    codes: np.ndarray,
    features: FeatureSet,
    context: ServingContext,
    k: int,
) -> pd.DataFrame:
    """Top-k per user under the business masks; users with code -1 are only masked by availability."""
    block_rows, at = rows_of(context.blocked["user"].to_numpy(), codes)
    scores, columns = top_n(
        score_rows,
        len(codes),
        k,
        available=context.available,
        blocked=(block_rows, context.blocked["item"].to_numpy()[at]),
    )
    rows, slots = np.nonzero(columns >= 0)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_ids)[rows],
            "rank": (slots + 1).astype(np.int32),
            "sku": features.item_index.to_numpy()[columns[rows, slots]],
            "score": scores[rows, slots].astype(np.float64),
            "is_fallback": False,
        }
    )


def recommend_global_popularity(
    user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int
) -> pd.DataFrame:
    """Everyone gets the SKUs with the most buyers so far."""
    popularity = torch.from_numpy(features.popularity.astype(np.float32))
    return _top_lists(
        lambda a, b: popularity[None, :].repeat(b - a, 1), user_ids, features.user_codes(user_ids), features, context, k
    )


def recent_popularity(features: FeatureSet) -> np.ndarray:
    """Units sold in the last 7 days, then views, then all-time buyers breaking ties: what is selling now.

    The all-time tie-break matters where a shop has no view events and sparse weekly sales:
    without it most of the catalogue would tie at zero and lists would follow SKU order.
    """
    items = features.items
    units = np.nan_to_num(items["units_sold_7d"].to_numpy(dtype=float, na_value=0.0))
    views = np.nan_to_num(items["views_7d"].to_numpy(dtype=float, na_value=0.0))
    buyers = features.popularity / (features.popularity.max(initial=0.0) + 1.0)  # in [0, 1): never outweighs a view
    return units + (views + buyers) / (views.max(initial=0.0) + 1.0)


def _category_score_rows(codes: np.ndarray, features: FeatureSet) -> ScoreRows:
    """affinity(user, category of item) × recent popularity, plus a small share of plain recent popularity.

    Without categories (or for users with no known interest) only the plain share is left:
    the lists are the catalogue-wide recent best sellers.
    """
    popularity = recent_popularity(features)
    popularity = torch.from_numpy((popularity / max(popularity.max(), 1e-9)).astype(np.float32))
    affinity = np.zeros((len(codes), features.affinity.shape[1] + 1), dtype=np.float32)
    affinity[codes >= 0, :-1] = features.affinity[codes[codes >= 0]]
    affinity_t = torch.from_numpy(affinity)
    # Unknown categories read the all-zero last column.
    category = torch.from_numpy(np.where(features.item_category >= 0, features.item_category, affinity.shape[1] - 1))
    return lambda a, b: affinity_t[a:b][:, category] * popularity[None, :] + 1e-3 * popularity[None, :]


def recommend_category_popularity(
    user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int
) -> pd.DataFrame:
    """Recent best sellers of the categories each user has shown interest in, weighted by that interest."""
    codes = features.user_codes(user_ids)
    return _top_lists(_category_score_rows(codes, features), user_ids, codes, features, context, k)


def recommend_fallback(user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int) -> pd.DataFrame:
    """Cold-start lists: category best sellers for users with known interests, else what sells now.

    A catalogue without categories gives everyone what sells now.

    Users unknown to the feature set (and ``__default__``) get the plain recent best sellers.
    Every row is flagged ``is_fallback`` and explained as ``popular_in:<category>`` or ``trending``.
    """
    codes = features.user_codes(user_ids)
    lists = _top_lists(_category_score_rows(codes, features), user_ids, codes, features, context, k)
    lists["is_fallback"] = True
    user_code = features.user_codes(lists["user_id"])
    item = features.item_index.get_indexer(lists["sku"])
    known = user_code >= 0
    liked = np.zeros(len(lists), dtype=bool)
    liked[known] = np.nan_to_num(features.category_affinity(user_code[known], item[known])) > 0
    reason = np.full(len(lists), "trending", dtype=object)
    # Only liked SKUs have a category, so a catalogue without categories never reaches the name lookup.
    names = features.categories.to_numpy().astype(object)
    reason[liked] = "popular_in:" + names[features.item_category[item[liked]]]
    lists["reason"] = reason
    return lists[OUTPUT_COLUMNS]


def recommend_cooccurrence(user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int) -> pd.DataFrame:
    """Sum of co-occurrence similarity from every SKU in the user's history (log strength weighted)."""
    from scipy import sparse

    codes = features.user_codes(user_ids)
    inter = features.interactions
    n_items = len(features.items)
    history = sparse.csr_matrix(
        (np.log1p(inter["strength"].to_numpy(dtype=float)), (inter["user"].to_numpy(), inter["item"].to_numpy())),
        shape=(len(features.users), n_items),
    )[np.maximum(codes, 0)]
    history = sparse.diags((codes >= 0).astype(float)) @ history
    cooc = features.cooccurrence
    similarity = sparse.csr_matrix(
        (cooc["similarity"].to_numpy(dtype=float), (cooc["item"].to_numpy(), cooc["other"].to_numpy())),
        shape=(n_items, n_items),
    )
    scores = (history @ similarity).tocsr()
    popularity = features.popularity / max(features.popularity.max(), 1e-9)
    fill = torch.from_numpy((1e-6 * popularity).astype(np.float32))

    def score_rows(a: int, b: int) -> torch.Tensor:
        return torch.from_numpy(scores[a:b].toarray().astype(np.float32)) + fill[None, :]

    return _top_lists(score_rows, user_ids, codes, features, context, k)


def fit_als(features: FeatureSet, config: AlsConfig, seed: int, spark) -> tuple[np.ndarray, np.ndarray]:
    """Spark MLlib ALS on (user, item, strength); returns user and item factors aligned to the feature set's codes."""
    from pyspark.ml.recommendation import ALS

    started = time.perf_counter()
    ratings = features.interactions[["user", "item", "strength"]].astype({"user": "int32", "item": "int32"})
    frame = spark.createDataFrame(ratings)
    als = ALS(
        rank=config.rank,
        maxIter=config.max_iter,
        regParam=config.reg_param,
        alpha=config.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="strength",
        seed=seed,
        coldStartStrategy="drop",
    )
    model = als.fit(frame)
    users = np.zeros((len(features.users), config.rank), dtype=np.float32)
    items = np.zeros((len(features.items), config.rank), dtype=np.float32)
    for target, factors in ((users, model.userFactors), (items, model.itemFactors)):
        pdf = factors.toPandas()
        target[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    log.info("Spark ALS fitted on %d interactions in %.1fs", len(ratings), time.perf_counter() - started)
    return users, items


def recommend_als(
    user_ids: np.ndarray,
    features: FeatureSet,
    context: ServingContext,
    k: int,
    factors: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """Top-k by the ALS factors' dot product (unknown users score zero everywhere, popularity breaks ties)."""
    codes = features.user_codes(user_ids)
    user_f, item_f = factors
    users = np.zeros((len(codes), user_f.shape[1]), dtype=np.float32)
    users[codes >= 0] = user_f[codes[codes >= 0]]
    users_t, items_t = torch.from_numpy(users), torch.from_numpy(item_f)
    popularity = features.popularity / max(features.popularity.max(), 1e-9)
    fill = torch.from_numpy((1e-6 * popularity).astype(np.float32))
    return _top_lists(lambda a, b: users_t[a:b] @ items_t.T + fill[None, :], user_ids, codes, features, context, k)
