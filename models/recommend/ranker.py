"""Ranking stage: XGBoost learning-to-rank over retrieval and co-purchase candidates, with reason codes.

The ranker sees, per (user, candidate): the retrieval score and rank, co-purchase
similarity from the user's recent SKUs, the user's own history with the SKU, the
user's affinity for its category, its price relative to the user's usual spend, and
item and user features (popularity windows, trend, conversion, recency, activity).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xgboost as xgb

from models.recommend.data import (
    FEATURES,
    FeatureSet,
    build_candidates,
    candidate_matrix,
    label_candidates,
    recent_seeds,
    rows_of,
)
from models.recommend.filters import downrank_stockout_risk
from models.recommend.repeat import bought_before_reasons
from models.recommend.retrieval import TrainedRetrieval
from shopml.config.recommend import RankerConfig, RecommendConfig

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["user_id", "list", "rank", "sku", "score", "reason", "is_fallback"]
# The lists a storefront shows: everything, items the customer bought before, items new to them.
LISTS = ("all", "buy_again", "discover")


@dataclass(frozen=True)
class ServingContext:
    """What the business rules need at one as-of day: blocked (user, item) codes, availability and risk per item.

    ``risk_strength`` is how far baseline lists (served ones included) push risky SKUs down, as
    ``stockout_downrank_strength`` does for the model's; 0 leaves them as scored.
    """

    blocked: pd.DataFrame
    available: np.ndarray
    risk: np.ndarray
    risk_strength: float = 0.0


def _candidate_batches(
    user_ids: np.ndarray,
    retrieval: TrainedRetrieval,
    item_vectors: torch.Tensor,
    features: FeatureSet,
    seeds: pd.DataFrame,
    context: ServingContext,
    config: RecommendConfig,
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """(user codes, candidates) per batch of users known to both the model and the features."""
    step = config.retrieval.score_batch_users
    for start in range(0, len(user_ids), step):
        chunk = user_ids[start : start + step]
        known, user_vectors = retrieval.user_vectors(chunk)
        codes = features.user_codes(chunk[known])
        if (codes < 0).any():
            raise ValueError("users to rank must have features as of the scoring day")
        candidates = build_candidates(
            codes, user_vectors, item_vectors, features, seeds, context.available, context.blocked, config
        )
        yield codes, candidates


def training_examples(
    user_ids: np.ndarray,
    retrieval: TrainedRetrieval,
    features: FeatureSet,
    truth: pd.DataFrame,
    context: ServingContext,
    config: RecommendConfig,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, query ids) of candidates for users whose later purchases (``truth``) label them.

    Every bought candidate is kept and ``negatives_per_user`` unbought ones are sampled;
    users none of whose candidates were bought teach a ranker nothing and are left out.
    """
    rng = np.random.default_rng(seed)
    item_vectors = retrieval.item_vectors(features.items)
    seeds = recent_seeds(features, config.ranker.seeds_per_user)
    matrices, labels, groups = [], [], []
    for codes, candidates in _candidate_batches(user_ids, retrieval, item_vectors, features, seeds, context, config):
        label = label_candidates(candidates, truth, features)
        rows = candidates["row"].to_numpy()
        noise = rng.random(len(candidates))
        frame = pd.DataFrame({"row": rows, "label": label, "noise": np.where(label > 0, -1.0, noise)})
        keep = frame.groupby("row")["noise"].rank(method="first").to_numpy() <= (
            config.ranker.negatives_per_user + frame.groupby("row")["label"].transform("sum").to_numpy()
        )
        useful = frame.groupby("row")["label"].transform("max").to_numpy() > 0
        keep &= useful
        matrices.append(candidate_matrix(candidates[keep], features))
        labels.append(label[keep])
        groups.append(codes[rows[keep]])
    if not matrices:
        return np.empty((0, len(FEATURES)), np.float32), np.empty(0, np.float32), np.empty(0, np.int64)
    return np.vstack(matrices), np.concatenate(labels), np.concatenate(groups)


def train_ranker_model(
    matrix: np.ndarray, labels: np.ndarray, groups: np.ndarray, config: RankerConfig, top_k: int, seed: int, device: str
) -> tuple[xgb.Booster, dict]:
    """Fit an XGBoost ranker; a share of the users is held out to stop at the best NDCG@top_k."""
    order = np.argsort(groups, kind="stable")
    matrix, labels, groups = matrix[order], labels[order], groups[order]
    users = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_valid = int(len(users) * config.validation_fraction)
    valid_users = rng.choice(users, n_valid, replace=False) if n_valid else np.empty(0, users.dtype)
    is_valid = np.isin(groups, valid_users)
    params = {
        "objective": config.objective,
        "eval_metric": f"ndcg@{top_k}",
        "tree_method": "hist",
        "device": device,
        "max_depth": config.max_depth,
        "eta": config.learning_rate,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "seed": seed,
    }
    if config.objective == "rank:ndcg":
        params |= {"lambdarank_pair_method": "topk", "lambdarank_num_pair_per_sample": top_k}
    train = xgb.DMatrix(matrix[~is_valid], labels[~is_valid], qid=groups[~is_valid], feature_names=list(FEATURES))
    evals = [(train, "train")]
    if is_valid.any():
        valid = xgb.DMatrix(matrix[is_valid], labels[is_valid], qid=groups[is_valid], feature_names=list(FEATURES))
        evals.append((valid, "valid"))
    history: dict = {}
    booster = xgb.train(
        params,
        train,
        num_boost_round=config.n_estimators,
        evals=evals,
        evals_result=history,
        early_stopping_rounds=config.early_stopping_rounds if is_valid.any() else None,
        verbose_eval=False,
    )
    last = evals[-1][1]
    curve = history[last][f"ndcg@{top_k}"]
    best = int(getattr(booster, "best_iteration", len(curve) - 1))
    if is_valid.any():
        # Keep exactly the trees up to the best round, so scoring needs no iteration range.
        booster = booster[: best + 1]
    for round_no in range(0, len(curve), max(1, len(curve) // 10)):
        log.info("ranker round %d %s ndcg@%d %.4f", round_no + 1, last, top_k, curve[round_no])
    info = {
        "rows": len(labels),
        "users": len(users),
        "positives": int(labels.sum()),
        "best_iteration": best,
        f"{last}_ndcg@{top_k}": float(curve[best]),
        "params": params,
    }
    log.info("ranker trained on %d rows of %d users; best round %d", len(labels), len(users), best + 1)
    return booster, info


def assign_reasons(
    top: pd.DataFrame,
    seeds: pd.DataFrame,
    item_vectors: torch.Tensor,
    features: FeatureSet,
    config: RankerConfig,
) -> np.ndarray:
    """A short, human-readable reason per recommended (user, item) code pair.

    ``bought_before:<times>x:<last date>``: the customer bought it before; else
    ``similar_to:<sku>``: the co-purchase seed behind the candidate, else the user's recent
    SKU closest in embedding space when close enough; ``popular_in:<category>``: the user
    has shown interest in its category (never for SKUs without one); ``trending``: its sales
    are rising; else ``retrieval``.
    """
    skus = features.item_index.to_numpy()
    reason = np.full(len(top), "retrieval", dtype=object)
    cooc_seed = top["cooc_seed"].to_numpy()
    has_seed = cooc_seed >= 0
    reason[has_seed] = "similar_to:" + skus[cooc_seed[has_seed]].astype(object)

    open_at = np.flatnonzero(~has_seed)
    cand_rows, seed_at = rows_of(seeds["user"].to_numpy(), top["user"].to_numpy()[open_at])
    seed_items = seeds["item"].to_numpy()[seed_at]
    items = top["item"].to_numpy()[open_at][cand_rows]
    unit = torch.nn.functional.normalize(item_vectors[:, :-1], dim=1)
    with torch.no_grad():
        cosine = (unit[torch.from_numpy(items)] * unit[torch.from_numpy(seed_items)]).sum(1).cpu().numpy()
    cosine[items == seed_items] = -np.inf
    pairs = pd.DataFrame({"at": cand_rows, "cosine": cosine, "seed": seed_items})
    best = pairs.sort_values(["at", "cosine"], ascending=[True, False], kind="stable").drop_duplicates("at")
    best = best[best["cosine"] >= config.reason_min_similarity]
    similar = open_at[best["at"].to_numpy()]
    reason[similar] = "similar_to:" + skus[best["seed"].to_numpy()].astype(object)

    open_rest = np.ones(len(top), bool)
    open_rest[has_seed] = False
    open_rest[similar] = False
    item = top["item"].to_numpy()
    category = features.item_category[item]
    # NaN (no category, as in catalogues without any) is not a liked category.
    liked = np.nan_to_num(features.category_affinity(top["user"].to_numpy(), item)) > 0
    popular = open_rest & liked
    reason[popular] = "popular_in:" + features.categories.to_numpy()[category[popular]].astype(object)
    trend = features.items["trend_7_28"].to_numpy(dtype=float, na_value=0.0)[item]
    reason[open_rest & ~liked & (trend >= config.trending_min)] = "trending"
    return explain_repeats(reason, top["user"].to_numpy(), item, features)


def explain_repeats(reason: np.ndarray, users: np.ndarray, items: np.ndarray, features: FeatureSet) -> np.ndarray:
    """``reason`` with every SKU the customer bought before explained as ``bought_before``, whatever else led to it."""
    hit = features.lookup_repeats(users, items)
    found = hit >= 0
    repeats = features.repeats
    reason = reason.copy()
    reason[found] = bought_before_reasons(
        repeats["orders"].to_numpy()[hit[found]], repeats["last_day"].to_numpy()[hit[found]]
    )
    return reason


def split_lists(ranked: pd.DataFrame, features: FeatureSet, k: int) -> pd.DataFrame:
    """The three served lists from candidates ranked per user (``row`` ascending, best first within a row).

    ``all`` is the top ``k``; ``buy_again`` the top ``k`` SKUs the customer bought before;
    ``discover`` the top ``k`` new to them. Adds ``list`` and ``rank`` columns.
    """
    bought = features.lookup_repeats(ranked["user"].to_numpy(), ranked["item"].to_numpy()) >= 0
    lists = []
    for name, keep in (("all", np.ones(len(ranked), bool)), ("buy_again", bought), ("discover", ~bought)):
        part = ranked[keep]
        rank = part.groupby("row").cumcount().to_numpy() + 1
        lists.append(part[rank <= k].assign(list=name, rank=rank[rank <= k].astype(np.int32)))
    return pd.concat(lists, ignore_index=True)


def recommend_users(
    user_ids: np.ndarray,
    retrieval: TrainedRetrieval,
    booster: xgb.Booster,
    features: FeatureSet,
    context: ServingContext,
    config: RecommendConfig,
) -> pd.DataFrame:
    """The three lists (``LISTS``) of each user known to the model: retrieve, rank, apply stock risk, explain.

    Users unknown to the model are skipped (they get lists from their history or fallback lists elsewhere).
    """
    item_vectors = retrieval.item_vectors(features.items)
    seeds = recent_seeds(features, config.ranker.seeds_per_user)
    skus = features.item_index.to_numpy()
    users = features.user_index.to_numpy()
    outputs = []
    for _, candidates in _candidate_batches(user_ids, retrieval, item_vectors, features, seeds, context, config):
        if candidates.empty:
            continue
        raw = booster.inplace_predict(candidate_matrix(candidates, features))
        items, rows = candidates["item"].to_numpy(), candidates["row"].to_numpy()
        score = downrank_stockout_risk(
            raw.astype(np.float64), rows, context.risk[items], config.filters.stockout_downrank_strength
        )
        ranked = candidates.assign(score=score).sort_values(
            ["row", "score", "item"], ascending=[True, False, True], kind="stable"
        )
        top = split_lists(ranked, features, config.top_k)
        outputs.append(
            pd.DataFrame(
                {
                    "user_id": users[top["user"].to_numpy()],
                    "list": top["list"].to_numpy(),
                    "rank": top["rank"].to_numpy(np.int32),
                    "sku": skus[top["item"].to_numpy()],
                    "score": top["score"].to_numpy(np.float64),
                    "reason": assign_reasons(top, seeds, item_vectors, features, config.ranker),
                    "is_fallback": False,
                }
            )
        )
    if not outputs:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in OUTPUT_COLUMNS})
    return pd.concat(outputs, ignore_index=True)


def save_ranker(booster: xgb.Booster, folder: Path) -> None:
    booster.save_model(folder / "ranker.json")


def load_ranker(folder: Path, device: str = "cpu") -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(folder / "ranker.json")
    booster.set_param({"device": device})
    return booster
