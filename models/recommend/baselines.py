"""Baselines the model must beat, and the popularity fallback lists for cold-start users.

All of them score the same coded feature set and go through the same top-N selection,
with the same business masks, as the model, so the comparison is like for like:
global popularity, recent popularity within the user's categories, item-item
co-occurrence over the user's history, Spark MLlib ALS (implicit feedback), and the
repeat-aware ones that are hard to beat on shops whose customers re-order (Li et al.,
"A Next Basket Recommendation Reality Check", TOIS 2023): the customer's own most-bought
SKUs (P-TopFreq), topped up by global popularity (GP-TopFreq), and TIFU-KNN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from models.recommend.data import FeatureSet, rows_of
from models.recommend.ranker import OUTPUT_COLUMNS, ServingContext, explain_repeats
from models.recommend.retrieval import top_n
from shopml.config.recommend import AlsConfig, TifuConfig

log = logging.getLogger(__name__)

ScoreRows = Callable[[int, int], torch.Tensor]
# A baseline as scoring calls it: (user ids, features, context, k) -> ranked lists.
Recommend = Callable[[np.ndarray, FeatureSet, ServingContext, int], pd.DataFrame]


def _top_lists(
    score_rows: ScoreRows,
    user_ids: np.ndarray,
    codes: np.ndarray,
    features: FeatureSet,
    context: ServingContext,
    k: int,
) -> pd.DataFrame:
    """Top-k per user under the business masks; users with code -1 are only masked by availability.

    With a stockout risk to apply, each row's scores are first normalised to [0, 1] and lowered by
    ``risk_strength`` × risk, as ``downrank_stockout_risk`` does for the model's candidates.
    """
    if context.risk_strength and context.risk.any():
        score_rows = _downranked(score_rows, context.risk_strength * context.risk)
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


def _downranked(score_rows: ScoreRows, penalty: np.ndarray) -> ScoreRows:
    penalty_t = torch.from_numpy(penalty.astype(np.float32))

    def downranked(a: int, b: int) -> torch.Tensor:
        scores = score_rows(a, b)
        finite = torch.isfinite(scores)
        low = torch.where(finite, scores, torch.inf).amin(1, keepdim=True)
        high = torch.where(finite, scores, -torch.inf).amax(1, keepdim=True)
        spread = torch.where(high > low, high - low, torch.ones_like(high))
        return (scores - low) / spread - penalty_t[None, :]  # -inf (masked, not owned) stays -inf

    return downranked


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
    Every row is flagged ``is_fallback`` and explained as ``popular_in:<category>`` or ``trending``;
    the list is served as both ``all`` and ``discover`` (a cold user has bought nothing before).
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
    return pd.concat([lists.assign(list=name) for name in ("all", "discover")], ignore_index=True)[OUTPUT_COLUMNS]


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


def _own_history_scores(codes: np.ndarray, features: FeatureSet) -> ScoreRows:
    """Recency-weighted purchase counts of each user's own SKUs; -inf for SKUs they never bought."""
    from scipy import sparse

    repeats = features.repeats
    counts = sparse.csr_matrix(
        (repeats["recency_weighted"].to_numpy(float), (repeats["user"].to_numpy(), repeats["item"].to_numpy())),
        shape=(len(features.users), len(features.items)),
    )
    rows = counts[np.maximum(codes, 0)]
    rows = sparse.diags((codes >= 0).astype(float)) @ rows

    def score_rows(a: int, b: int) -> torch.Tensor:
        dense = rows[a:b].toarray()
        return torch.from_numpy(np.where(dense > 0, dense, -np.inf).astype(np.float32))

    return score_rows


def recommend_p_topfreq(user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int) -> pd.DataFrame:
    """P-TopFreq: the customer's own most-bought SKUs (orders, recency weighted); lists end where history ends."""
    codes = features.user_codes(user_ids)
    return _top_lists(_own_history_scores(codes, features), user_ids, codes, features, context, k)


def recommend_gp_topfreq(user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int) -> pd.DataFrame:
    """GP-TopFreq: P-TopFreq, topped up with the SKUs with the most buyers."""
    codes = features.user_codes(user_ids)
    own = _own_history_scores(codes, features)
    popularity = features.popularity / max(features.popularity.max(initial=0.0), 1e-9)
    fill = torch.from_numpy((popularity - 2.0).astype(np.float32))  # below every own SKU (scores > 0)

    def score_rows(a: int, b: int) -> torch.Tensor:
        scores = own(a, b)
        return torch.where(torch.isinf(scores), fill[None, :].expand_as(scores), scores)

    return _top_lists(score_rows, user_ids, codes, features, context, k)


def recommend_tifu_knn(
    user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int, config: TifuConfig
) -> pd.DataFrame:
    """TIFU-KNN's top-k: the user's own time-decayed basket frequencies blended with their neighbours'."""
    codes = features.user_codes(user_ids)
    tifu = features.tifu(config)
    popularity = features.popularity / max(features.popularity.max(initial=0.0), 1e-9)
    fill = (1e-6 * popularity).astype(np.float32)

    def score_rows(a: int, b: int) -> torch.Tensor:
        scores = tifu.scores(np.maximum(codes[a:b], 0))
        scores[codes[a:b] < 0] = 0.0
        return torch.from_numpy(scores.astype(np.float32) + fill[None, :])

    return _top_lists(score_rows, user_ids, codes, features, context, k)


# What a served baseline's non-repeat items are explained as (repeat items are ``bought_before``).
BASELINE_REASONS = {
    "global_popularity": "popular",
    "category_popularity": "trending",
    "cooccurrence": "bought_together",
    "p_topfreq": "popular",
    "gp_topfreq": "popular",
    "tifu_knn": "customers_like_you",
}


def without_history(context: ServingContext, features: FeatureSet) -> ServingContext:
    """``context`` with every SKU a user bought before blocked too: what "discover" lists are scored under."""
    bought = features.repeats[["user", "item"]]
    blocked = pd.concat([context.blocked[["user", "item"]], bought], ignore_index=True).drop_duplicates()
    return replace(context, blocked=blocked.sort_values(["user", "item"], ignore_index=True))


def served_baseline_lists(
    name: str, recommend: Recommend, user_ids: np.ndarray, features: FeatureSet, context: ServingContext, k: int
) -> pd.DataFrame:
    """A baseline's lists as the storefront gets them: ``all`` from the baseline, ``buy_again`` the customer's
    own most bought (P-TopFreq), ``discover`` the baseline with every SKU bought before blocked; explained."""
    lists = pd.concat(
        [
            recommend(user_ids, features, context, k).assign(list="all"),
            recommend_p_topfreq(user_ids, features, context, k).assign(list="buy_again"),
            recommend(user_ids, features, without_history(context, features), k).assign(list="discover"),
        ],
        ignore_index=True,
    )
    users = features.user_codes(lists["user_id"])
    items = features.item_index.get_indexer(lists["sku"])
    lists["reason"] = explain_repeats(np.full(len(lists), BASELINE_REASONS[name], dtype=object), users, items, features)
    return lists[OUTPUT_COLUMNS]
