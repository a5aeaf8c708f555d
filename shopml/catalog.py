"""Every Delta table of the platform: where it lives, how it is partitioned, what it means.

The catalog is the one place that names tables (Kedro's ``catalog.yml`` for
this project). The lake module takes partitioning from it, the Airflow DAGs
derive their Assets from it and ``python -m shopml.catalog`` prints the data
dictionary analysts read.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


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
OPS_MODEL_METRICS = "ops.model_metrics"
OPS_STREAM_WATERMARK = "ops.stream_watermark"
OPS_STREAM_FILES = "ops.stream_files"
OPS_ERASURE_AUDIT = "ops.erasure_audit"
OPS_PUBLISH_AUDIT = "ops.publish_audit"

BRONZE = {"events": BRONZE_EVENTS, "products": BRONZE_PRODUCTS, "inventory": BRONZE_INVENTORY}
STAGING = {"events": STAGING_EVENTS, "products": STAGING_PRODUCTS, "inventory": STAGING_INVENTORY}


def _arrow_type(name: str) -> pa.DataType:
    # Named as pyarrow prints them; resolved on use because DAG files import the catalog and must parse cheaply.
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "date32[day]": pa.date32(),
        "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    }[name]


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    # (column, Arrow type) of tables written from Python rows, in on-disk order; empty for Spark-written ones.
    arrow_fields: tuple[tuple[str, str], ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    def arrow_schema(self) -> pa.Schema:
        """The table's on-disk Arrow schema (every column nullable), for writers and tests that build rows."""
        import pyarrow as pa

        if not self.arrow_fields:
            raise ValueError(f"{self.name} declares no Arrow schema in the catalog")
        return pa.schema([(column, _arrow_type(kind)) for column, kind in self.arrow_fields])


def _raw(kind: str) -> TableSpec:
    return TableSpec(
        name=BRONZE[kind],
        description=f"Raw {kind} lines exactly as landed, one row per line, per landing date.",
        partition_by=("landing_date",),
        columns={
            "landing_date": "Landing folder date (date=YYYY-MM-DD) the line arrived in.",
            "source_file": "File the line came from.",
            "payload": "The original line (CSV rows re-encoded as JSON), kept for audit and quarantine.",
            "ingested_at": "When the ingest job read the line (UTC).",
        },
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
        ),
        TableSpec(
            name=STAGING_PRODUCTS,
            description="Parsed catalogue snapshot of one landing date awaiting validation.",
            partition_by=("snapshot_date",),
        ),
        TableSpec(
            name=STAGING_INVENTORY,
            description="Parsed inventory snapshot of one landing date awaiting validation.",
            partition_by=("snapshot_date",),
        ),
        TableSpec(
            name=SILVER_EVENTS,
            description="Validated, deduplicated, bot-free behavioural events, partitioned by their true event date.",
            partition_by=("event_date",),
            keys=("event_id",),
            columns={
                "event_id": "Unique event id from the source.",
                "event_type": "view, add_to_cart, remove_from_cart, purchase or return.",
                "user_id": "Customer id; null for anonymous traffic.",
                "session_id": "Session id from the source.",
                "sku": "Product SKU.",
                "quantity": "Units; > 0 for purchases and returns.",
                "unit_price": "Price per unit in the event's currency.",
                "currency": "ISO currency code, upper-case.",
                "event_ts": "Event time in UTC.",
                "event_date": "UTC date of event_ts (late events land in their true date).",
                "landing_date": "Landing date the event arrived with; event_date < landing_date means it was late.",
                "feed": "nightly (landing files) or stream (5-minute micro-batches merged by incremental_refresh).",
                "order_id": "Order id for purchases and returns, when the source has one.",
                "channel": "Sales channel, when known.",
                "user_agent": "User agent, when known.",
            },
        ),
        TableSpec(
            name=SILVER_ORDER_LINES,
            description="Purchase and return lines (returns with negative quantity and revenue), by event date.",
            partition_by=("event_date",),
            keys=("event_id",),
            columns={
                "event_id": "Event id of the purchase or return.",
                "order_id": "Order id; the event id when the source has none.",
                "user_id": "Customer id; null for anonymous orders.",
                "sku": "Product SKU.",
                "line_type": "purchase or return.",
                "quantity": "Signed units: positive for purchases, negative for returns.",
                "unit_price": "Price per unit.",
                "revenue": "quantity * unit_price (negative for returns).",
                "currency": "ISO currency code.",
                "event_ts": "Event time in UTC.",
                "event_date": "UTC date of event_ts.",
                "landing_date": "Landing date the line arrived with.",
                "feed": "nightly or stream, as in silver.events.",
            },
        ),
        TableSpec(
            name=SILVER_PRODUCTS,
            description="Product catalogue snapshots, one per landing date, so any past day's catalogue is known.",
            partition_by=("snapshot_date",),
            keys=("snapshot_date", "sku"),
            columns={
                "snapshot_date": "Landing date of the catalogue snapshot.",
                "sku": "Product SKU.",
                "title": "Product title.",
                "category": "Category; null when the catalogue has none.",
                "brand": "Brand; null when the catalogue has none.",
                "unit_price": "List price.",
                "active": "Whether the product is sellable.",
            },
        ),
        TableSpec(
            name=SILVER_INVENTORY_SNAPSHOTS,
            description="Stock snapshots per SKU, one set per landing date.",
            partition_by=("snapshot_date",),
            keys=("snapshot_date", "sku"),
            columns={
                "snapshot_date": "Landing date of the snapshot.",
                "sku": "Product SKU.",
                "on_hand": "Units in stock.",
                "on_order": "Units ordered from suppliers, not yet received.",
                "lead_time_days": "Supplier lead time in days.",
                "snapshot_ts": "When the snapshot was taken (UTC).",
            },
        ),
        TableSpec(
            name=OPS_QUARANTINE,
            description="Rows kept out of silver, each with the reason and the original payload. Nothing is dropped silently.",
            partition_by=("landing_date",),
            columns={
                "dataset": "events, products or inventory.",
                "landing_date": "Landing date of the row.",
                "stage": "Where it was rejected: stream_ingest (a stream file named outside the producer contract), "
                "ingest (a whole landed file: symlink, unsupported type, unreadable "
                "gzip, too large, a line too long), clean (parsing, encoding, non-product lines, bots, conflicting "
                "duplicates) or validate (a Great "
                "Expectations expectation) in the nightly run; stream_clean or stream_validate, the same rules on "
                "a 5-minute micro-batch (incremental_refresh).",
                "reason": "Why the row was kept out, e.g. malformed_json, invalid_type:quantity, bot_traffic.",
                "record_key": "event_id or sku when it could be read; the file name for a rejected file.",
                "payload": "The original line (for a rejected file: why, and where it lies).",
                "source_file": "File the line came from.",
                "run_id": "Airflow run id (or manual) that quarantined it.",
                "quarantined_at": "When (UTC).",
            },
            arrow_fields=(
                ("dataset", "string"),
                ("landing_date", "date32[day]"),
                ("stage", "string"),
                ("reason", "string"),
                ("record_key", "string"),
                ("payload", "string"),
                ("source_file", "string"),
                ("run_id", "string"),
                ("quarantined_at", "timestamp[us, tz=UTC]"),
            ),
        ),
        TableSpec(
            name=OPS_ROW_ACCOUNTING,
            description="Per landing date and dataset: landed = silver + quarantined + duplicates + bots "
            "(datasets events, products, inventory from the nightly; events_stream from the 5-minute refresh).",
            partition_by=("landing_date",),
            keys=("landing_date", "dataset"),
        ),
        TableSpec(
            name=OPS_VALIDATION_RESULTS,
            description="Every Great Expectations result of every run, one row per expectation.",
            partition_by=("landing_date",),
            arrow_fields=(
                ("suite", "string"),
                ("landing_date", "date32[day]"),
                ("run_id", "string"),
                ("expectation", "string"),
                ("column", "string"),
                ("severity", "string"),
                ("success", "bool"),
                ("element_count", "int64"),
                ("unexpected_count", "int64"),
                ("observed_value", "string"),
                ("validated_at", "timestamp[us, tz=UTC]"),
            ),
        ),
        TableSpec(
            name=GOLD_USER_FEATURES,
            description="Per-user behaviour as of the end of feature_date (RFM windows, affinities, funnel rates).",
            partition_by=("feature_date",),
            keys=("feature_date", "user_id"),
        ),
        TableSpec(
            name=GOLD_ITEM_FEATURES,
            description="Per-SKU popularity, trend, conversion, returns, price and stock status as of feature_date.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku"),
        ),
        TableSpec(
            name=GOLD_USER_ITEM_INTERACTIONS,
            description="Implicit-feedback strength per (user, SKU) as of feature_date: the recommender's training input.",
            partition_by=("feature_date",),
            keys=("feature_date", "user_id", "sku"),
        ),
        TableSpec(
            name=GOLD_ITEM_COOCCURRENCE,
            description="Top-N co-purchase/co-view neighbours per SKU with a normalised similarity, as of feature_date.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku", "other_sku"),
        ),
        TableSpec(
            name=GOLD_SKU_DAILY_DEMAND,
            description="Units per SKU per day (zero-filled) with price, promotion, stockout and calendar features.",
            partition_by=("feature_date",),
            keys=("feature_date", "sku"),
        ),
        TableSpec(
            name=GOLD_FEATURE_CORRECTIONS,
            description="Past feature dates re-derived because late events for them arrived, and why.",
            partition_by=("run_date",),
        ),
        TableSpec(
            name=GOLD_RECOMMENDATIONS,
            description="Ranked recommendation lists per user (user_id __default__ holds the fallback lists) per scoring "
            "run: the main list and the buy-again and discover lists storefronts show as their own carousels.",
            partition_by=("scored_date",),
            keys=("scored_date", "user_id", "list", "rank"),
            columns={
                "user_id": "Customer id; __default__ holds the lists for users the model does not know.",
                "list": "Which list the row belongs to: all (the main list), buy_again (items the user bought before) or "
                "discover (items new to the user). __default__ has no buy_again rows, nor does a user without purchases. "
                "Rows without one (a table or partition written before the column existed) count as all.",
                "rank": "1-based position within (scored_date, user_id, list).",
                "sku": "Recommended product SKU.",
                "score": "Model score; higher ranks first within a list.",
                "reason": "Why it is shown: similar_to:<sku>, popular_in:<category>, trending, retrieval; on buy_again "
                "rows bought_before:<times>x:<last purchase date>.",
                "is_fallback": "The list is a fallback (cold-start user or the __default__ list), not a personal one.",
                "model_version": "Recommender version that scored the row.",
                "run_id": "Run that scored it.",
                "generated_at": "When it was scored (UTC).",
                "scored_date": "Logical date of the scoring run (partition); the serving store publishes one per night.",
            },
        ),
        TableSpec(
            name=GOLD_SIMILAR_ITEMS,
            description="Top-20 similar SKUs per SKU for product pages, per scoring run.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku", "rank"),
        ),
        TableSpec(
            name=GOLD_DEMAND_FORECASTS,
            description="Mean and P10/P50/P90 daily demand per SKU over the forecast horizon, per forecast origin.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku", "forecast_date"),
            columns={
                "mean": "Expected units on forecast_date: what cycle stock and order quantities are sized on.",
                "p10": "10% quantile of units on forecast_date (low end of the interval).",
                "p50": "Median units; on lumpy demand often below the mean (zero on most days).",
                "p90": "90% quantile of units: with p10 sizes safety stock and stockout risk.",
                "model_version": "Forecaster version, or baseline:empirical_quantiles before any passed its gate.",
            },
            arrow_fields=(
                ("sku", "string"),
                ("forecast_date", "date32[day]"),
                ("horizon_day", "int32"),
                ("mean", "double"),
                ("p10", "double"),
                ("p50", "double"),
                ("p90", "double"),
                ("model_version", "string"),
                ("run_id", "string"),
                ("generated_at", "timestamp[us, tz=UTC]"),
                ("scored_date", "date32[day]"),
            ),
        ),
        TableSpec(
            name=GOLD_INVENTORY_PLAN,
            description="Per-SKU safety stock, reorder point, order quantity, cover and stockout risk, per run.",
            partition_by=("scored_date",),
            keys=("scored_date", "sku"),
        ),
        TableSpec(
            name=OPS_MODEL_METRICS,
            description="Every evaluation metric of every model and baseline, per training run.",
            partition_by=("model_name",),
            arrow_fields=(
                ("run_id", "string"),
                ("model_name", "string"),
                ("model_version", "string"),
                ("candidate", "string"),
                ("metric", "string"),
                ("k", "int32"),
                ("segment", "string"),
                ("value", "double"),
                ("promoted", "bool"),
                ("evaluated_at", "timestamp[us, tz=UTC]"),
            ),
        ),
        TableSpec(
            name=OPS_STREAM_WATERMARK,
            description="Last micro-batch file each stream processed; advanced only after the serving store took the results.",
            keys=("stream",),
            columns={
                "stream": "Stream name (events: the files under `<landing>/events/stream/`); one row per stream.",
                "last_file": "Name of the last micro-batch file the committing run processed (which files are "
                "done is the ledger's, ops.stream_files).",
                "files": "Micro-batch files the committing run processed.",
                "events": "Events the committing run merged into silver (new ones only, not replays).",
                "served_versions": "Serving version each dataset's overlays went into (dataset -> version id); a "
                "different current version means a nightly publish since, and the next run catches up.",
                "run_id": "Airflow run id (or manual) that committed the row.",
                "committed_at": "When the row was committed (UTC), after the serving store took the run's results.",
            },
        ),
        TableSpec(
            name=OPS_STREAM_FILES,
            description="The stream's ledger: every micro-batch file processed, appended after the serving store "
            "took its results; a file not in it is processed, whatever its name sorts to.",
            keys=("stream", "file_name", "sha256"),
            columns={
                "stream": "Stream name (events).",
                "file_name": "Micro-batch file name in the stream folder.",
                "size_bytes": "Its size when processed; a file rewritten with another size is processed again.",
                "sha256": "SHA-256 of its content when processed.",
                "run_id": "Airflow run id (or manual) that processed it.",
                "processed_at": "When the run committed (UTC).",
                "landing_date": "The file's landing date (from its batch-YYYYMMDD… name).",
                "landed": "Lines in the file.",
                "quarantined_clean": "Lines that did not parse (ops.quarantine, stage stream_clean).",
                "bots": "Events of bot sessions (quarantined as bot_traffic).",
                "duplicates": "Repeats within the batch and events silver already held.",
                "staged": "Events validated.",
                "quarantined_validate": "Events the events suite rejected (stage stream_validate).",
                "silver": "Events merged into silver; landed = silver + quarantined + duplicates + bots. "
                "ops.row_accounting holds these summed per landing date as dataset events_stream.",
            },
            arrow_fields=(
                ("stream", "string"),
                ("file_name", "string"),
                ("size_bytes", "int64"),
                ("sha256", "string"),
                ("run_id", "string"),
                ("processed_at", "timestamp[us, tz=UTC]"),
                ("landing_date", "date32[day]"),
                ("landed", "int64"),
                ("quarantined_clean", "int64"),
                ("bots", "int64"),
                ("duplicates", "int64"),
                ("staged", "int64"),
                ("quarantined_validate", "int64"),
                ("silver", "int64"),
            ),
        ),
        TableSpec(
            name=OPS_ERASURE_AUDIT,
            description="Every customer erasure (python -m shopml.privacy erase, the erase_customer DAG), under a "
            "hash of the id: the audit keeps no personal data.",
            columns={
                "subject_sha256": "SHA-256 of the erased user_id.",
                "deleted_rows": "JSON object: table -> rows deleted (each such table vacuumed with no retention).",
                "serving_keys_removed": "Values removed from the kept serving versions of the customer-keyed datasets.",
                "requested_by": "Who asked (cli, airflow:<run id>, …).",
                "erased_at": "When (UTC).",
            },
            arrow_fields=(
                ("subject_sha256", "string"),
                ("deleted_rows", "string"),
                ("serving_keys_removed", "int64"),
                ("requested_by", "string"),
                ("erased_at", "timestamp[us, tz=UTC]"),
            ),
        ),
        TableSpec(
            name=OPS_PUBLISH_AUDIT,
            description="Every publish to the serving store: dataset, version, key count, checksum, duration, trigger.",
            partition_by=("dataset",),
            arrow_fields=(
                ("dataset", "string"),
                ("version", "string"),
                ("key_count", "int64"),
                ("checksum", "string"),
                ("duration_s", "double"),
                ("triggered_by", "string"),
                ("run_id", "string"),
                ("published_at", "timestamp[us, tz=UTC]"),
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
    """Markdown data dictionary of every table and documented column."""
    lines = ["# Data dictionary", ""]
    for table in TABLES.values():
        lines += [f"## `{table.name}`", "", table.description, ""]
        if table.partition_by:
            lines += [f"Partitioned by `{', '.join(table.partition_by)}`.", ""]
        if table.columns:
            lines += ["| column | meaning |", "| --- | --- |"]
            lines += [f"| `{col}` | {text} |" for col, text in table.columns.items()]
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(data_dictionary())
