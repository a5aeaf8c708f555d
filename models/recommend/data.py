"""The time-based split, the coded feature set of one as-of day, and candidate frames for ranking.

Everything here is pure pandas/numpy/torch on frames the pipeline has read. Users and
SKUs are coded as integer positions of one as-of day (``FeatureSet``) so that candidate
generation, feature lookup and filtering stay vectorised at 50k users × 10k SKUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from models.recommend.repeat import PurchaseHistory, empty_history
from models.recommend.retrieval import top_n
from models.recommend.tifu import TifuKnn, tifu_user_vectors
from shopml.config.recommend import RecommendConfig, TifuConfig

ITEM_FEATURES = (
    "unit_price",
    "price_change_7d",
    "views_1d",
    "views_7d",
    "views_28d",
    "units_sold_1d",
    "units_sold_7d",
    "units_sold_28d",
    "trend_7_28",
    "conversion_rate",
    "return_rate",
)
USER_FEATURES = (
    "recency_days",
    "orders_7d",
    "orders_28d",
    "orders_90d",
    "revenue_28d",
    "view_to_cart_rate",
    "cart_to_purchase_rate",
    "sessions_28d",
    "return_rate",
    "days_since_first_seen",
    "avg_unit_price",
)
PAIR_FEATURES = (
    "retrieval_score",
    "retrieval_rank",
    "cooc_score",
    "cooc_max",
    "cooc_seeds",
    "ui_strength",
    "ui_views",
    "ui_carts",
    "ui_purchases",
    "ui_days_since",
    "category_affinity",
    "price_ratio",
    "item_low_stock",
    "tifu_score",
    "tifu_neighbours",
    "repeat_orders",
    "repeat_recency_weighted",
    "repeat_days_since",
    "repeat_cycle_days",
    "repeat_due_ratio",
    "repeat_units_trend",
    "item_repeat_share",
    "item_cycle_days",
    "user_cycle_days",
    "user_order_days",
)
FEATURES = (*PAIR_FEATURES, *(f"item_{n}" for n in ITEM_FEATURES), *(f"user_{n}" for n in USER_FEATURES))


@dataclass(frozen=True)
class SplitDates:
    """As-of days of one run: the ranker learns on ranker_train, quality is measured on evaluate, serve scores."""

    ranker_train: date
    evaluate: date
    serve: date

    def windows(self) -> dict[str, tuple[date, date]]:
        """Label windows (start exclusive, end inclusive) following each training as-of day."""
        return {"ranker": (self.ranker_train, self.evaluate), "evaluate": (self.evaluate, self.serve)}


def split_dates(run_date: date, eval_days: int) -> SplitDates:
    """Features as of T-2w teach the ranker on purchases in (T-2w, T-w]; features as of T-w are evaluated on (T-w, T]."""
    return SplitDates(run_date - timedelta(days=2 * eval_days), run_date - timedelta(days=eval_days), run_date)


def purchases_between(order_lines: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Distinct (user_id, sku) bought with event_date in (start, end]; returns and anonymous orders excluded."""
    lines = order_lines[
        (order_lines["line_type"] == "purchase")
        & order_lines["user_id"].notna()
        & (order_lines["event_date"] > start)
        & (order_lines["event_date"] <= end)
    ]
    return lines[["user_id", "sku"]].drop_duplicates(ignore_index=True)


def _affinity_pairs(value: object) -> list:
    """(category, share) pairs of one user's affinity; missing (None, NaN) is no interest yet."""
    if isinstance(value, dict):
        return list(value.items())
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []


def _affinity_matrix(users: pd.DataFrame, categories: pd.Index) -> np.ndarray:
    matrix = np.zeros((len(users), len(categories)), dtype=np.float32)
    if "category_affinity" not in users or not len(categories):
        return matrix
    pairs = users["category_affinity"].map(_affinity_pairs)
    lengths = pairs.map(len).to_numpy()
    flat = [pair for row in pairs for pair in row]
    if not flat:
        return matrix
    keys, values = zip(*flat, strict=True)
    cols = categories.get_indexer(pd.Index(keys))
    rows = np.repeat(np.arange(len(users)), lengths)
    known = cols >= 0
    matrix[rows[known], cols[known]] = np.asarray(values, dtype=np.float32)[known]
    return matrix


def _with_catalogue_defaults(items: pd.DataFrame) -> pd.DataFrame:
    """The catalogue with every column the recommender reads, missing ones as unknown; prices <= 0 unknown."""
    items = items.copy()
    defaults = {"category": None, "brand": None, "active": True, "stock_status": "unknown"}
    for column, value in {**defaults, **dict.fromkeys(ITEM_FEATURES, np.nan)}.items():
        if column not in items:
            items[column] = value
    price = pd.to_numeric(items["unit_price"], errors="coerce").astype(float)
    items["unit_price"] = price.where(price > 0)
    return items


@dataclass
class FeatureSet:
    """One as-of day's gold features with users and SKUs coded as row positions.

    ``items`` is the catalogue (item_features plus any interacted SKU missing from it),
    ``users`` every user with features or interactions; ``interactions`` and
    ``cooccurrence`` carry the integer codes (user, item, other) next to the ids.
    """

    as_of: date
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    cooccurrence: pd.DataFrame
    history: PurchaseHistory
    _tifu: dict[TifuConfig, TifuKnn] = field(default_factory=dict, init=False, repr=False)

    def tifu(self, config: TifuConfig) -> TifuKnn:
        """TIFU-KNN over this day's purchase history (a baseline, and a ranker feature), built once per config."""
        if config not in self._tifu:
            vectors = tifu_user_vectors(self.history.baskets, self.user_index, self.item_index, config)
            self._tifu[config] = TifuKnn(vectors, config)
        return self._tifu[config]

    @cached_property
    def repeats(self) -> pd.DataFrame:
        """The purchase history's (user, item) pairs of catalogue SKUs, coded, sorted by user then most due first.

        "Most due" is the recency-weighted number of orders: what P-TopFreq ranks by.
        """
        pairs = self.history.pairs.assign(
            user=self.user_index.get_indexer(self.history.pairs["user_id"]),
            item=self.item_index.get_indexer(self.history.pairs["sku"]),
        )
        pairs = pairs[(pairs["user"] >= 0) & (pairs["item"] >= 0)]
        return pairs.sort_values(
            ["user", "recency_weighted", "item"], ascending=[True, False, True], kind="stable", ignore_index=True
        )

    @cached_property
    def repeat_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """``pair_keys`` of the history: (sorted pair keys, row in ``repeats`` of each)."""
        return _pair_index(self.repeats, len(self.items))

    def lookup_repeats(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Row in ``repeats`` of each (user, item) code pair, -1 where the user never bought the SKU."""
        return _lookup(self.repeat_keys, users.astype(np.int64) * len(self.items) + items)

    @cached_property
    def item_repeat_habits(self) -> np.ndarray:
        """items × (repeat_share, cycle_days) learned from every customer's history (NaN: never sold)."""
        skus = self.history.skus.reindex(self.item_index)
        return skus[["repeat_share", "cycle_days"]].to_numpy(dtype=np.float32, na_value=np.nan)

    @cached_property
    def user_repeat_habits(self) -> np.ndarray:
        """users × (cycle_days, order_days) of each customer's ordering (NaN: never bought)."""
        users = self.history.users.reindex(self.user_index)
        return users[["cycle_days", "order_days"]].to_numpy(dtype=np.float32, na_value=np.nan)

    @cached_property
    def item_index(self) -> pd.Index:
        return pd.Index(self.items["sku"])

    @cached_property
    def user_index(self) -> pd.Index:
        return pd.Index(self.users["user_id"])

    @cached_property
    def categories(self) -> pd.Index:
        return pd.Index(sorted(self.items["category"].dropna().astype(str).unique()))

    @cached_property
    def item_category(self) -> np.ndarray:
        """Category code per item, -1 when unknown."""
        return self.categories.get_indexer(self.items["category"].astype(object))

    @cached_property
    def affinity(self) -> np.ndarray:
        """users × categories share of each user's interaction strength (width 0 without categories)."""
        return _affinity_matrix(self.users, self.categories)

    def category_affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each user's affinity for the category of the paired item; NaN where the item has no category.

        Unknown is not "no interest": a catalogue without categories (order-line exports often
        have none) leaves the feature missing for the ranker instead of a misleading zero.
        """
        category = self.item_category[items]
        values = np.full(len(category), np.nan, dtype=np.float32)
        known = category >= 0
        values[known] = self.affinity[users[known], category[known]]
        return values

    @cached_property
    def item_matrix(self) -> np.ndarray:
        return self.items[list(ITEM_FEATURES)].to_numpy(dtype=np.float32, na_value=np.nan)

    @cached_property
    def user_matrix(self) -> np.ndarray:
        return self.users[list(USER_FEATURES)].to_numpy(dtype=np.float32, na_value=np.nan)

    @cached_property
    def interaction_age_days(self) -> np.ndarray:
        """Days from each interaction's last touch to the end of the as-of day."""
        end = pd.Timestamp(self.as_of + timedelta(days=1), tz="UTC")
        last = pd.to_datetime(self.interactions["last_interaction_ts"], utc=True)
        return ((end - last).dt.total_seconds() / 86_400).to_numpy(np.float32)

    @cached_property
    def pair_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted user*n_items+item keys, interaction row of each) for O(log n) pair lookup."""
        return _pair_index(self.interactions, len(self.items))

    def lookup_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Interaction row of each (user, item) code pair, -1 where the user never touched the SKU."""
        return _lookup(self.pair_keys, users.astype(np.int64) * len(self.items) + items)

    @cached_property
    def popularity(self) -> np.ndarray:
        """Distinct buyers per item in the interactions (ties broken by total strength)."""
        buyers = np.bincount(
            self.interactions["item"].to_numpy()[self.interactions["n_purchases"].to_numpy() > 0],
            minlength=len(self.items),
        ).astype(np.float64)
        strength = np.bincount(
            self.interactions["item"].to_numpy(), self.interactions["strength"].to_numpy(), minlength=len(self.items)
        )
        return buyers + strength / (strength.max() + 1.0)

    def user_codes(self, user_ids) -> np.ndarray:
        return self.user_index.get_indexer(pd.Index(user_ids))


def _pair_index(pairs: pd.DataFrame, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted user*n_items+item keys, row of each) of a frame of coded (user, item) pairs."""
    keys = pairs["user"].to_numpy(np.int64) * n_items + pairs["item"].to_numpy()
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def _lookup(sorted_keys: tuple[np.ndarray, np.ndarray], wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted key in a (sorted keys, row of each) index, -1 where absent."""
    keys, order = sorted_keys
    if not len(keys):
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, order[at], -1)


def build_feature_set(
    as_of: date,
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    user_features: pd.DataFrame,
    cooccurrence: pd.DataFrame,
    history: PurchaseHistory | None = None,
) -> FeatureSet:
    """Code one day's gold frames (already filtered to feature_date = ``as_of``) and the purchase history.

    Catalogue fields a shop does not have degrade instead of failing: an absent column is
    added as unknown (null category and brand, NaN feature, stock 'unknown'), and a
    non-positive price is unknown, not free (order-line exports carry 0 for missing prices).
    Customers known only from their history (no activity in the feature window) are users
    too, so everyone who ever bought gets a personal list.
    """
    history = history if history is not None else empty_history(as_of)
    # Codes follow the ids' order, not the order files were read in: a rewritten partition (a
    # backfill) then gives the same codes, the same ties and so the same lists.
    interactions = interactions.sort_values(["user_id", "sku"], kind="stable", ignore_index=True)
    items = _with_catalogue_defaults(item_features.drop_duplicates("sku").reset_index(drop=True))
    missing = pd.Index(interactions["sku"].unique()).difference(items["sku"])
    if len(missing):
        items = pd.concat([items, _with_catalogue_defaults(pd.DataFrame({"sku": missing}))], ignore_index=True)
    items = items.sort_values("sku", kind="stable", ignore_index=True)
    users = user_features.drop_duplicates("user_id")
    known = pd.Index(interactions["user_id"].unique()).union(history.user_ids)
    extra = known.difference(users["user_id"])
    # Users known only from interactions or history: no category interests yet (empty, not missing).
    newcomers = pd.DataFrame({"user_id": extra, "category_affinity": [[] for _ in extra]})
    users = pd.concat([users, newcomers], ignore_index=True).sort_values("user_id", kind="stable", ignore_index=True)
    for column in USER_FEATURES:
        if column not in users:
            users[column] = np.nan
    item_index, user_index = pd.Index(items["sku"]), pd.Index(users["user_id"])
    interactions = interactions.assign(
        user=user_index.get_indexer(interactions["user_id"]), item=item_index.get_indexer(interactions["sku"])
    ).reset_index(drop=True)
    cooccurrence = cooccurrence.assign(
        item=item_index.get_indexer(cooccurrence["sku"]), other=item_index.get_indexer(cooccurrence["other_sku"])
    )
    cooccurrence = cooccurrence[(cooccurrence["item"] >= 0) & (cooccurrence["other"] >= 0)].reset_index(drop=True)
    return FeatureSet(as_of, items, users, interactions, cooccurrence, history)


def recent_seeds(features: FeatureSet, per_user: int) -> pd.DataFrame:
    """The ``per_user`` most recently touched items of each user: (user, item) codes, sorted by user."""
    frame = features.interactions[["user", "item", "last_interaction_ts"]]
    frame = frame.sort_values(["user", "last_interaction_ts", "item"], ascending=[True, False, True], kind="stable")
    return frame[frame.groupby("user").cumcount() < per_user][["user", "item"]].reset_index(drop=True)


def rows_of(sorted_users: np.ndarray, user_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a frame sorted by user code: (row in ``user_codes``, frame position) of every entry of those users."""
    lo = np.searchsorted(sorted_users, user_codes, side="left")
    hi = np.searchsorted(sorted_users, user_codes, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(len(user_codes)), counts)
    positions = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    return rows, positions


def build_candidates(
    user_codes: np.ndarray,
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
    features: FeatureSet,
    seeds: pd.DataFrame,
    available: np.ndarray,
    blocked: pd.DataFrame,
    config: RecommendConfig,
) -> pd.DataFrame:
    """Retrieval top-N, co-purchase neighbours of recent SKUs and the user's own most-bought SKUs, for a batch of users.

    ``blocked`` holds (user, item) codes sorted by user that must not be recommended;
    unavailable items are masked too. One row per (row, item) with the retrieval score
    (computed for candidates from the other sources as well), its rank (NaN outside the
    top-N), the summed and best co-occurrence similarity, the seed SKU behind it and the
    TIFU-KNN score (the strongest repeat baseline's, as a feature the ranker can weigh).
    """
    block_rows, block_at = rows_of(blocked["user"].to_numpy(), user_codes)
    block_items = blocked["item"].to_numpy()[block_at]
    scores, columns = top_n(
        lambda a, b: user_vectors[a:b] @ item_vectors.T,
        len(user_codes),
        config.retrieval.n_candidates,
        available=available,
        blocked=(block_rows, block_items),
        batch_rows=config.retrieval.score_batch_users,
    )
    filled = columns >= 0
    retrieved = pd.DataFrame(
        {
            "row": np.nonzero(filled)[0],
            "item": columns[filled],
            "retrieval_rank": (np.nonzero(filled)[1] + 1).astype(np.float32),
            "retrieval_score": scores[filled],
        }
    )

    seed_rows, seed_at = rows_of(seeds["user"].to_numpy(), user_codes)
    seed_frame = pd.DataFrame({"row": seed_rows, "seed": seeds["item"].to_numpy()[seed_at]})
    cooc = features.cooccurrence
    cooc = cooc[cooc["rank"] <= config.ranker.cooc_neighbours][["item", "other", "similarity"]]
    linked = seed_frame.merge(cooc, left_on="seed", right_on="item").drop(columns="item")
    linked = linked.rename(columns={"other": "item"})
    blocked_keys = np.sort(block_rows.astype(np.int64) * len(features.items) + block_items)

    def allowed(frame: pd.DataFrame) -> np.ndarray:
        keys = frame["row"].to_numpy(np.int64) * len(features.items) + frame["item"].to_numpy()
        return available[frame["item"].to_numpy()] & ~np.isin(keys, blocked_keys)

    linked = linked[allowed(linked)]
    linked = linked.sort_values(["row", "item", "similarity"], ascending=[True, True, False], kind="stable")
    grouped = linked.groupby(["row", "item"], sort=False)
    co = grouped.agg(
        cooc_score=("similarity", "sum"),
        cooc_max=("similarity", "first"),
        cooc_seed=("seed", "first"),
        cooc_seeds=("seed", "size"),
    ).reset_index()

    own_rows, own_at = rows_of(features.repeats["user"].to_numpy(), user_codes)
    own = pd.DataFrame({"row": own_rows, "item": features.repeats["item"].to_numpy()[own_at]})
    own = own[allowed(own)]
    own = own[own.groupby("row").cumcount() < config.ranker.repeat_candidates]

    candidates = retrieved.merge(co, on=["row", "item"], how="outer").merge(own, on=["row", "item"], how="outer")
    candidates["cooc_seed"] = candidates["cooc_seed"].fillna(-1).astype(np.int64)
    for column in ("cooc_score", "cooc_max", "cooc_seeds"):
        candidates[column] = candidates[column].fillna(0).astype(np.float32)
    # Candidates from co-purchase or history only were not in the top-N: score them with the same dot product.
    missing = candidates["retrieval_score"].isna().to_numpy()
    rows_t = torch.from_numpy(candidates["row"].to_numpy(np.int64)[missing]).to(user_vectors.device)
    items_t = torch.from_numpy(candidates["item"].to_numpy(np.int64)[missing]).to(item_vectors.device)
    with torch.no_grad():
        dots = (user_vectors[rows_t] * item_vectors[items_t]).sum(1).cpu().numpy()
    candidates.loc[missing, "retrieval_score"] = dots
    rows, items = candidates["row"].to_numpy(), candidates["item"].to_numpy()
    tifu = features.tifu(config.tifu)
    own, neighbours = tifu.parts(user_codes)
    candidates["tifu_score"] = tifu.blend(own[rows, items], neighbours[rows, items]).astype(np.float32)
    candidates["tifu_neighbours"] = neighbours[rows, items].astype(np.float32)
    candidates["user"] = user_codes[rows]
    return candidates.sort_values(["row", "item"], ignore_index=True)


def candidate_matrix(candidates: pd.DataFrame, features: FeatureSet) -> np.ndarray:
    """The ranker's feature matrix (columns in ``FEATURES`` order) for candidate rows."""
    users, items = candidates["user"].to_numpy(), candidates["item"].to_numpy()
    hit = features.lookup_pairs(users, items)
    found = hit >= 0
    inter = features.interactions

    def pair(column: str, fill: float = 0.0) -> np.ndarray:
        values = np.full(len(hit), fill, dtype=np.float32)
        values[found] = inter[column].to_numpy()[hit[found]]
        return values

    since = np.full(len(hit), np.nan, dtype=np.float32)
    since[found] = features.interaction_age_days[hit[found]]
    affinity = features.category_affinity(users, items)
    item_block = features.item_matrix[items]
    user_block = features.user_matrix[users]
    price, usual = (
        item_block[:, ITEM_FEATURES.index("unit_price")],
        user_block[:, USER_FEATURES.index("avg_unit_price")],
    )
    low = (features.items["stock_status"].to_numpy() == "low")[items]
    repeat_block = _repeat_features(features, users, items)
    pair_block = np.column_stack(
        [
            candidates["retrieval_score"].to_numpy(np.float32),
            candidates["retrieval_rank"].to_numpy(np.float32),
            candidates["cooc_score"].to_numpy(np.float32),
            candidates["cooc_max"].to_numpy(np.float32),
            candidates["cooc_seeds"].to_numpy(np.float32),
            pair("strength"),
            pair("n_views"),
            pair("n_carts"),
            pair("n_purchases"),
            since,
            affinity,
            # Unknown (NaN) or non-positive prices on either side leave the ratio missing.
            np.divide(price, usual, out=np.full(len(price), np.nan, np.float32), where=(usual > 0) & (price > 0)),
            low.astype(np.float32),
            candidates["tifu_score"].to_numpy(np.float32),
            candidates["tifu_neighbours"].to_numpy(np.float32),
        ]
    )
    return np.hstack([pair_block, repeat_block, item_block, user_block]).astype(np.float32)


def _repeat_features(features: FeatureSet, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The ``repeat_*``, item and user repeat-habit columns of ``PAIR_FEATURES`` for (user, item) code pairs.

    Pairs never bought have 0 orders and NaN for the rest, so the ranker tells "never bought"
    from "bought long ago"; the due ratio (days since the last purchase over the repurchase
    cycle, the pair's own else the SKU's) is what lets it learn when a repeat item is due.
    """
    hit = features.lookup_repeats(users, items)
    found = hit >= 0
    repeats = features.repeats

    def pair(column: str, fill: float = np.nan) -> np.ndarray:
        values = np.full(len(hit), fill, dtype=np.float32)
        values[found] = repeats[column].to_numpy(dtype=np.float32)[hit[found]]
        return values

    item_share, item_cycle = features.item_repeat_habits[items].T
    user_cycle, user_orders = features.user_repeat_habits[users].T
    since = features.history.as_of_day - pair("last_day")
    cycle = np.where(np.isnan(pair("cycle_days")), item_cycle, pair("cycle_days"))
    orders = pair("orders", 0.0)
    mean_units = np.divide(pair("units"), orders, out=np.full(len(hit), np.nan, np.float32), where=orders > 0)
    return np.column_stack(
        [
            orders,
            pair("recency_weighted", 0.0),
            since,
            cycle,
            np.divide(since, cycle, out=np.full(len(hit), np.nan, np.float32), where=cycle > 0),
            np.divide(pair("last_units"), mean_units, out=np.full(len(hit), np.nan, np.float32), where=mean_units > 0),
            item_share,
            item_cycle,
            user_cycle,
            user_orders,
        ]
    )


def label_candidates(candidates: pd.DataFrame, truth: pd.DataFrame, features: FeatureSet) -> np.ndarray:
    """1 for candidates the user bought in the label window (truth: user_id, sku), else 0."""
    users, items = features.user_codes(truth["user_id"]), features.item_index.get_indexer(truth["sku"])
    known = (users >= 0) & (items >= 0)
    truth_keys = users[known].astype(np.int64) * len(features.items) + items[known]
    keys = candidates["user"].to_numpy(np.int64) * len(features.items) + candidates["item"].to_numpy()
    return np.isin(keys, truth_keys).astype(np.float32)


def build_similar_items(
    item_vectors: torch.Tensor, features: FeatureSet, available: np.ndarray, config: RecommendConfig
) -> pd.DataFrame:
    """Top ``similar_k`` recommendable SKUs per catalogue SKU, for product pages.

    Candidates are the nearest SKUs by embedding cosine plus co-occurrence neighbours;
    the score blends the two (``similar_cooc_weight``). Reasons: ``co_purchased`` (bought
    together), ``co_viewed`` (browsed together), else ``similar_embedding``.
    """
    unit = torch.nn.functional.normalize(item_vectors[:, :-1], dim=1)
    n_items = len(features.items)
    _, columns = top_n(
        lambda a, b: unit[a:b] @ unit.T,
        n_items,
        config.similar_k,
        available=available,
        blocked=(np.arange(n_items), np.arange(n_items)),
        batch_rows=config.retrieval.score_batch_users,
    )
    rows, slots = np.nonzero(columns >= 0)
    nearest = pd.DataFrame({"item": rows, "other": columns[rows, slots]})
    cooc = features.cooccurrence[["item", "other", "similarity", "co_purchase_count"]]
    cooc = cooc[available[cooc["other"].to_numpy()] & (cooc["item"] != cooc["other"])]
    pairs = nearest.merge(cooc, on=["item", "other"], how="outer")
    with torch.no_grad():
        cosine = unit[torch.from_numpy(pairs["item"].to_numpy())] * unit[torch.from_numpy(pairs["other"].to_numpy())]
        cosine = cosine.sum(1).cpu().numpy()
    weight = config.similar_cooc_weight
    pairs["score"] = (1 - weight) * cosine + weight * pairs["similarity"].fillna(0.0).to_numpy()
    pairs["reason"] = np.where(
        pairs["co_purchase_count"].fillna(0) > 0,
        "co_purchased",
        np.where(pairs["similarity"].notna(), "co_viewed", "similar_embedding"),
    )
    pairs = pairs.sort_values(["item", "score", "other"], ascending=[True, False, True], kind="stable")
    pairs["rank"] = pairs.groupby("item").cumcount() + 1
    pairs = pairs[pairs["rank"] <= config.similar_k]
    skus = features.item_index.to_numpy()
    return pd.DataFrame(
        {
            "sku": skus[pairs["item"].to_numpy()],
            "rank": pairs["rank"].to_numpy(np.int32),
            "similar_sku": skus[pairs["other"].to_numpy()],
            "score": pairs["score"].to_numpy(np.float64),
            "reason": pairs["reason"].to_numpy(),
        }
    )
