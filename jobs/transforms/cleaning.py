"""Pure cleaning steps from parsed bronze rows to silver-ready rows."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.transforms.raw import ORDER_EVENT_TYPES

BOT_USER_AGENT = r"(?i)(bot|crawler|spider|scrapy|headless)"


def drop_duplicate_events(events: DataFrame, already_loaded_ids: DataFrame) -> DataFrame:
    """One row per event_id, and none that an earlier landing already delivered.

    Exact duplicates and same-id resends keep the copy that landed first
    (then the earliest event_ts; ties broken by payload so reruns choose the
    same row). ``already_loaded_ids`` holds the ``event_id`` of silver rows from
    landing dates outside this batch: replays of them are duplicates, not new events.
    """
    first = Window.partitionBy("event_id").orderBy("landing_date", "event_ts", "payload")
    unique = events.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
    return unique.join(already_loaded_ids.select("event_id").distinct(), "event_id", "left_anti")


# Where a line came from, not what it says: two deliveries of one event may differ here.
DELIVERY_COLUMNS = ("landing_date", "source_file", "payload")


def flag_conflicting_duplicates(events: DataFrame) -> DataFrame:
    """Add ``conflicting_duplicate``: the row repeats an event_id of the batch with other content.

    A resend with the same fields is a duplicate (counted, dropped); one that says something else (another
    SKU, quantity or price under the same id) cannot be both, so it is quarantined with its payload instead
    of being dropped unseen. The row ``drop_duplicate_events`` keeps is never flagged.
    """
    first = Window.partitionBy("event_id").orderBy("landing_date", "event_ts", "payload")
    content = F.struct(*[c for c in events.columns if c not in DELIVERY_COLUMNS])
    return events.withColumn("conflicting_duplicate", ~content.eqNullSafe(F.first(content).over(first)))


def flag_bot_sessions(events: DataFrame, max_events_per_session: int) -> DataFrame:
    """Add ``is_bot``: in one landing day the session browsed more than a person could, or its agent says bot.

    Only browsing counts (views, cart changes): a wholesaler's order of 500 lines is a customer,
    not a scraper. Sessions are counted on their keys alone and the few busy ones broadcast back,
    so the events (with their payloads) are not shuffled a second time.
    """
    busy = (
        events.where(F.col("session_id").isNotNull() & ~F.col("event_type").isin(*ORDER_EVENT_TYPES))
        .groupBy("landing_date", "session_id")
        .count()
        .where(F.col("count") > max_events_per_session)
        .select("landing_date", "session_id", F.lit(True).alias("_busy"))
    )
    flagged = events.join(F.broadcast(busy), ["landing_date", "session_id"], "left")
    bot_agent = F.coalesce(F.col("user_agent").rlike(BOT_USER_AGENT), F.lit(False))
    return flagged.select(*events.columns, (F.col("_busy").isNotNull() | bot_agent).alias("is_bot"))


def with_event_date(events: DataFrame) -> DataFrame:
    """Route every event to its true UTC event date (late events land in the past)."""
    return events.withColumn("event_date", F.to_date("event_ts"))


def to_order_lines(events: DataFrame) -> DataFrame:
    """Purchases and returns as signed order lines (returns negative) for revenue and demand."""
    orders = events.where(F.col("event_type").isin("purchase", "return"))
    sign = F.when(F.col("event_type") == "return", F.lit(-1)).otherwise(F.lit(1))
    quantity = (F.col("quantity") * sign).cast("int")
    return orders.select(
        "event_id",
        F.coalesce("order_id", "event_id").alias("order_id"),
        "user_id",
        "sku",
        F.col("event_type").alias("line_type"),
        quantity.alias("quantity"),
        "unit_price",
        (quantity * F.col("unit_price")).cast("decimal(14,2)").alias("revenue"),
        "currency",
        "event_ts",
        "event_date",
        "landing_date",
        "feed",
    )


def latest_per_key(records: DataFrame, keys: list[str], order_column: str) -> DataFrame:
    """Keep the last record per key (a snapshot may list a SKU twice; the later line wins)."""
    last = Window.partitionBy(*keys).orderBy(F.col(order_column).desc_nulls_last(), F.col("payload").desc())
    return records.withColumn("_n", F.row_number().over(last)).where("_n = 1").drop("_n")


def with_catalogue_check(records: DataFrame, catalogue_skus: DataFrame | None) -> DataFrame:
    """Add ``sku_in_catalogue``: whether the row's SKU is a product the catalogue knows (null: no catalogue).

    A broadcast join, so the check costs the same for ten SKUs or a million (a literal value set
    would be sent to Spark value by value and grow the validation results with the catalogue).
    """
    if catalogue_skus is None:
        return records.withColumn("sku_in_catalogue", F.lit(None).cast("boolean"))
    known = catalogue_skus.select("sku").distinct().withColumn("sku_in_catalogue", F.lit(True))
    flagged = records.join(F.broadcast(known), "sku", "left")
    return flagged.select(*records.columns, F.coalesce("sku_in_catalogue", F.lit(False)).alias("sku_in_catalogue"))
