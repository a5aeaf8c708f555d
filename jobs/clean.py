"""Clean: parse bronze lines into typed, de-duplicated, bot-free staged rows.

``spark-submit jobs/clean.py --date 2026-01-31 [--from 2026-01-01]``.
Unusable lines (bad JSON, missing fields, wrong types, non-product order
lines) and bot traffic go to ``ops.quarantine`` with a reason and their
payload; duplicates (within the batch, or replays of events an earlier
landing delivered) are counted, and a resend whose content differs from the kept
copy is quarantined as ``conflicting_duplicate``. The survivors are staged for the validate
step, which alone publishes to silver. Rerunning replaces everything this
step wrote for the dates.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cli import run_job
from jobs.stages import CLEAN
from jobs.transforms.cleaning import (
    drop_duplicate_events,
    flag_bot_sessions,
    flag_conflicting_duplicates,
    latest_per_key,
    with_event_date,
)
from jobs.transforms.raw import INVENTORY_FIELDS, PRODUCT_FIELDS, parse_events, parse_records
from shopml import accounting
from shopml.accounting import count_by_date
from shopml.catalog import BRONZE, SILVER_EVENTS, STAGING, STAGING_EVENTS
from shopml.dates import DateWindow
from shopml.lake import Lake

log = logging.getLogger(__name__)


def _bronze(lake: Lake, dataset: str, window: DateWindow) -> DataFrame | None:
    table = BRONZE[dataset]
    if not lake.exists(table):
        return None
    return lake.read(table).where(window.predicate("landing_date"))


def _loaded_event_ids(lake: Lake, window: DateWindow) -> DataFrame:
    """Ids of events already in silver that this batch must not deliver again.

    Those are events of landings outside the batch (recent enough to be replayed now)
    and events the 5-minute stream already merged: the nightly export repeats them.
    """
    if not lake.exists(SILVER_EVENTS):
        return lake.spark.createDataFrame([], "event_id string")
    oldest = window.first - timedelta(days=lake.settings.late_event_max_days + 1)
    outside = (F.col("landing_date") < F.lit(window.first)) | (F.col("landing_date") > F.lit(window.last))
    outside = outside | (F.col("feed") == "stream")
    return lake.read(SILVER_EVENTS).where((F.col("event_date") >= F.lit(oldest)) & outside).select("event_id")


def _per_date(**counts_by_name: dict[date, int]) -> dict[date, dict[str, int]]:
    """Pivot counts by name into counts by date; a date missing from one count had none of it."""
    days = {day for counts in counts_by_name.values() for day in counts}
    return {day: {name: counts.get(day, 0) for name, counts in counts_by_name.items()} for day in days}


def clean_events(lake: Lake, window: DateWindow, run_id: str) -> dict[date, dict[str, int]]:
    bronze = _bronze(lake, "events", window)
    if bronze is None:
        raise RuntimeError(f"bronze.events does not exist: run ingest for {window} first")
    parsed = parse_events(bronze, lake.settings.non_product_skus).cache()
    valid = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason")
    usable = flag_conflicting_duplicates(valid)
    conflicts = usable.where("conflicting_duplicate").drop("conflicting_duplicate")
    unique = drop_duplicate_events(
        usable.where(~F.col("conflicting_duplicate")).drop("conflicting_duplicate"), _loaded_event_ids(lake, window)
    )
    flagged = flag_bot_sessions(unique, lake.settings.bot_max_events_per_session).cache()
    bots = flagged.where("is_bot")
    rejected = parsed.where(F.col("quarantine_reason").isNotNull()).unionByName(
        bots.drop("is_bot").withColumn("quarantine_reason", F.lit("bot_traffic"))
    )
    rejected = rejected.unionByName(conflicts.withColumn("quarantine_reason", F.lit("conflicting_duplicate")))
    quarantined = accounting.write_quarantine(lake, rejected, "events", "clean", window, run_id)
    staged_rows = with_event_date(flagged.where(~F.col("is_bot")).drop("is_bot")).withColumn("feed", F.lit("nightly"))
    lake.write(staged_rows, STAGING_EVENTS, replace_where=window.predicate("landing_date"))
    bot_counts = count_by_date(bots)
    usable_counts = count_by_date(valid)
    unique_counts = count_by_date(flagged)
    conflict_counts = count_by_date(conflicts)
    counts = _per_date(
        quarantined_clean={day: n - bot_counts.get(day, 0) for day, n in quarantined.items()},
        bots=bot_counts,
        duplicates={
            day: n - unique_counts.get(day, 0) - conflict_counts.get(day, 0) for day, n in usable_counts.items()
        },
        staged={day: n - bot_counts.get(day, 0) for day, n in unique_counts.items()},
    )
    parsed.unpersist()
    flagged.unpersist()
    return counts


def clean_snapshot(lake: Lake, dataset: str, window: DateWindow, run_id: str) -> dict[date, dict[str, int]]:
    """Products or inventory: parse, quarantine unusable lines, keep the last line per SKU and date, stage."""
    bronze = _bronze(lake, dataset, window)
    if bronze is None:
        log.info("no %s feed: nothing to clean", dataset)
        return {}
    fields = PRODUCT_FIELDS if dataset == "products" else INVENTORY_FIELDS
    parsed = parse_records(bronze, fields).cache()
    quarantined = accounting.write_quarantine(
        lake, parsed.where(F.col("quarantine_reason").isNotNull()), dataset, "clean", window, run_id
    )
    usable = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason")
    order_column = "snapshot_ts" if dataset == "inventory" else "source_file"
    staged_rows = latest_per_key(usable, ["landing_date", "sku"], order_column).withColumnRenamed(
        "landing_date", "snapshot_date"
    )
    lake.write(staged_rows, STAGING[dataset], replace_where=window.predicate("snapshot_date"))
    staged = count_by_date(lake.read(STAGING[dataset]).where(window.predicate("snapshot_date")), "snapshot_date")
    usable_counts = count_by_date(usable)
    parsed.unpersist()
    return _per_date(
        quarantined_clean=quarantined,
        bots=dict.fromkeys(usable_counts, 0),
        duplicates={day: n - staged.get(day, 0) for day, n in usable_counts.items()},
        staged=staged,
    )


def run(
    run_date: date, run_id: str = "manual", from_date: date | None = None, lake: Lake | None = None
) -> dict[str, Any]:
    lake = lake or Lake()
    window = DateWindow.ending(run_date, from_date)
    results = {"events": clean_events(lake, window, run_id)}
    for dataset in ("products", "inventory"):
        results[dataset] = clean_snapshot(lake, dataset, window, run_id)
    summary: dict[str, Any] = {"dates": str(window), "run_id": run_id}
    for dataset, counts in results.items():
        accounting.record_stage_counts(lake, dataset, run_id, counts)
        summary[dataset] = {
            name: sum(day.get(name, 0) for day in counts.values()) for name in accounting.COUNT_COLUMNS[1:5]
        }
    return summary


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run, CLEAN)
