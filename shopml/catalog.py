"""Every Delta table of the platform: its name, partitioning, keys, and each column's type and meaning.

The catalog is the one place that names tables and declares their schemas (Kedro's ``catalog.yml`` for
this project): code names tables through the handles below, the lake module takes partitioning from
here, writers their Arrow (and the gold transforms their Spark) schemas, the Airflow DAGs their
Assets, ``python -m shopml.query --describe`` the column docs, and ``python -m shopml.catalog``
prints the data dictionary (``docs/tables.md``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType


# Every table's name, once: code names tables through these handles, never by string literal.
BRONZE_EVENTS = "bronze.events"
BRONZE_PRODUCTS = "bronze.products"
BRONZE_INVENTORY = "bronze.inventory"
STAGING_EVENTS = "staging.events"
STAGING_PRODUCTS = "staging.products"
STAGING_INVENTORY = "staging.inventory"
SILVER_EVENTS = "silver.events"
SILVER_ORDER_LINES = "silver.order_lines"
SILVER_PRODUCTS = "silver.products"
SILVER_INVENTORY_SNAPSHOTS = "silver.inventory_snapshots"
OPS_QUARANTINE = "ops.quarantine"
OPS_ROW_ACCOUNTING = "ops.row_accounting"
OPS_VALIDATION_RESULTS = "ops.validation_results"
GOLD_USER_FEATURES = "gold.user_features"
GOLD_ITEM_FEATURES = "gold.item_features"
GOLD_USER_ITEM_INTERACTIONS = "gold.user_item_interactions"
GOLD_ITEM_COOCCURRENCE = "gold.item_cooccurrence"
GOLD_SKU_DAILY_DEMAND = "gold.sku_daily_demand"
GOLD_FEATURE_CORRECTIONS = "gold.feature_corrections"
GOLD_RECOMMENDATIONS = "gold.recommendations"
GOLD_SIMILAR_ITEMS = "gold.similar_items"
GOLD_DEMAND_FORECASTS = "gold.demand_forecasts"
GOLD_INVENTORY_PLAN = "gold.inventory_plan"
GOLD_CUSTOMER_SCORES = "gold.customer_scores"
OPS_MODEL_METRICS = "ops.model_metrics"
OPS_STREAM_WATERMARK = "ops.stream_watermark"
OPS_STREAM_FILES = "ops.stream_files"
OPS_ERASURE_AUDIT = "ops.erasure_audit"
OPS_PUBLISH_AUDIT = "ops.publish_audit"

BRONZE = {"events": BRONZE_EVENTS, "products": BRONZE_PRODUCTS, "inventory": BRONZE_INVENTORY}
STAGING = {"events": STAGING_EVENTS, "products": STAGING_PRODUCTS, "inventory": STAGING_INVENTORY}


def _arrow_type(name: str) -> pa.DataType:
    """An Arrow type from its printed name (``list<string>``, ``map<string, double>`` nest)."""
    # Resolved on use: DAG files import the catalog and must parse cheaply.
    import pyarrow as pa

    if name.startswith("list<"):
        return pa.list_(_arrow_type(name[5:-1]))
    if name.startswith("decimal128("):
        precision, scale = name[11:-1].split(", ")
        return pa.decimal128(int(precision), int(scale))
    if name.startswith("map<"):
        key, value = name[4:-1].split(", ", 1)
        return pa.map_(_arrow_type(key), _arrow_type(value))
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "date32[day]": pa.date32(),
        "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    }[name]


class Column(NamedTuple):
    """One column: its name, its Arrow type as pyarrow prints it (``decimal128(12, 2)``, ``list<string>``),
    and what it means. Writers from Python and the gold transforms take their schema from here; a test
    checks that what Spark writes to bronze, staging and silver is what is declared."""

    name: str
    type: str
    doc: str


# What a run stamps on every row it writes (who, which model, when): provenance, not what the row says.
RUN_STAMP = frozenset({"run_id", "model_version", "generated_at"})


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def docs(self) -> dict[str, str]:
        return {column.name: column.doc for column in self.columns}

    @property
    def content_columns(self) -> tuple[str, ...]:
        """What a row says, in order: every column but the partition columns and the run's stamp."""
        return tuple(c.name for c in self.columns if c.name not in RUN_STAMP and c.name not in self.partition_by)

    def spark_schema(self) -> StructType:
        """The same schema for Spark (every field nullable): empty frames and the gold transforms' casts."""
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(self.arrow_schema())

    def arrow_schema(self) -> pa.Schema:
        """The table's on-disk Arrow schema (every column nullable), for writers and tests that build rows."""
        import pyarrow as pa

        return pa.schema([(column.name, _arrow_type(column.type)) for column in self.columns])


# Where a line came from, kept from bronze until validation (quarantine rows carry it).
_LINEAGE = (
    Column("source_file", "string", "File the line came from."),
    Column("payload", "string", "The original line (CSV rows re-encoded as JSON), kept for audit and quarantine."),
)

_EVENT_COLUMNS = (
    Column("event_id", "string", "Unique event id from the source."),
    Column(
        "landing_date",
        "date32[day]",
        "Landing date the event arrived with; event_date < landing_date means it was late.",
    ),
    Column("event_type", "string", "view, add_to_cart, remove_from_cart, purchase or return."),
    Column("user_id", "string", "Customer id; null for anonymous traffic."),
    Column("session_id", "string", "Session id from the source."),
    Column("sku", "string", "Product SKU."),
    Column("quantity", "int32", "Units; > 0 for purchases and returns."),
    Column("unit_price", "decimal128(12, 2)", "Price per unit in the event's currency."),
    Column("currency", "string", "ISO currency code, upper-case."),
    Column("event_ts", "timestamp[us, tz=UTC]", "Event time in UTC."),
    Column("order_id", "string", "Order id for purchases and returns, when the source has one."),
    Column("channel", "string", "Sales channel, when known."),
    Column("user_agent", "string", "User agent, when known."),
    Column("event_date", "date32[day]", "UTC date of event_ts (late events land in their true date)."),
    Column(
        "feed",
        "string",
        "nightly (landing files) or stream (5-minute micro-batches merged by incremental_refresh).",
    ),
)

_PRODUCT_COLUMNS = (
    Column("snapshot_date", "date32[day]", "Landing date of the catalogue snapshot."),
    Column("sku", "string", "Product SKU."),
    Column("title", "string", "Product title."),
    Column("category", "string", "Category; null when the catalogue has none."),
    Column("brand", "string", "Brand; null when the catalogue has none."),
    Column("unit_price", "decimal128(12, 2)", "List price."),
    Column("active", "bool", "Whether the product is sellable."),
)

_STOCK_COLUMNS = (
    Column("snapshot_date", "date32[day]", "Landing date of the snapshot."),
    Column("sku", "string", "Product SKU."),
    Column("on_hand", "int32", "Units in stock."),
    Column("on_order", "int32", "Units ordered from suppliers, not yet received."),
    Column("lead_time_days", "int32", "Supplier lead time in days."),
    Column("snapshot_ts", "timestamp[us, tz=UTC]", "When the snapshot was taken (UTC)."),
)


def _raw(kind: str) -> TableSpec:
    return TableSpec(
        name=BRONZE[kind],
        description=f"Raw {kind} lines exactly as landed, one row per line, per landing date.",
        partition_by=("landing_date",),
        columns=(
            Column("landing_date", "date32[day]", "Landing folder date (date=YYYY-MM-DD) the line arrived in."),
            *_LINEAGE,
            Column("ingested_at", "timestamp[us, tz=UTC]", "When the ingest job read the line (UTC)."),
        ),
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        _raw("events"),
        _raw("products"),
        _raw("inventory"),
        TableSpec(
            name=STAGING_EVENTS,
            description="Parsed, de-duplicated, bot-free events of one landing date awaiting validation.",
            partition_by=("landing_date",),
            columns=(*_EVENT_COLUMNS, *_LINEAGE),
        ),
        TableSpec(
            name=STAGING_PRODUCTS,
            description="Parsed catalogue snapshot of one landing date awaiting validation.",
            partition_by=("snapshot_date",),
            columns=(*_PRODUCT_COLUMNS, *_LINEAGE),
        ),
        TableSpec(
            name=STAGING_INVENTORY,
            description="Parsed inventory snapshot of one landing date awaiting validation.",
            partition_by=("snapshot_date",),
            columns=(*_STOCK_COLUMNS, *_LINEAGE),
        ),
        TableSpec(
            name=SILVER_EVENTS,
            description="Validated, deduplicated, bot-free behavioural events, partitioned by their true event date.",
            partition_by=("event_date",),
            keys=("event_id",),
            columns=_EVENT_COLUMNS,
        ),
        TableSpec(
            name=SILVER_ORDER_LINES,
            description="Purchase and return lines (returns with negative quantity and revenue), by event date.",
            partition_by=("event_date",),
            keys=("event_id",),
            columns=(
                Column("event_id", "string", "Event id of the purchase or return."),
                Column("order_id", "string", "Order id; the event id when the source has none."),
                Column("user_id", "string", "Customer id; null for anonymous orders."),
                Column("sku", "string", "Product SKU."),
                Column("line_type", "string", "purchase or return."),
                Column("quantity", "int32", "Signed units: positive for purchases, negative for returns."),
                Column("unit_price", "decimal128(12, 2)", "Price per unit."),
                Column("revenue", "decimal128(14, 2)", "quantity * unit_price (negative for returns)."),
                Column("currency", "string", "ISO currency code."),
                Column("event_ts", "timestamp[us, tz=UTC]", "Event time in UTC."),
                Column("event_date", "date32[day]", "UTC date of event_ts."),
                Column("landing_date", "date32[day]", "Landing date the line arrived with."),
                Column("feed", "string", "nightly or stream, as in silver.events."),
            ),
        ),
        TableSpec(
            name=SILVER_PRODUCTS,
            description="Product catalogue snapshots, one per landing date, so any past day's catalogue is known.",
            partition_by=("snapshot_date",),
            keys=("snapshot_date", "sku"),
            columns=_PRODUCT_COLUMNS,
        ),
        TableSpec(
            name=SILVER_INVENTORY_SNAPSHOTS,
            description="Stock snapshots per SKU, one set per landing date.",
            partition_by=("snapshot_date",),
            keys=("snapshot_date", "sku"),
            columns=_STOCK_COLUMNS,
        ),
        TableSpec(
            name=OPS_QUARANTINE,
            description="Rows kept out of silver, each with the reason and the original payload. Nothing is dropped silently.",
            partition_by=("landing_date",),
            columns=(
                Column("dataset", "string", "events, products or inventory."),
                Column("landing_date", "date32[day]", "Landing date of the row."),
                Column(
                    "stage",
                    "string",
                    "Where it was rejected: stream_ingest (a stream file named outside the "
                    "producer contract), ingest (a whole landed file: symlink, unsupported type, "
                    "unreadable gzip, too large, a line too long), clean (parsing, encoding, "
                    "non-product lines, bots, conflicting duplicates) or validate (a Great "
                    "Expectations expectation) in the nightly run; stream_clean or "
                    "stream_validate, the same rules on a 5-minute micro-batch "
                    "(incremental_refresh).",
                ),
                Column(
                    "reason",
                    "string",
                    "Why the row was kept out, e.g. malformed_json, invalid_type:quantity, bot_traffic.",
                ),
                Column(
                    "record_key", "string", "event_id or sku when it could be read; the file name for a rejected file."
                ),
                Column("payload", "string", "The original line (for a rejected file: why, and where it lies)."),
                Column("source_file", "string", "File the line came from."),
                Column("run_id", "string", "Airflow run id (or manual) that quarantined it."),
                Column("quarantined_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=OPS_ROW_ACCOUNTING,
            description="Per landing date and dataset: landed = silver + quarantined + duplicates + bots "
            "(datasets events, products, inventory from the nightly; events_stream from the 5-minute refresh).",
            partition_by=("landing_date",),
            keys=("landing_date", "dataset"),
            columns=(
                Column(
                    "dataset", "string", "events, products, inventory (nightly) or events_stream (the 5-minute stream)."
                ),
                Column("landing_date", "date32[day]", "Landing date the rows arrived with."),
                Column("landed", "int64", "Lines landed (ingest; the stream: lines of its files)."),
                Column(
                    "quarantined_clean",
                    "int64",
                    "Rows clean kept out (parsing, encoding, non-product lines, conflicting duplicates).",
                ),
                Column("bots", "int64", "Events of bot sessions (quarantined as bot_traffic)."),
                Column(
                    "duplicates",
                    "int64",
                    "Repeats dropped: the same line twice, a resend, an event silver already held.",
                ),
                Column("staged", "int64", "Rows handed to validation."),
                Column("quarantined_validate", "int64", "Rows a Great Expectations expectation rejected."),
                Column("silver", "int64", "Rows published to silver."),
                Column("run_id", "string", "Run that last wrote the row."),
                Column("updated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=OPS_VALIDATION_RESULTS,
            description="Every Great Expectations result of every run, one row per expectation.",
            partition_by=("landing_date",),
            columns=(
                Column("suite", "string", "Expectation suite (events, products, inventory, event_volume)."),
                Column("landing_date", "date32[day]", "Last landing date of the validated window."),
                Column("run_id", "string", "Run that validated."),
                Column("expectation", "string", "Expectation type, e.g. expect_column_values_to_be_between."),
                Column("column", "string", "Column it checks; null for table-level expectations."),
                Column("severity", "string", "critical (stops the run) or warning (quarantines the failing rows)."),
                Column("success", "bool", "Whether it passed."),
                Column("element_count", "int64", "Rows checked."),
                Column("unexpected_count", "int64", "Rows that failed it."),
                Column("observed_value", "string", "What GX observed, as text (table-level expectations)."),
                Column("validated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=GOLD_USER_FEATURES,
            description="Per-user behaviour as of the end of feature_date (RFM windows, affinities, funnel rates).",
            partition_by=("feature_date",),
            keys=("feature_date", "user_id"),
            columns=(
                Column(
                    "feature_date",
                    "date32[day]",
                    "As-of day D: built from events with event_ts before the end of D (UTC).",
                ),
                Column("user_id", "string", "Customer id (users with any event in the last 90 days)."),
                Column(
                    "recency_days",
                    "int32",
                    "Days since the last purchase (0 = bought on D); null when none in 90 days.",
                ),
                Column("orders_1d", "int32", "Distinct orders in the last 1 day(s)."),
                Column("orders_7d", "int32", "Distinct orders in the last 7 day(s)."),
                Column("orders_28d", "int32", "Distinct orders in the last 28 day(s)."),
                Column("orders_90d", "int32", "Distinct orders in the last 90 day(s)."),
                Column("revenue_1d", "double", "Purchase revenue (before returns) in the last 1 day(s)."),
                Column("revenue_7d", "double", "Purchase revenue (before returns) in the last 7 day(s)."),
                Column("revenue_28d", "double", "Purchase revenue (before returns) in the last 28 day(s)."),
                Column("revenue_90d", "double", "Purchase revenue (before returns) in the last 90 day(s)."),
                Column(
                    "category_affinity",
                    "map<string, double>",
                    "Share of the user's views, carts and purchases (90 days) per catalogue "
                    "category, top 10 kept; empty when none had a known category.",
                ),
                Column(
                    "view_to_cart_rate",
                    "double",
                    "add_to_cart / view events over 90 days, capped at 1; null without views "
                    "(e.g. purchase-only feeds).",
                ),
                Column(
                    "cart_to_purchase_rate",
                    "double",
                    "purchase / add_to_cart events over 90 days, capped at 1; null without carts.",
                ),
                Column("sessions_28d", "int32", "Distinct sessions with events in the last 28 days."),
                Column(
                    "return_rate",
                    "double",
                    "Returned / purchased units over 90 days, capped at 1; null without purchases.",
                ),
                Column(
                    "days_since_first_seen",
                    "int32",
                    "Days since the user's first event, carried over from the previous day's row;"
                    " starts over after 90 days of absence or when the previous day was never "
                    "built.",
                ),
                Column(
                    "last_purchased_skus",
                    "list<string>",
                    "Up to 10 distinct SKUs bought in 90 days, most recent first.",
                ),
                Column(
                    "avg_unit_price",
                    "double",
                    "Mean price paid per unit over 90 days, over lines priced above 0; null without such purchases.",
                ),
            ),
        ),
        TableSpec(
            name=GOLD_ITEM_FEATURES,
            description="Per-SKU popularity, trend, conversion, returns, price and stock status as of feature_date.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku"),
            columns=(
                Column(
                    "feature_date",
                    "date32[day]",
                    "As-of day D: built from events with event_ts before the end of D (UTC).",
                ),
                Column("sku", "string", "Product SKU: in the catalogue as of D or with events in the last 90 days."),
                Column("category", "string", "Category in the catalogue as of D."),
                Column("brand", "string", "Brand in the catalogue as of D."),
                Column(
                    "active", "bool", "Sellable in the catalogue as of D; false when the SKU is not in the catalogue."
                ),
                Column(
                    "unit_price",
                    "double",
                    "List price in the catalogue as of D; null when unknown (missing, 0 or below).",
                ),
                Column(
                    "price_change_7d",
                    "double",
                    "Relative list-price change against the catalogue as of D-7 (-0.1 = 10% "
                    "cheaper); null when unknown.",
                ),
                Column("views_1d", "int32", "View events in the last 1 day(s)."),
                Column("views_7d", "int32", "View events in the last 7 day(s)."),
                Column("views_28d", "int32", "View events in the last 28 day(s)."),
                Column("units_sold_1d", "double", "Units purchased in the last 1 day(s)."),
                Column("units_sold_7d", "double", "Units purchased in the last 7 day(s)."),
                Column("units_sold_28d", "double", "Units purchased in the last 28 day(s)."),
                Column(
                    "trend_7_28",
                    "double",
                    "Daily interactions (views, carts, purchases) over 7 days / over 28 days: > 1"
                    " rising; null without any.",
                ),
                Column(
                    "conversion_rate",
                    "double",
                    "Purchase events / views over 28 days, capped at 1; null without views.",
                ),
                Column("return_rate", "double", "Returned / sold units over 90 days, capped at 1; null without sales."),
                Column(
                    "on_hand", "int32", "Units in stock in the latest inventory snapshot as of D; null when unknown."
                ),
                Column(
                    "stock_status",
                    "string",
                    "out_of_stock (on_hand <= 0), low (at most lead-time demand or 5 units), "
                    "in_stock, or unknown (no inventory snapshot for the SKU, e.g. no inventory "
                    "feed).",
                ),
            ),
        ),
        TableSpec(
            name=GOLD_USER_ITEM_INTERACTIONS,
            description="Implicit-feedback strength per (user, SKU) as of feature_date: the recommender's training input.",
            partition_by=("feature_date",),
            keys=("feature_date", "user_id", "sku"),
            columns=(
                Column(
                    "feature_date",
                    "date32[day]",
                    "As-of day D: built from events with event_ts before the end of D (UTC).",
                ),
                Column("user_id", "string", "Customer id."),
                Column("sku", "string", "Product SKU."),
                Column(
                    "strength",
                    "double",
                    "Implicit feedback: sum of event weights (view 1, cart 3, purchase 5, return "
                    "-5) × 0.5^(age in days / 14) over 90 days, floored at 0.",
                ),
                Column("n_views", "int32", "View events in the window."),
                Column("n_carts", "int32", "add_to_cart events in the window."),
                Column("n_purchases", "int32", "Purchase events in the window."),
                Column("last_interaction_ts", "timestamp[us, tz=UTC]", "Latest event of the user on the SKU."),
            ),
        ),
        TableSpec(
            name=GOLD_ITEM_COOCCURRENCE,
            description="Top-N co-purchase/co-view neighbours per SKU with a normalised similarity, as of feature_date.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku", "other_sku"),
            columns=(
                Column(
                    "feature_date",
                    "date32[day]",
                    "As-of day D: built from events with event_ts before the end of D (UTC).",
                ),
                Column("sku", "string", "Product SKU."),
                Column("other_sku", "string", "A neighbour of sku."),
                Column("co_purchase_count", "int32", "Customers who bought both within 90 days."),
                Column("co_view_count", "int32", "Sessions (per day) that viewed both within 28 days."),
                Column(
                    "similarity",
                    "double",
                    "0.7 × co-purchase cosine + 0.3 × co-view cosine, cosine = count(both) / "
                    "sqrt(count(a) × count(b)).",
                ),
                Column("rank", "int32", "1 = most similar; top 20 kept per SKU."),
            ),
        ),
        TableSpec(
            name=GOLD_SKU_DAILY_DEMAND,
            description="Units per SKU per day (zero-filled) with price, promotion, stockout and calendar features.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku"),
            columns=(
                Column("feature_date", "date32[day]", "The demand day."),
                Column("sku", "string", "Active catalogue SKUs and SKUs sold in the last 28 days (zero-filled)."),
                Column("category", "string", "Category in the catalogue as of the day."),
                Column("units", "double", "Units purchased that day (returns not netted)."),
                Column(
                    "unit_price",
                    "double",
                    "Mean price paid that day over lines priced above 0, else the catalogue list "
                    "price; null when neither is known.",
                ),
                Column(
                    "on_promotion",
                    "bool",
                    "unit_price at least 10% below the highest known list price of the last 28 "
                    "days; false when either is unknown.",
                ),
                Column("is_stockout", "bool", "Latest inventory snapshot shows on_hand <= 0; false when unknown."),
                Column("day_of_week", "int32", "1 = Monday … 7 = Sunday."),
                Column("day_of_month", "int32", "Day of month."),
                Column("month", "int32", "Month."),
                Column("week_of_year", "int32", "ISO week."),
                Column("is_weekend", "bool", "Saturday or Sunday."),
                Column("lag_1", "double", "Units 1 day(s) before; null before the first day of history."),
                Column("lag_7", "double", "Units 7 day(s) before; null before the first day of history."),
                Column("lag_14", "double", "Units 14 day(s) before; null before the first day of history."),
                Column("lag_28", "double", "Units 28 day(s) before; null before the first day of history."),
                Column("rolling_mean_7", "double", "Mean daily units over the 7 days before (not the day)."),
                Column("rolling_mean_28", "double", "Mean daily units over the 28 days before (not the day)."),
                Column("rolling_std_7", "double", "Sample std of daily units over the 7 days before."),
                Column("rolling_std_28", "double", "Sample std of daily units over the 28 days before."),
            ),
        ),
        TableSpec(
            name=GOLD_FEATURE_CORRECTIONS,
            description="Past feature dates re-derived because late events for them arrived, and why.",
            partition_by=("run_date",),
            columns=(
                Column("run_date", "date32[day]", "Nightly run that re-derived the feature date."),
                Column(
                    "feature_date", "date32[day]", "Past feature date rebuilt because late events changed its windows."
                ),
                Column("table_name", "string", "Gold table rebuilt."),
                Column("late_event_count", "int64", "Late events of this landing with event_date <= feature_date."),
                Column("run_id", "string", "Run id."),
                Column("corrected_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=GOLD_RECOMMENDATIONS,
            description="Ranked recommendation lists per user (user_id __default__ holds the fallback lists) per scoring "
            "run: the main list and the buy-again and discover lists storefronts show as their own carousels.",
            partition_by=("scored_date",),
            keys=("scored_date", "user_id", "list", "rank"),
            columns=(
                Column(
                    "user_id", "string", "Customer id; __default__ holds the lists for users the model does not know."
                ),
                Column(
                    "list",
                    "string",
                    "Which list the row belongs to: all (the main list), buy_again (items the "
                    "user bought before) or discover (items new to the user). __default__ has no "
                    "buy_again rows, nor does a user without purchases. Rows without one (a table"
                    " or partition written before the column existed) count as all.",
                ),
                Column("rank", "int32", "1-based position within (scored_date, user_id, list)."),
                Column("sku", "string", "Recommended product SKU."),
                Column("score", "double", "Model score; higher ranks first within a list."),
                Column(
                    "reason",
                    "string",
                    "Why it is shown: similar_to:<sku>, popular_in:<category>, trending, "
                    "retrieval; on buy_again rows bought_before:<times>x:<last purchase date>.",
                ),
                Column(
                    "is_fallback",
                    "bool",
                    "The list is a fallback (cold-start user or the __default__ list), not a personal one.",
                ),
                Column("model_version", "string", "Recommender version that scored the row."),
                Column("run_id", "string", "Run that scored it."),
                Column("generated_at", "timestamp[us, tz=UTC]", "When it was scored (UTC)."),
                Column(
                    "scored_date",
                    "date32[day]",
                    "Logical date of the scoring run (partition); the serving store publishes one per night.",
                ),
            ),
        ),
        TableSpec(
            name=GOLD_SIMILAR_ITEMS,
            description="Top-20 similar SKUs per SKU for product pages, per scoring run.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku", "rank"),
            columns=(
                Column("sku", "string", "Product SKU whose page shows the list."),
                Column("rank", "int32", "1-based position in its list."),
                Column("similar_sku", "string", "A similar product."),
                Column("score", "double", "Similarity; higher ranks first."),
                Column("reason", "string", "Why: co_purchase, co_view or embedding."),
                Column("model_version", "string", "Version of the retrieval embeddings that scored it."),
                Column("run_id", "string", "Run that scored it."),
                Column("generated_at", "timestamp[us, tz=UTC]", "When it was scored (UTC)."),
                Column("scored_date", "date32[day]", "Logical date of the scoring run (partition)."),
            ),
        ),
        TableSpec(
            name=GOLD_DEMAND_FORECASTS,
            description="Mean and P10/P50/P90 daily demand per SKU over the forecast horizon, per forecast origin.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku", "forecast_date"),
            columns=(
                Column("sku", "string", "Product SKU."),
                Column("forecast_date", "date32[day]", "The day forecast."),
                Column("horizon_day", "int32", "Days after the origin (scored_date): 1 = tomorrow."),
                Column(
                    "mean",
                    "double",
                    "Expected units on forecast_date: what cycle stock and order quantities are sized on.",
                ),
                Column("p10", "double", "10% quantile of units on forecast_date (low end of the interval)."),
                Column("p50", "double", "Median units; on lumpy demand often below the mean (zero on most days)."),
                Column("p90", "double", "90% quantile of units: with p10 sizes safety stock and stockout risk."),
                Column(
                    "model_version",
                    "string",
                    "Forecaster version, or baseline:empirical_quantiles before any passed its gate.",
                ),
                Column("run_id", "string", "Run that forecast."),
                Column("generated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
                Column("scored_date", "date32[day]", "Forecast origin: the run's logical date (partition)."),
            ),
        ),
        TableSpec(
            name=GOLD_INVENTORY_PLAN,
            description="Per-SKU safety stock, reorder point, order quantity, cover and stockout risk, per run.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku"),
            columns=(
                Column("sku", "string", "Product SKU."),
                Column("on_hand", "int32", "Units in stock in the latest snapshot."),
                Column("on_order", "int32", "Units on order, not yet received."),
                Column("lead_time_days", "int32", "Supplier lead time (fixed, from the snapshot)."),
                Column(
                    "expected_lead_time_demand", "double", "Mean demand over the lead time (from the mean forecast)."
                ),
                Column(
                    "safety_stock",
                    "double",
                    "Units held against demand above the mean at the service level (from the quantiles).",
                ),
                Column("reorder_point", "double", "Order when on hand + on order is at or below this."),
                Column(
                    "recommended_order_qty",
                    "double",
                    "Units to order now (order up to lead time + review period); 0 when not due.",
                ),
                Column("days_of_cover", "double", "Days the stock on hand lasts at the mean forecast."),
                Column(
                    "stockout_probability", "double", "Chance of running out before the next delivery could arrive."
                ),
                Column(
                    "status",
                    "string",
                    "at_risk (likely to run out before an order can arrive), reorder, overstock or ok.",
                ),
                Column("model_version", "string", "Forecaster version the plan was built on."),
                Column("run_id", "string", "Run that planned."),
                Column("generated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
                Column("scored_date", "date32[day]", "The run's logical date (partition)."),
            ),
        ),
        TableSpec(
            name=GOLD_CUSTOMER_SCORES,
            description="Per customer: purchase propensity, churn risk, expected value, RFM segment and why, per run.",
            partition_by=("scored_date",),
            keys=("scored_date", "user_id"),
            columns=(
                Column("user_id", "string", "Customer id (every customer with an order in the year to scored_date)."),
                Column("p_purchase_30d", "double", "Probability of at least one order in the next 30 days."),
                Column(
                    "p_churn_90d",
                    "double",
                    "Probability of no order in the next 90 days, for customers who ordered in the last 90; "
                    "null for the others (already lapsed).",
                ),
                Column("expected_revenue_90d", "double", "Expected order revenue in the next 90 days."),
                Column(
                    "rfm_segment",
                    "string",
                    "R5F4M3-style quintiles (5 best) of recency, order days and revenue, over the year to scored_date.",
                ),
                Column(
                    "top_reasons",
                    "list<string>",
                    "The features that moved the churn score most (the purchase score's without a churn model), "
                    "as name=value (contribution in log-odds); empty when a baseline scored it.",
                ),
                Column(
                    "scored_by",
                    "string",
                    "Which model scored each column, e.g. purchase=model churn=bgnbd value=model: a head without "
                    "a promoted model is scored by BG/NBD (Gamma-Gamma for value).",
                ),
                Column(
                    "model_version", "string", "Customer model version, or baseline:bgnbd before any passed its gate."
                ),
                Column("run_id", "string", "Run that scored."),
                Column("generated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
                Column("scored_date", "date32[day]", "As-of day of the scores: the run's logical date (partition)."),
            ),
        ),
        TableSpec(
            name=OPS_MODEL_METRICS,
            description="Every evaluation metric of every model and baseline, per training run.",
            partition_by=("model_name",),
            columns=(
                Column("run_id", "string", "Training run."),
                Column("model_name", "string", "recommender, forecaster or customer."),
                Column("model_version", "string", "Candidate version evaluated."),
                Column("candidate", "string", "model, or the baseline's name."),
                Column("metric", "string", "Metric name, e.g. ndcg, wape, wql, bias, coverage."),
                Column("k", "int32", "Cut-off of a ranking metric; null otherwise."),
                Column("segment", "string", "Rows it covers: overall, or a segment (demand class, user group)."),
                Column("value", "double", "The metric's value."),
                Column("promoted", "bool", "Whether the run's candidate was promoted."),
                Column("evaluated_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=OPS_STREAM_WATERMARK,
            description="Last micro-batch file each stream processed; advanced only after the serving store took the results.",
            keys=("stream",),
            columns=(
                Column(
                    "stream",
                    "string",
                    "Stream name (events: the files under `<landing>/events/stream/`); one row per stream.",
                ),
                Column(
                    "last_file",
                    "string",
                    "Name of the last micro-batch file the committing run processed (which files "
                    "are done is the ledger's, ops.stream_files).",
                ),
                Column("files", "int64", "Micro-batch files the committing run processed."),
                Column("events", "int64", "Events the committing run merged into silver (new ones only, not replays)."),
                Column(
                    "served_versions",
                    "map<string, string>",
                    "Serving version each dataset's overlays went into (dataset -> version id); a"
                    " different current version means a nightly publish since, and the next run "
                    "catches up.",
                ),
                Column("run_id", "string", "Airflow run id (or manual) that committed the row."),
                Column(
                    "committed_at",
                    "timestamp[us, tz=UTC]",
                    "When the row was committed (UTC), after the serving store took the run's results.",
                ),
            ),
        ),
        TableSpec(
            name=OPS_STREAM_FILES,
            description="The stream's ledger: every micro-batch file processed, appended after the serving store "
            "took its results; a file not in it is processed, whatever its name sorts to.",
            keys=("stream", "file_name", "sha256"),
            columns=(
                Column("stream", "string", "Stream name (events)."),
                Column("file_name", "string", "Micro-batch file name in the stream folder."),
                Column(
                    "size_bytes",
                    "int64",
                    "Its size when processed; a file rewritten with another size is processed again.",
                ),
                Column("sha256", "string", "SHA-256 of its content when processed."),
                Column("run_id", "string", "Airflow run id (or manual) that processed it."),
                Column("processed_at", "timestamp[us, tz=UTC]", "When the run committed (UTC)."),
                Column("landing_date", "date32[day]", "The file's landing date (from its batch-YYYYMMDD… name)."),
                Column("landed", "int64", "Lines in the file."),
                Column("quarantined_clean", "int64", "Lines that did not parse (ops.quarantine, stage stream_clean)."),
                Column("bots", "int64", "Events of bot sessions (quarantined as bot_traffic)."),
                Column("duplicates", "int64", "Repeats within the batch and events silver already held."),
                Column("staged", "int64", "Events validated."),
                Column("quarantined_validate", "int64", "Events the events suite rejected (stage stream_validate)."),
                Column(
                    "silver",
                    "int64",
                    "Events merged into silver; landed = silver + quarantined + duplicates + "
                    "bots. ops.row_accounting holds these summed per landing date as dataset "
                    "events_stream.",
                ),
            ),
        ),
        TableSpec(
            name=OPS_ERASURE_AUDIT,
            description="Every customer erasure (python -m jobs.privacy erase, the erase_customer DAG), under a "
            "hash of the id: the audit keeps no personal data.",
            columns=(
                Column("subject_sha256", "string", "SHA-256 of the erased user_id."),
                Column(
                    "deleted_rows",
                    "string",
                    "JSON object: table -> rows deleted (each such table vacuumed with no retention).",
                ),
                Column(
                    "serving_keys_removed",
                    "int64",
                    "Values removed from the kept serving versions of the customer-keyed datasets.",
                ),
                Column("requested_by", "string", "Who asked (cli, airflow:<run id>, …)."),
                Column("erased_at", "timestamp[us, tz=UTC]", "When (UTC)."),
            ),
        ),
        TableSpec(
            name=OPS_PUBLISH_AUDIT,
            description="Every publish to the serving store: dataset, version, key count, checksum, duration, trigger.",
            partition_by=("dataset",),
            columns=(
                Column(
                    "dataset",
                    "string",
                    "Serving dataset (recommendations, buy_again, discover, similar, forecasts, inventory).",
                ),
                Column("version", "string", "Version made current."),
                Column("key_count", "int64", "Keys it holds (verified in the store before the flip)."),
                Column("checksum", "string", "SHA-256 over its keys and values."),
                Column("duration_s", "double", "Seconds the publish (or rollback) took."),
                Column("triggered_by", "string", "airflow:<run id>, manual, forced:…, rollback:…."),
                Column("run_id", "string", "Run whose scores it holds."),
                Column("published_at", "timestamp[us, tz=UTC]", "When it became current (UTC)."),
            ),
        ),
    ]
}


def spec(name: str) -> TableSpec:
    """The spec of a table; a clear error names the known tables when the name is wrong."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}") from None


def data_dictionary() -> str:
    """Markdown data dictionary of every table and column (``docs/tables.md`` is this, checked in CI)."""
    lines = ["# Tables", "", "Generated by `python -m shopml.catalog > docs/tables.md` from `shopml/catalog.py`.", ""]
    for table in TABLES.values():
        lines += [f"## `{table.name}`", "", table.description, ""]
        if table.partition_by:
            lines += [f"Partitioned by `{', '.join(table.partition_by)}`.", ""]
        if table.columns:
            lines += ["| column | type | meaning |", "| --- | --- | --- |"]
            lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in table.columns]
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(data_dictionary())
