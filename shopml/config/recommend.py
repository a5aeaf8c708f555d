"""Knobs of the recommender: retrieval, ranking, business filters, evaluation and gating.

Every default is what the nightly run uses; tests shrink the model sizes and epochs
through the same objects. The lead nests ``RecommendConfig`` into ``Settings``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RetrievalConfig(BaseModel):
    """Matrix factorisation with item side features, trained on implicit feedback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_dim: int = Field(64, ge=2, description="Width of user and item vectors.")
    loss: Literal["bpr", "softmax"] = Field(
        "bpr", description="bpr: one uniform negative per positive; softmax: in-batch negatives with logQ correction."
    )
    epochs: int = Field(10, ge=0, description="Passes over the interactions; 0 leaves the random initialisation.")
    batch_size: int = Field(4096, ge=8, description="Positive pairs per optimiser step.")
    learning_rate: float = Field(0.01, gt=0, description="Adam step size.")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on the vectors that take part in a step.")
    temperature: float = Field(0.1, gt=0, description="Softmax temperature (softmax loss only).")
    weight_by_strength: bool = Field(True, description="Weight positives by log1p(interaction strength).")
    use_item_content: bool = Field(
        True, description="Add category, brand and price-band vectors to items, so unseen SKUs get a vector."
    )
    price_bands: int = Field(8, ge=1, description="Quantile bands of unit price used as an item feature.")
    n_candidates: int = Field(200, ge=1, description="Top-N items per user by dot product handed to the ranker.")
    score_batch_users: int = Field(2048, ge=1, description="Users per batched top-N matrix product.")


class RankerConfig(BaseModel):
    """XGBoost learning-to-rank over retrieval and co-purchase candidates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Literal["rank:ndcg", "rank:pairwise"] = "rank:ndcg"
    n_estimators: int = Field(200, ge=1, description="Boosting rounds (upper bound: early stopping may stop sooner).")
    max_depth: int = Field(6, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(1.0, gt=0, le=1)
    early_stopping_rounds: int = Field(20, ge=1, description="Rounds without NDCG@k gain on held-out users.")
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Share of training users held out for stopping.")
    max_train_users: int = Field(5_000, ge=1, description="Users (with a labelled purchase) sampled for training.")
    negatives_per_user: int = Field(
        100, ge=1, description="Unbought candidates sampled per training user (all bought ones are kept)."
    )
    seeds_per_user: int = Field(
        10, ge=1, description="Most recent SKUs of a user whose co-purchase neighbours are candidates."
    )
    cooc_neighbours: int = Field(20, ge=1, description="Co-occurrence neighbours taken per seed SKU.")
    repeat_candidates: int = Field(
        50, ge=0, description="The user's own most-bought SKUs (recency weighted) added as candidates."
    )
    reason_min_similarity: float = Field(
        0.5, ge=-1, le=1, description="Cosine above which a retrieval item is explained as similar_to:<seed>."
    )
    trending_min: float = Field(1.2, description="trend_7_28 above which an item is explained as trending.")


class FilterConfig(BaseModel):
    """Business rules applied to every list, model and baselines alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recent_purchase_days: int = Field(
        30, ge=0, description="Window in which a bought SKU may be suppressed (see the two repeat rules below)."
    )
    repeat_min_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="SKUs re-bought by at most this share of their buyers are suppressed after a purchase "
        "(1: every SKU bought in the window is, the old blanket ban; recent_purchase_days=0: none is).",
    )
    repeat_due_share: float = Field(
        0.0,
        ge=0,
        description="A re-bought SKU stays suppressed until this share of its repurchase cycle has passed "
        "(0: it may come back at once and the ranker decides when it is due).",
    )
    consumable_categories: tuple[str, ...] = Field((), description="Categories exempt from the recently-bought rule.")
    drop_out_of_stock: bool = Field(True, description="Drop SKUs whose known stock is out_of_stock.")
    stockout_risk_threshold: float = Field(
        0.5, ge=0, le=1, description="Inventory-plan stockout probability from which a SKU is down-ranked."
    )
    low_stock_risk: float = Field(
        0.5, ge=0, le=1, description="Risk given to stock_status 'low' when no inventory plan exists yet."
    )
    stockout_downrank_strength: float = Field(
        0.3, ge=0, description="Share of a user's score range subtracted per unit of stockout risk."
    )


class GateConfig(BaseModel):
    """When a candidate may replace the promoted model, and when lists may be published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_lift_over_baseline: float = Field(
        0.0, ge=0, description="Relative NDCG@10 lift required over the best baseline (0: strictly better)."
    )
    max_regression: float = Field(
        0.05, ge=0, le=1, description="Largest relative NDCG@10 drop allowed against the promoted model's."
    )
    max_fallback_share: float = Field(0.5, ge=0, le=1, description="Most users that may get an empty or fallback list.")
    min_coverage: float = Field(0.02, ge=0, le=1, description="Least share of the catalogue appearing in top-K lists.")
    min_diversity: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Least mean intra-list diversity of top-K lists, by category (else brand; "
        "not checked when the catalogue has neither, and the gate's result says so).",
    )
    diversity_min_labelled_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of SKUs that must carry a category (or brand) for diversity to be measured by it.",
    )


class AlsConfig(BaseModel):
    """Spark MLlib ALS (implicit) baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the Spark ALS baseline in evaluation.")
    rank: int = Field(64, ge=1)
    max_iter: int = Field(10, ge=1)
    reg_param: float = Field(0.1, ge=0)
    alpha: float = Field(1.0, gt=0, description="Confidence scale of implicit strength.")


class TifuConfig(BaseModel):
    """TIFU-KNN baseline (Hu et al., SIGIR 2020), with the paper's defaults for grocery-like re-ordering."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_size: int = Field(7, ge=1, description="Baskets per time group.")
    basket_decay: float = Field(0.9, gt=0, le=1, description="Decay of a basket within its group.")
    group_decay: float = Field(0.7, gt=0, le=1, description="Decay of a group by its age.")
    neighbours: int = Field(100, ge=1, description="Nearest users whose vectors are blended in.")
    alpha: float = Field(0.7, ge=0, le=1, description="Weight of the user's own vector against the neighbours'.")


class RecommendConfig(BaseModel):
    """Recommender settings (nested into the platform Settings by the lead as ``recommend``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(20, ge=1, description="Recommendations kept per user.")
    similar_k: int = Field(20, ge=1, description="Similar SKUs kept per SKU.")
    similar_cooc_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of co-occurrence similarity against embedding cosine for similar items."
    )
    eval_days: int = Field(7, ge=1, description="Evaluation window: purchases in (T - eval_days, T].")
    cpu_threads: int = Field(
        0,
        ge=0,
        description="CPU threads for torch and XGBoost; 0 keeps their default (every core). "
        "Set it where tasks share a machine: oversubscribed threads make small steps many times slower.",
    )
    metric_ks: tuple[int, ...] = Field((10, 20), description="Cut-offs at which list metrics are reported.")
    history_days: int = Field(
        730, ge=1, description="Days of purchase history read for repeat habits and the customer's own lists."
    )
    repeat_half_life_days: float = Field(
        60.0, gt=0, description="Half-life of a past order in the recency-weighted purchase count."
    )
    retrieval: RetrievalConfig = RetrievalConfig()
    ranker: RankerConfig = RankerConfig()
    filters: FilterConfig = FilterConfig()
    gate: GateConfig = GateConfig()
    default_baseline: Literal[
        "gp_topfreq", "p_topfreq", "tifu_knn", "cooccurrence", "global_popularity", "category_popularity"
    ] = Field(
        "gp_topfreq",
        description="Baseline served when no promoted version fits and this run evaluated nothing "
        "(the customer's own most bought, topped up by popularity).",
    )
    als: AlsConfig = AlsConfig()
    tifu: TifuConfig = TifuConfig()
