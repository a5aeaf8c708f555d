"""Clean: parse one landing date's bronze lines into typed, de-duplicated, bot-free staged rows.

``spark-submit jobs/clean.py --date 2026-01-31``. Unusable lines (bad JSON,
missing fields, wrong types, non-product order lines) and bot traffic go to
``ops.quarantine`` with a reason and their payload; duplicates (within the
landing, or replays of events an earlier landing delivered) are counted. The
survivors are staged for the validate step, which alone publishes to silver.
Rerunning a date replaces everything this step wrote for it.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cli import run_job
from jobs.transforms.cleaning import drop_duplicate_events, flag_bot_sessions, latest_per_key, with_event_date
from jobs.transforms.raw import EVENT_FIELDS, INVENTORY_FIELDS, PRODUCT_FIELDS, parse_events, parse_records
from shopml import accounting
from shopml.lake import Lake

log = logging.getLogger(__name__)


def _bronze(lake: Lake, dataset: str, run_date: date) -> DataFrame | None:
    table = f"bronze.{dataset}"
    if not lake.exists(table):
        return None
    bronze = lake.read(table).where(F.col("landing_date") == F.lit(run_date))
    return bronze if dataset == "events" or not bronze.isEmpty() else None


def _loaded_event_ids(lake: Lake, run_date: date) -> DataFrame:
    """Ids of events other landings delivered recently enough to be replayed now."""
    if not lake.exists("silver.events"):
        return lake.spark.createDataFrame([], "event_id string")
    oldest = run_date - timedelta(days=lake.settings.late_event_max_days + 1)
    return (
        lake.read("silver.events")
        .where((F.col("event_date") >= F.lit(oldest)) & (F.col("landing_date") != F.lit(run_date)))
        .select("event_id")
    )


def clean_events(lake: Lake, run_date: date, run_id: str) -> dict[str, int]:
    bronze = _bronze(lake, "events", run_date)
    if bronze is None:
        raise RuntimeError(f"bronze.events has no table yet: run ingest for {run_date} first")
    parsed = parse_events(bronze, lake.settings.non_product_skus).cache()
    usable = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason")
    unique = drop_duplicate_events(usable, _loaded_event_ids(lake, run_date))
    flagged = flag_bot_sessions(unique, lake.settings.bot_max_events_per_session).cache()
    bots = flagged.where("is_bot").withColumn("quarantine_reason", F.lit("bot_traffic"))
    rejected = parsed.where(F.col("quarantine_reason").isNotNull()).unionByName(bots.drop("is_bot"))
    quarantined = accounting.write_quarantine(lake, rejected, "events", "clean", run_date, run_id)
    staged_rows = flagged.where(~F.col("is_bot")).drop("is_bot")
    staged = lake.write(with_event_date(staged_rows), "staging.events", replace_where=f"landing_date = '{run_date}'")
    bot_count = flagged.where("is_bot").count()
    counts = {
        "landed": parsed.count(),
        "quarantined_clean": quarantined - bot_count,
        "bots": bot_count,
        "duplicates": usable.count() - flagged.count(),
        "staged": staged,
    }
    parsed.unpersist()
    flagged.unpersist()
    return counts


def clean_snapshot(lake: Lake, dataset: str, run_date: date, run_id: str) -> dict[str, int] | None:
    """Products or inventory: parse, quarantine unusable lines, keep the last line per SKU, stage."""
    bronze = _bronze(lake, dataset, run_date)
    if bronze is None:
        log.info("no %s landed for %s", dataset, run_date)
        return None
    fields = PRODUCT_FIELDS if dataset == "products" else INVENTORY_FIELDS
    parsed = parse_records(bronze, fields).cache()
    quarantined = accounting.write_quarantine(
        lake, parsed.where(F.col("quarantine_reason").isNotNull()), dataset, "clean", run_date, run_id
    )
    usable = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason", "landing_date")
    order_column = "snapshot_ts" if dataset == "inventory" else "source_file"
    staged_rows = latest_per_key(usable, "sku", order_column).withColumn("snapshot_date", F.lit(run_date))
    staged = lake.write(staged_rows, f"staging.{dataset}", replace_where=f"snapshot_date = '{run_date}'")
    counts = {
        "landed": parsed.count(),
        "quarantined_clean": quarantined,
        "bots": 0,
        "duplicates": usable.count() - staged,
        "staged": staged,
    }
    parsed.unpersist()
    return counts


def run(run_date: date, run_id: str = "manual", lake: Lake | None = None) -> dict[str, Any]:
    lake = lake or Lake()
    results: dict[str, Any] = {"events": clean_events(lake, run_date, run_id)}
    for dataset in ("products", "inventory"):
        results[dataset] = clean_snapshot(lake, dataset, run_date, run_id)
    for dataset, counts in results.items():
        if counts is not None:
            accounting.record_stage_counts(lake, dataset, run_date, run_id, counts)
    return {"date": run_date, "run_id": run_id, **results}


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run)
