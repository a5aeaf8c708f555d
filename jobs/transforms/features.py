"""Gold feature families as pure Spark transformations: DataFrames in, one DataFrame per family out.

Point-in-time rule
    Features as of day D (``feature_date``) use only events with
    ``event_ts < D + 1 day 00:00 UTC``, i.e. ``event_date <= D``, whatever
    day they landed. Product and inventory attributes come from the latest
    snapshot with ``snapshot_date <= D``. Rebuilding D later therefore gives
    the same rows, except for late events whose event time falls in D's
    windows: those belong to D and are meant to change it.

Late-data rule
    A late event (``landing_date`` R, ``event_date`` E < R) changes every
    feature date F in [E, R): the windows of F contain E. The nightly build
    for R re-derives those dates, as far back as the configured lookback
    (events older than ``late_event_max_days`` are quarantined by clean), and
    records each in ``gold.feature_corrections`` (see ``plan_corrections``).
    Nothing relies on processing time: a rebuilt day sees every event whose
    event time falls in its windows, whenever it landed.

Bounded cost
    The longest window is 90 days (``HISTORY_DAYS``). A build of D reads
    event partitions D-89..D only, first summarised per day (user×SKU×day,
    SKU×day, …) by ``summarise_activity``; every family then aggregates those
    daily rows, so a night's cost does not grow with the length of history.
    A family builds a set of feature dates in one pass (each daily row joined
    to the dates whose window holds it), so corrections and backfills share
    one scan and pay Spark's per-job overhead once, not once per day.

Windows
    An N-day window as of D covers event dates D-N+1..D (the 1-day window is D).

Feeds without views or carts (purchase/return-only shops) build every table:
rates whose denominator is missing are null (see the column docs), counts 0.
Money is summed as it comes: the platform assumes one shop currency.

Prices of 0 or less are unknown
    Real exports hold order lines at price 0 (free samples, adjustments) and
    catalogue placeholders of 0. Every price-derived feature (list prices,
    average paid prices, promotion flags, price changes) reads such a price as
    null (``_known_price``), so it neither counts as a 100% discount nor drags
    an average to 0; the units of those lines still count as demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shopml.catalog import (
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_SKU_DAILY_DEMAND,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    spec,
)
from shopml.config.features import HISTORY_DAYS, FeaturesConfig

WINDOWS = {"user": (1, 7, 28, 90), "item": (1, 7, 28)}
DEMAND_LAGS = (1, 7, 14, 28)
ROLLING_DAYS = (7, 28)
PROMO_REFERENCE_DAYS = 28
DEMAND_SPAN = max(*DEMAND_LAGS, *ROLLING_DAYS)
"""Days of demand before a demand day that its row reads: lags, rolling windows, SKUs sold since."""


def gold_schema(table: str) -> T.StructType:
    """The catalog's schema of a gold table, every column nullable so later writes may hold nulls."""
    return spec(table).spark_schema()


def conform(df: DataFrame, table: str) -> DataFrame:
    """Select and cast ``df`` to the table's declared columns, all nullable, doubles rounded to 9 decimals.

    Delta (delta-rs) keeps the nullability of a table's first write, and Spark
    marks expressions like ``count`` or literals non-nullable: unioning with an
    empty frame of the nullable schema makes the written schema the declared one.
    """
    schema = gold_schema(table)
    typed = df.select([_typed(field) for field in schema])
    return typed.unionByName(df.sparkSession.createDataFrame([], schema))


def _typed(field: T.StructField) -> Column:
    """A column cast to its declared type; doubles rounded to 9 decimals because floating-point sums depend on
    how Spark partitioned the input, and a rerun must give the same rows."""
    column = F.col(field.name).cast(field.dataType)
    if isinstance(field.dataType, T.DoubleType):
        column = F.round(column, 9)
    return column.alias(field.name)


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` in UTC: the point-in-time cut-off of features as of ``day``."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _days_back(as_of: date, days: int) -> date:
    """First day of the ``days``-day window ending on ``as_of``."""
    return as_of - timedelta(days=days - 1)


def _count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _ratio(numerator: Column, denominator: Column, cap: float | None = None) -> Column:
    """numerator / denominator, null when the denominator is 0 or null (Spark 4's ANSI mode raises on / 0)."""
    value = numerator.cast("double") / denominator
    return F.when(denominator > 0, F.least(value, F.lit(cap)) if cap is not None else value)


def _known_price(price: Column) -> Column:
    """A price as a double, null unless above 0: a price of 0 (free sample, adjustment, catalogue placeholder)
    or below says nothing about what the product costs, and read as a price it is a 100% discount."""
    price = price.cast("double")
    return F.when(price > 0, price)


# ---- daily summaries shared by the families ---------------------------------------------------


@dataclass(frozen=True)
class DailyActivity:
    """Per-day summaries of the events a build needs; every family aggregates these, never raw events.

    sku_user_days:     user_id (null for anonymous traffic), sku, event_date, n_views, n_carts, n_purchases,
                       n_returns, units_purchased, units_returned, priced_units and paid_amount (purchased
                       units with a known price, and what they cost), points (summed event weights), last_ts,
                       last_purchase_ts: the one pass over the events
    sku_days:          sku, event_date and the same counters, all users together
    user_order_days:   user_id, event_date, n_orders, revenue, units_purchased, units_returned, priced_revenue,
                       priced_units (from order lines; priced_* over purchase lines with a known price)
    user_session_days: user_id, session_id, event_date (distinct)
    view_baskets:      event_date, skus: the sorted distinct SKUs one session viewed that day (at most
                       ``max_basket_items``), from the co-view window of the first build date on
    """

    sku_user_days: DataFrame
    sku_days: DataFrame
    user_order_days: DataFrame
    user_session_days: DataFrame
    view_baskets: DataFrame

    @property
    def user_sku_days(self) -> DataFrame:
        """sku_user_days of customers with an id (Spark reads it from the cached summary)."""
        return self.sku_user_days.where(F.col("user_id").isNotNull())

    def frames(self) -> list[DataFrame]:
        return [getattr(self, f.name) for f in fields(self)]

    def persist(self) -> DailyActivity:
        """Cache every summary (the first one before the ones derived from it, so they share its scan)."""
        for frame in self.frames():
            frame.persist(StorageLevel.MEMORY_AND_DISK)
        return self

    def unpersist(self) -> None:
        for frame in self.frames():
            frame.unpersist()


def summarise_activity(
    events: DataFrame, order_lines: DataFrame, first_date: date, last_date: date, config: FeaturesConfig
) -> DailyActivity:
    """Summarise the events needed to build feature dates ``first_date``..``last_date`` into daily rows.

    Only event dates in [first_date - 89, last_date] and event times before the
    end of ``last_date`` are used; co-views only from the co-view window of
    ``first_date`` on, because the session pairs are the largest summary.
    """
    start = _days_back(first_date, HISTORY_DAYS)
    in_range = F.col("event_date").between(F.lit(start), F.lit(last_date)) & (
        F.col("event_ts") < F.lit(end_of_day(last_date))
    )
    events = events.where(in_range)
    order_lines = order_lines.where(in_range)
    kind = F.col("event_type")
    is_purchase = kind == "purchase"
    weight = F.lit(0.0)
    for event_type, value in config.event_weights.items():
        weight = F.when(kind == event_type, F.lit(float(value))).otherwise(weight)
    quantity = F.col("quantity").cast("double")
    priced_purchase = is_purchase & _known_price(F.col("unit_price")).isNotNull()
    counters = [
        _count_if(kind == "view").alias("n_views"),
        _count_if(kind == "add_to_cart").alias("n_carts"),
        _count_if(is_purchase).alias("n_purchases"),
        _count_if(kind == "return").alias("n_returns"),
        F.sum(F.when(is_purchase, quantity).otherwise(0.0)).alias("units_purchased"),
        F.sum(F.when(kind == "return", quantity).otherwise(0.0)).alias("units_returned"),
        F.sum(F.when(priced_purchase, quantity).otherwise(0.0)).alias("priced_units"),
        F.sum(F.when(priced_purchase, quantity * F.col("unit_price").cast("double")).otherwise(0.0)).alias(
            "paid_amount"
        ),
    ]
    sku_user_days = events.groupBy("user_id", "sku", "event_date").agg(
        *counters,
        F.sum(weight).alias("points"),
        F.max("event_ts").alias("last_ts"),
        F.max(F.when(is_purchase, F.col("event_ts"))).alias("last_purchase_ts"),
    )
    summed = [
        "n_views",
        "n_carts",
        "n_purchases",
        "n_returns",
        "units_purchased",
        "units_returned",
        "priced_units",
        "paid_amount",
    ]
    sku_days = sku_user_days.groupBy("sku", "event_date").agg(*[F.sum(c).alias(c) for c in summed])
    is_purchase_line = F.col("line_type") == "purchase"
    priced_line = is_purchase_line & _known_price(F.col("unit_price")).isNotNull()
    user_order_days = (
        order_lines.where(F.col("user_id").isNotNull())
        .groupBy("user_id", "event_date")
        .agg(
            F.countDistinct(F.when(is_purchase_line, F.col("order_id"))).alias("n_orders"),
            F.sum(F.when(is_purchase_line, F.col("revenue").cast("double")).otherwise(0.0)).alias("revenue"),
            F.sum(F.when(is_purchase_line, F.col("quantity")).otherwise(0)).cast("double").alias("units_purchased"),
            F.sum(F.when(~is_purchase_line, -F.col("quantity")).otherwise(0)).cast("double").alias("units_returned"),
            F.sum(F.when(priced_line, F.col("revenue").cast("double")).otherwise(0.0)).alias("priced_revenue"),
            F.sum(F.when(priced_line, F.col("quantity")).otherwise(0)).cast("double").alias("priced_units"),
        )
    )
    user_session_days = (
        events.where(F.col("user_id").isNotNull()).select("user_id", "session_id", "event_date").distinct()
    )
    viewed = events.where(
        (kind == "view") & (F.col("event_date") >= F.lit(_days_back(first_date, config.co_view_window_days)))
    )
    basket = F.concat_ws("|", F.coalesce(F.col("user_id"), F.lit("")), F.col("session_id"))
    view_baskets = (
        viewed.groupBy(basket.alias("basket"), "event_date")
        .agg(F.array_sort(F.collect_set("sku")).alias("skus"))
        .where(F.size("skus") <= config.max_basket_items)
        .select("event_date", "skus")
    )
    return DailyActivity(sku_user_days, sku_days, user_order_days, user_session_days, view_baskets)


def _pairs(skus: Column) -> Column:
    """Every unordered pair of a sorted array, as structs (sku, other_sku) with sku < other_sku.

    Pairs come from arrays rather than a self-join: no shuffle of every basket item against every other.
    """
    return F.flatten(
        F.transform(
            skus,
            lambda sku, i: F.transform(
                F.slice(skus, i + 2, F.size(skus)), lambda other: F.struct(sku.alias("sku"), other.alias("other_sku"))
            ),
        )
    )


# ---- feature dates, catalogue and inventory as of each -----------------------------------------


def _sorted_days(days: date | Sequence[date]) -> list[date]:
    return [days] if isinstance(days, date) else sorted(set(days))


def _feature_dates(spark: SparkSession, days: date | Sequence[date]) -> DataFrame:
    """The feature dates of one build as a one-column frame (broadcast into the joins below)."""
    return spark.createDataFrame([(day,) for day in _sorted_days(days)], "feature_date date")


def _expand(daily: DataFrame, dates: DataFrame, window_days: int, column: str = "event_date") -> DataFrame:
    """Each daily row once per feature date D whose ``window_days``-day window (D-N+1..D) contains it."""
    feature_date = F.col("feature_date")
    inside = (F.col(column) <= feature_date) & (F.col(column) > F.date_sub(feature_date, window_days))
    return daily.join(F.broadcast(dates), inside)


def _within(days: int, column: str = "event_date") -> Column:
    """The row's day is inside the ``days``-day window of its feature date (rows are already <= it)."""
    return F.col(column) > F.date_sub(F.col("feature_date"), days)


def latest_snapshot(snapshots: DataFrame, dates: DataFrame, lookback_days: int, shift_days: int = 0) -> DataFrame:
    """Per feature date D, the rows of the newest snapshot dated (D-shift)-lookback .. D-shift (none if none)."""
    target = F.date_sub(F.col("feature_date"), shift_days)
    chosen = (
        snapshots.select("snapshot_date")
        .distinct()
        .join(F.broadcast(dates), F.col("snapshot_date").between(F.date_sub(target, lookback_days), target))
        .groupBy("feature_date")
        .agg(F.max("snapshot_date").alias("snapshot_date"))
    )
    return snapshots.join(F.broadcast(chosen), "snapshot_date")


def _catalogue(products: DataFrame, dates: DataFrame, config: FeaturesConfig, shift_days: int = 0) -> DataFrame:
    return latest_snapshot(products, dates, config.snapshot_lookback_days, shift_days).select(
        "feature_date", "sku", "category", "brand", "active", _known_price(F.col("unit_price")).alias("list_price")
    )


def _stock(inventory: DataFrame | None, dates: DataFrame, config: FeaturesConfig) -> DataFrame | None:
    if inventory is None:
        return None
    return latest_snapshot(inventory, dates, config.snapshot_lookback_days).select(
        "feature_date", "sku", "on_hand", "lead_time_days"
    )


# ---- families ----------------------------------------------------------------------------------
# Each builds every feature date of ``days`` (one date, or a backfill's dates) in one pass.

USER_KEYS = ["feature_date", "user_id"]
SKU_KEYS = ["feature_date", "sku"]


def build_user_features(
    activity: DailyActivity,
    products: DataFrame,
    days: date | Sequence[date],
    config: FeaturesConfig,
    previous: DataFrame | None = None,
) -> DataFrame:
    """RFM windows, category affinity, funnel rates, sessions and returns per user as of each day.

    ``previous`` is ``gold.user_features`` of the day before the first of
    ``days`` (or None): it carries ``days_since_first_seen`` beyond the 90 days
    this build reads.
    """
    dates = _feature_dates(activity.sku_user_days.sparkSession, days)
    usd = _expand(activity.user_sku_days, dates, HISTORY_DAYS)
    catalogue = _catalogue(products, dates, config).select(*SKU_KEYS, "category")
    per_category = (
        usd.join(F.broadcast(catalogue), SKU_KEYS, "left")
        .groupBy(*USER_KEYS, "category")
        .agg(F.sum("n_views").alias("views"), F.sum("n_carts").alias("carts"), F.sum("n_purchases").alias("purchases"))
    )
    behaviour = per_category.groupBy(*USER_KEYS).agg(
        F.sum("views").alias("views"), F.sum("carts").alias("carts"), F.sum("purchases").alias("purchases")
    )
    orders = (
        _expand(activity.user_order_days, dates, HISTORY_DAYS)
        .groupBy(*USER_KEYS)
        .agg(
            *[F.sum(F.when(_within(w), F.col("n_orders")).otherwise(0)).alias(f"orders_{w}d") for w in WINDOWS["user"]],
            *[
                F.sum(F.when(_within(w), F.col("revenue")).otherwise(0.0)).alias(f"revenue_{w}d")
                for w in WINDOWS["user"]
            ],
            F.max(F.when(F.col("n_orders") > 0, F.col("event_date"))).alias("last_order_date"),
            F.sum("priced_revenue").alias("_priced_revenue"),
            F.sum("priced_units").alias("_priced_units"),
            F.sum("units_purchased").alias("_units"),
            F.sum("units_returned").alias("_returned"),
        )
    )
    sessions = (
        _expand(activity.user_session_days, dates, 28)
        .groupBy(*USER_KEYS)
        .agg(F.countDistinct("session_id").alias("sessions_28d"))
    )
    recent_buys = (
        usd.where(F.col("n_purchases") > 0)
        .groupBy(*USER_KEYS, "sku")
        .agg(F.max("last_purchase_ts").alias("ts"))
        .groupBy(*USER_KEYS)
        .agg(F.sort_array(F.collect_list(F.struct("ts", "sku")), asc=False).alias("_buys"))
        .select(*USER_KEYS, F.slice(F.col("_buys.sku"), 1, config.last_purchased_skus).alias("last_purchased_skus"))
    )
    features = (
        behaviour.join(orders, USER_KEYS, "left")
        .join(sessions, USER_KEYS, "left")
        .join(_category_affinity(per_category, config.top_categories), USER_KEYS, "left")
        .join(recent_buys, USER_KEYS, "left")
        .join(_first_seen(activity, dates, days, previous), USER_KEYS, "left")
    )
    day = F.col("feature_date")
    result = features.select(
        "feature_date",
        "user_id",
        F.datediff(day, F.col("last_order_date")).alias("recency_days"),
        *[F.coalesce(F.col(f"orders_{w}d"), F.lit(0)).alias(f"orders_{w}d") for w in WINDOWS["user"]],
        *[F.coalesce(F.col(f"revenue_{w}d"), F.lit(0.0)).alias(f"revenue_{w}d") for w in WINDOWS["user"]],
        F.coalesce(F.col("category_affinity"), F.create_map().cast("map<string,double>")).alias("category_affinity"),
        _ratio(F.col("carts"), F.col("views"), cap=1.0).alias("view_to_cart_rate"),
        _ratio(F.col("purchases"), F.col("carts"), cap=1.0).alias("cart_to_purchase_rate"),
        F.coalesce(F.col("sessions_28d"), F.lit(0)).alias("sessions_28d"),
        _ratio(F.col("_returned"), F.col("_units"), cap=1.0).alias("return_rate"),
        F.datediff(day, F.col("first_seen")).alias("days_since_first_seen"),
        F.coalesce(F.col("last_purchased_skus"), F.array().cast("array<string>")).alias("last_purchased_skus"),
        _ratio(F.col("_priced_revenue"), F.col("_priced_units")).alias("avg_unit_price"),
    )
    return conform(result, GOLD_USER_FEATURES)


def _first_seen(
    activity: DailyActivity, dates: DataFrame, days: date | Sequence[date], previous: DataFrame | None
) -> DataFrame:
    """feature_date, user_id, first_seen, as a day-by-day chain of builds has it, however many dates one build has.

    A chain carries first-seen from the previous day's row, and a user drops out of the rows after 90 days
    without events, so the count starts over then. Read from 89 days before the first build date on, the
    user's active days split into runs wherever more than 90 days separate two of them; each date takes the
    start of its latest run, and the earliest run, when it reaches the first build date, continues the
    previous day's first-seen date (a one-date build reads 90 days: one run, the nightly rule).
    """
    first_day = days if isinstance(days, date) else min(days)
    active_days = (
        activity.user_session_days.where(F.col("event_date") >= F.lit(_days_back(first_day, HISTORY_DAYS)))
        .select("user_id", "event_date")
        .distinct()
    )
    gap = F.datediff("event_date", F.lag("event_date").over(Window.partitionBy("user_id").orderBy("event_date")))
    run_starts = (
        active_days.withColumn("_gap", gap)
        .where(F.col("_gap").isNull() | (F.col("_gap") > HISTORY_DAYS))
        .select("user_id", F.struct(F.col("event_date").alias("start"), F.col("_gap").isNull().alias("earliest")))
        .toDF("user_id", "_run")
    )
    runs = (
        run_starts.join(F.broadcast(dates), F.col("_run.start") <= F.col("feature_date"))
        .groupBy(*USER_KEYS)
        .agg(F.max("_run").alias("_run"))
    )
    first_seen = F.col("_run.start")
    if previous is None:
        return runs.select(*USER_KEYS, first_seen.alias("first_seen"))
    carried = previous.select(
        "user_id", F.date_sub(F.col("feature_date"), F.col("days_since_first_seen")).alias("_carried")
    )
    continues = F.col("_run.earliest") & (first_seen <= F.lit(first_day))
    return runs.join(carried, "user_id", "left").select(
        *USER_KEYS,
        F.when(continues, F.least(first_seen, F.col("_carried"))).otherwise(first_seen).alias("first_seen"),
    )


def _category_affinity(per_category: DataFrame, top: int) -> DataFrame:
    """feature_date, user_id, category_affinity: each known category's share of the user's interactions."""
    interactions = F.col("views") + F.col("carts") + F.col("purchases")
    known = per_category.where(F.col("category").isNotNull()).select(*USER_KEYS, "category", interactions.alias("n"))
    by_user = Window.partitionBy(*USER_KEYS)
    ranked = (
        known.where(F.col("n") > 0)
        .withColumn("share", F.col("n") / F.sum("n").over(by_user))
        .withColumn("_rank", F.row_number().over(by_user.orderBy(F.col("share").desc(), F.col("category"))))
    )
    return (
        ranked.where(F.col("_rank") <= top)
        .groupBy(*USER_KEYS)
        .agg(F.map_from_entries(F.collect_list(F.struct("category", "share"))).alias("category_affinity"))
    )


def build_item_features(
    activity: DailyActivity,
    products: DataFrame,
    inventory: DataFrame | None,
    days: date | Sequence[date],
    config: FeaturesConfig,
) -> DataFrame:
    """Popularity, sales, trend, conversion, returns, price and stock status per SKU as of each day.

    ``inventory`` is None when there is no inventory feed: stock_status is then 'unknown'.
    """
    dates = _feature_dates(activity.sku_days.sparkSession, days)
    interactions = F.col("n_views") + F.col("n_carts") + F.col("n_purchases")
    activity_by_sku = (
        _expand(activity.sku_days, dates, HISTORY_DAYS)
        .groupBy(*SKU_KEYS)
        .agg(
            *[F.sum(F.when(_within(w), F.col("n_views")).otherwise(0)).alias(f"views_{w}d") for w in WINDOWS["item"]],
            *[
                F.sum(F.when(_within(w), F.col("units_purchased")).otherwise(0.0)).alias(f"units_sold_{w}d")
                for w in WINDOWS["item"]
            ],
            F.sum(F.when(_within(7), interactions).otherwise(0)).alias("_interactions_7d"),
            F.sum(F.when(_within(28), interactions).otherwise(0)).alias("_interactions_28d"),
            F.sum(F.when(_within(28), F.col("n_purchases")).otherwise(0)).alias("_purchases_28d"),
            F.sum("units_purchased").alias("_units_90d"),
            F.sum("units_returned").alias("_returned_90d"),
        )
    )
    week_ago = _catalogue(products, dates, config, shift_days=7).select(
        *SKU_KEYS, F.col("list_price").alias("_price_7d_ago")
    )
    items = _catalogue(products, dates, config).join(activity_by_sku, SKU_KEYS, "full").join(week_ago, SKU_KEYS, "left")
    stock = _stock(inventory, dates, config)
    if stock is None:
        items = items.withColumn("on_hand", F.lit(None).cast("int")).withColumn(
            "lead_time_days", F.lit(None).cast("int")
        )
    else:
        items = items.join(stock, SKU_KEYS, "left")
    units_28d = F.coalesce(F.col("units_sold_28d"), F.lit(0.0))
    lead_time_demand = units_28d / 28.0 * F.coalesce(F.col("lead_time_days"), F.lit(0))
    stock_status = (
        F.when(F.col("on_hand").isNull(), "unknown")
        .when(F.col("on_hand") <= 0, "out_of_stock")
        .when((F.col("on_hand") <= config.low_stock_units) | (F.col("on_hand") <= lead_time_demand), "low")
        .otherwise("in_stock")
    )
    result = items.select(
        "feature_date",
        "sku",
        "category",
        "brand",
        F.coalesce(F.col("active"), F.lit(False)).alias("active"),
        F.col("list_price").alias("unit_price"),
        _ratio(F.col("list_price") - F.col("_price_7d_ago"), F.col("_price_7d_ago")).alias("price_change_7d"),
        *[F.coalesce(F.col(f"views_{w}d"), F.lit(0)).alias(f"views_{w}d") for w in WINDOWS["item"]],
        *[F.coalesce(F.col(f"units_sold_{w}d"), F.lit(0.0)).alias(f"units_sold_{w}d") for w in WINDOWS["item"]],
        _ratio(F.col("_interactions_7d") / 7.0, F.col("_interactions_28d") / 28.0).alias("trend_7_28"),
        _ratio(F.col("_purchases_28d"), F.col("views_28d"), cap=1.0).alias("conversion_rate"),
        _ratio(F.col("_returned_90d"), F.col("_units_90d"), cap=1.0).alias("return_rate"),
        "on_hand",
        stock_status.alias("stock_status"),
    )
    return conform(result, GOLD_ITEM_FEATURES)


def build_user_item_interactions(
    activity: DailyActivity, days: date | Sequence[date], config: FeaturesConfig
) -> DataFrame:
    """Implicit-feedback strength per (user, SKU): event weights decayed by age in days (day D weighs 1)."""
    dates = _feature_dates(activity.sku_user_days.sparkSession, days)
    age_days = F.datediff(F.col("feature_date"), F.col("event_date"))
    decay = F.pow(F.lit(0.5), age_days / F.lit(config.decay_half_life_days))
    result = (
        _expand(activity.user_sku_days, dates, config.interaction_window_days)
        .groupBy(*USER_KEYS, "sku")
        .agg(
            F.greatest(F.sum(F.col("points") * decay), F.lit(0.0)).alias("strength"),
            F.sum("n_views").alias("n_views"),
            F.sum("n_carts").alias("n_carts"),
            F.sum("n_purchases").alias("n_purchases"),
            F.max("last_ts").alias("last_interaction_ts"),
        )
    )
    return conform(result, GOLD_USER_ITEM_INTERACTIONS)


def build_item_cooccurrence(activity: DailyActivity, days: date | Sequence[date], config: FeaturesConfig) -> DataFrame:
    """Top-N neighbours per SKU from co-purchases (same customer) and co-views (same session and day).

    similarity = w·cos_purchase + (1-w)·cos_view with cos = n(a and b) / sqrt(n(a)·n(b)); it is
    symmetric, so pairs are counted once (sku < other_sku) and mirrored only for the ranking.
    Ties rank by co-purchases, co-views, then other_sku so reruns agree.
    """
    dates = _feature_dates(activity.sku_user_days.sparkSession, days)
    baskets = (
        _expand(activity.user_sku_days.where(F.col("n_purchases") > 0), dates, config.co_purchase_window_days)
        .groupBy(*USER_KEYS)
        .agg(F.array_sort(F.collect_set("sku")).alias("skus"))
        .where(F.size("skus") <= config.max_basket_items)
    )
    viewed = _expand(activity.view_baskets, dates, config.co_view_window_days)
    buyers, co_purchases = _basket_counts(baskets, "purchase")
    viewers, co_views = _basket_counts(viewed, "view")
    pair_keys = [*SKU_KEYS, "other_sku"]
    pairs = co_purchases.join(co_views, pair_keys, "full").fillna(0, ["co_purchase_count", "co_view_count"])
    weight = config.purchase_similarity_weight
    scored = (
        _with_counts(pairs, buyers, "purchase")
        .transform(lambda frame: _with_counts(frame, viewers, "view"))
        .select(
            *pair_keys,
            "co_purchase_count",
            "co_view_count",
            (F.lit(weight) * _cosine("purchase") + F.lit(1 - weight) * _cosine("view")).alias("similarity"),
        )
    )
    mirrored = scored.select(
        "feature_date",
        F.col("other_sku").alias("sku"),
        F.col("sku").alias("other_sku"),
        "co_purchase_count",
        "co_view_count",
        "similarity",
    )
    ranking = Window.partitionBy(*SKU_KEYS).orderBy(
        F.col("similarity").desc(), F.col("co_purchase_count").desc(), F.col("co_view_count").desc(), F.col("other_sku")
    )
    result = (
        scored.unionByName(mirrored)
        .withColumn("rank", F.row_number().over(ranking))
        .where(F.col("rank") <= config.cooccurrence_top_n)
    )
    return conform(result, GOLD_ITEM_COOCCURRENCE)


def _basket_counts(baskets: DataFrame, kind: str) -> tuple[DataFrame, DataFrame]:
    """Baskets holding each SKU (feature_date, sku, n_a) and each unordered pair (…, other_sku, co_{kind}_count)."""
    singles = (
        baskets.select("feature_date", F.explode("skus").alias("sku")).groupBy(*SKU_KEYS).agg(F.count("*").alias("n_a"))
    )
    pairs = (
        baskets.select("feature_date", F.explode(_pairs(F.col("skus"))).alias("pair"))
        .groupBy("feature_date", F.col("pair.sku").alias("sku"), F.col("pair.other_sku").alias("other_sku"))
        .agg(F.count("*").alias(f"co_{kind}_count"))
    )
    return singles, pairs


def _with_counts(pairs: DataFrame, counts: DataFrame, kind: str) -> DataFrame:
    """Attach n(a) and n(b) of one signal to each pair as ``{kind}_a`` / ``{kind}_b``."""
    a = counts.select(*SKU_KEYS, F.col("n_a").alias(f"{kind}_a"))
    b = counts.select("feature_date", F.col("sku").alias("other_sku"), F.col("n_a").alias(f"{kind}_b"))
    return pairs.join(a, SKU_KEYS, "left").join(b, ["feature_date", "other_sku"], "left")


def _cosine(kind: str) -> Column:
    """co_{kind}_count / sqrt(n(a)·n(b)) of one signal, 0 where the signal is missing."""
    norm = F.sqrt(F.col(f"{kind}_a").cast("double") * F.col(f"{kind}_b"))
    return F.coalesce(_ratio(F.col(f"co_{kind}_count"), norm), F.lit(0.0))


def build_sku_daily_demand(
    activity: DailyActivity,
    products: DataFrame,
    inventory: DataFrame | None,
    days: date | Sequence[date],
    config: FeaturesConfig,
) -> DataFrame:
    """One row per SKU and demand day: units (zero-filled), price, promotion, stockout, calendar, lags.

    Lags and rolling statistics use earlier days only; days before the first
    day with any events in ``activity`` are unknown (null), not zero.

    The dates share one dense SKU × day series from ``DEMAND_SPAN`` days before
    the first date to the last; lags, rolling statistics, "sold in the last 28
    days" and the promotion reference price are window functions over it (a
    row is a day: the series has no gaps). A build of N dates thus costs
    SKUs × (N + 28) rows, not SKUs × N × 29 as a grid per date would.
    """
    spark = activity.sku_days.sparkSession
    chosen = _sorted_days(days)
    dates = _feature_dates(spark, chosen)
    start = chosen[0] - timedelta(days=max(DEMAND_SPAN, PROMO_REFERENCE_DAYS - 1))
    last = chosen[-1]
    in_series = F.col("event_date").between(F.lit(start), F.lit(last))
    daily = activity.sku_days.where(in_series)
    # every SKU active in a snapshot some date may read, or sold: the dates' own lists are picked below
    listed = F.col("active") & F.col("snapshot_date").between(
        F.lit(start - timedelta(days=config.snapshot_lookback_days)), F.lit(last)
    )
    skus = (
        products.where(listed)
        .select("sku")
        .unionByName(daily.where(F.col("units_purchased") > 0).select("sku"))
        .distinct()
    )
    calendar = spark.range(1).select(F.explode(F.sequence(F.lit(start), F.lit(last))).alias("event_date"))
    grid = skus.crossJoin(F.broadcast(calendar)).withColumn("_cell", F.lit(True))
    sales = daily.select("sku", "event_date", "units_purchased", "priced_units", "paid_amount")
    prices = products.where(F.col("snapshot_date").between(F.lit(start), F.lit(last))).select(
        "sku", F.col("snapshot_date").alias("event_date"), _known_price(F.col("unit_price")).alias("_list_price")
    )
    # Grid cells, the day's sales and the snapshot's list price meet in one shuffle on sku that the window below
    # reuses (joins on sku and day would shuffle the series once per join and again for the window).
    history_start = activity.sku_days.agg(F.min("event_date").alias("_history_start"))
    series = (
        grid.unionByName(sales, allowMissingColumns=True)
        .unionByName(prices, allowMissingColumns=True)
        .repartition("sku")
        .groupBy("sku", "event_date")
        .agg(
            F.max("_cell").alias("_cell"),
            *[F.max(c).alias(c) for c in ("units_purchased", "priced_units", "paid_amount", "_list_price")],
        )
        .where(F.col("_cell"))
        .crossJoin(F.broadcast(history_start))
    )
    known = F.col("event_date") >= F.col("_history_start")
    # Sales without a SKU (validate quarantines them; a caller's frame may hold some) list a null-SKU row while sold
    # in the last 28 days, zero-filled: the contract of the per-date build this replaced, which joined on sku = sku.
    units = F.when(known, F.coalesce(F.when(F.col("sku").isNotNull(), F.col("units_purchased")), F.lit(0.0)))
    series = series.withColumn("_units", units)
    by_sku = Window.partitionBy("sku").orderBy("event_date")

    def before(n: int) -> Window:
        return by_sku.rowsBetween(-n, -1)

    stats = series.select(
        "sku",
        F.col("event_date").alias("feature_date"),
        F.col("_units").alias("units"),
        F.when(F.col("sku").isNotNull(), F.col("paid_amount")).alias("_paid"),
        F.when(F.col("sku").isNotNull(), F.col("priced_units")).alias("_priced_units"),
        F.max(F.col("units_purchased") > 0).over(by_sku.rowsBetween(-DEMAND_SPAN, 0)).alias("_sold"),
        F.max("_list_price").over(by_sku.rowsBetween(1 - PROMO_REFERENCE_DAYS, 0)).alias("_reference_price"),
        *[F.lag("_units", lag).over(by_sku).alias(f"lag_{lag}") for lag in DEMAND_LAGS],
        *[F.avg("_units").over(before(n)).alias(f"rolling_mean_{n}") for n in ROLLING_DAYS],
        *[F.stddev_samp("_units").over(before(n)).alias(f"rolling_std_{n}") for n in ROLLING_DAYS],
    )
    demand = (
        stats.join(F.broadcast(dates), "feature_date")
        .join(_catalogue(products, dates, config), SKU_KEYS, "left")
        .where(F.coalesce(F.col("_sold"), F.lit(False)) | F.coalesce(F.col("active"), F.lit(False)))
    )
    stock = _stock(inventory, dates, config)
    if stock is None:
        demand = demand.withColumn("on_hand", F.lit(None).cast("int"))
    else:
        demand = demand.join(stock.select(*SKU_KEYS, "on_hand"), SKU_KEYS, "left")
    day = F.col("feature_date")
    price = F.coalesce(_ratio(F.col("_paid"), F.col("_priced_units")), F.col("list_price"))
    promoted = price <= F.col("_reference_price") * (1 - config.promo_min_discount)
    weekday = (F.dayofweek(day) + 5) % 7 + 1
    result = demand.select(
        "feature_date",
        "sku",
        "category",
        "units",
        price.alias("unit_price"),
        F.coalesce(promoted, F.lit(False)).alias("on_promotion"),
        F.coalesce(F.col("on_hand") <= 0, F.lit(False)).alias("is_stockout"),
        weekday.alias("day_of_week"),
        F.dayofmonth(day).alias("day_of_month"),
        F.month(day).alias("month"),
        F.weekofyear(day).alias("week_of_year"),
        (weekday >= 6).alias("is_weekend"),
        *[f"lag_{lag}" for lag in DEMAND_LAGS],
        *[f"rolling_mean_{n}" for n in ROLLING_DAYS],
        *[f"rolling_std_{n}" for n in ROLLING_DAYS],
    )
    return conform(result, GOLD_SKU_DAILY_DEMAND)


# ---- late data ---------------------------------------------------------------------------------


def count_late_events(events: DataFrame, first_day: date, last_day: date, lookback_days: int) -> DataFrame:
    """event_date, late_event_count: events landed ``first_day``..``last_day`` for the ``lookback_days`` before it.

    Events landing inside the window for days inside it are not "late" for
    this build: those days are built from scratch with everything known.
    """
    return (
        events.where(
            F.col("event_date").between(
                F.lit(first_day - timedelta(days=lookback_days)), F.lit(first_day - timedelta(days=1))
            )
        )
        .where(F.col("landing_date").between(F.lit(first_day), F.lit(last_day)))
        .groupBy("event_date")
        .agg(F.count("*").alias("late_event_count"))
    )


def plan_corrections(late_counts: dict[date, int], first_day: date) -> list[tuple[date, int]]:
    """Past feature dates to re-derive before ``first_day``, each with the late events inside its windows.

    A late event dated E is inside the windows of every feature date from E
    on, so all days E..first_day-1 are rebuilt, not only E; ``first_day`` and
    later are built anyway.
    """
    late = {day: count for day, count in late_counts.items() if day < first_day and count > 0}
    if not late:
        return []
    first = min(late)
    days = [first + timedelta(days=i) for i in range((first_day - first).days)]
    return [(day, sum(count for late_day, count in late.items() if late_day <= day)) for day in days]
