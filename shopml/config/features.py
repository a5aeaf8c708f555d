"""Knobs of the gold feature build (windows, weights, late-data lookback), with why each default was chosen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

HISTORY_DAYS = 90
"""The longest feature window: a nightly build never reads events older than this many days."""

EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase", "return")


class FeaturesConfig(BaseModel):
    """Feature-build settings; the window lengths named in column names (1/7/28/90 days) are fixed by the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    late_lookback_days: int = Field(
        7,
        ge=0,
        le=HISTORY_DAYS,
        description="Late events up to this many days old are corrected for; keep >= settings.late_event_max_days "
        "(older events are quarantined by clean, so 7 = its default misses nothing).",
    )
    interaction_window_days: int = Field(
        HISTORY_DAYS,
        ge=1,
        le=HISTORY_DAYS,
        description="Days of events in user_item_interactions; with a 14-day half-life the oldest weigh about 1%.",
    )
    decay_half_life_days: float = Field(
        14.0, gt=0, description="Interaction strength halves every this many days (two weeks of taste drift)."
    )
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "add_to_cart": 3.0,
            "remove_from_cart": 0.0,
            "purchase": 5.0,
            "return": -5.0,
        },
        description="Implicit-feedback weight per event type; a return cancels its purchase.",
    )
    last_purchased_skus: int = Field(10, ge=1, description="Length of user_features.last_purchased_skus.")
    top_categories: int = Field(10, ge=1, description="Categories kept in user_features.category_affinity.")
    co_purchase_window_days: int = Field(
        HISTORY_DAYS,
        ge=1,
        le=HISTORY_DAYS,
        description="Days of purchases forming a customer's basket (purchases are sparse).",
    )
    co_view_window_days: int = Field(28, ge=1, le=HISTORY_DAYS, description="Days of sessions counted for co-views.")
    max_basket_items: int = Field(
        50,
        ge=2,
        description="Baskets (a buyer's SKUs, a session's viewed SKUs) with more distinct SKUs are skipped: "
        "bulk buyers and crawlers add n² noise pairs.",
    )
    cooccurrence_top_n: int = Field(20, ge=1, description="Neighbours kept per SKU in item_cooccurrence.")
    backfill_snapshot_days: int = Field(
        15,
        ge=1,
        description="In a backfill window, the per-entity snapshot tables (user/item features, interactions, "
        "co-occurrence) are built for the last this-many dates (the models read T-14..T); sku_daily_demand "
        "is built for every date. Set it to the window length to rebuild every snapshot.",
    )
    purchase_similarity_weight: float = Field(
        0.7, ge=0, le=1, description="Share of co-purchase cosine in the similarity (the rest is co-view cosine)."
    )
    low_stock_units: int = Field(
        5, ge=0, description="On-hand at or below this is 'low' even when lead-time demand is smaller."
    )
    promo_min_discount: float = Field(
        0.1, gt=0, lt=1, description="A price this far below the 28-day highest list price marks a promotion."
    )
    dates_per_pass: int = Field(
        31,
        ge=1,
        description="Dates of the per-entity snapshot tables built and committed together in one Spark pass "
        "(corrections, backfills); a pass joins each daily summary row to up to this many dates, so it bounds a "
        "backfill's memory.",
    )
    demand_dates_per_pass: int = Field(
        400,
        ge=1,
        description="sku_daily_demand dates built and committed together; a pass reads one SKU × day series of its "
        "dates plus the 28 before, so it costs SKUs × days (a year of 5k SKUs: ~2M rows) and a year's backfill with "
        "its corrections is one pass. Lower it to bound one pass and Delta commit in very long windows.",
    )
    snapshot_lookback_days: int = Field(
        14, ge=0, description="How far back a product or inventory snapshot still counts as current."
    )

    @field_validator("event_weights")
    @classmethod
    def _known_event_types(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event type(s) {sorted(unknown)}; known: {', '.join(EVENT_TYPES)}")
        return weights
