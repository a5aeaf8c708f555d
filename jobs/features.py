"""Features: build the gold feature tables for one logical date and re-derive past days that late events changed.

``spark-submit jobs/features.py --date 2026-01-31 [--from 2026-01-01] [--run-id X]``
(or ``python jobs/features.py …``). ``--from`` builds every feature date of a
backfill window in one application; the nightly run builds its own date R.

For the window F..R the job:

1. counts events that landed in F..R with an event date in the
   ``late_lookback_days`` before F, and plans the past feature dates they change
   (every date from the earliest such event date to F-1; see ``plan_corrections``);
2. reads only silver partitions ``event_date >= first date to build - 89`` (the
   longest window), so a night costs the same after 90 days or 3 years of
   history, and summarises them per day once for all dates;
3. builds the dates in passes, oldest first, replacing those dates' partitions:
   the per-entity snapshot tables for the corrected dates and the window's last
   ``backfill_snapshot_days`` dates (the nightly run: just R) in passes of up to
   ``dates_per_pass`` (user features carry first-seen from the day before a
   pass), and ``sku_daily_demand`` for every date in passes of up to
   ``demand_dates_per_pass`` (a pass reads one SKU × day series, so a year's
   backfill is one pass);
4. replaces R's rows of ``gold.feature_corrections`` with the dates it re-derived.

Rerunning R rewrites the same partitions with the same rows: no duplicates.
The point-in-time and late-data rules are in ``jobs/transforms/features.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.cli import run_job
from jobs.stages import BUILD_FEATURES, FEATURE_TABLES
from jobs.transforms.features import (
    PROMO_REFERENCE_DAYS,
    build_item_cooccurrence,
    build_item_features,
    build_sku_daily_demand,
    build_user_features,
    build_user_item_interactions,
    count_late_events,
    gold_schema,
    plan_corrections,
    summarise_activity,
)
from shopml.catalog import (
    GOLD_FEATURE_CORRECTIONS,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_SKU_DAILY_DEMAND,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    SILVER_EVENTS,
    SILVER_INVENTORY_SNAPSHOTS,
    SILVER_ORDER_LINES,
    SILVER_PRODUCTS,
    spec,
)
from shopml.config.features import HISTORY_DAYS, FeaturesConfig
from shopml.dates import DateWindow
from shopml.lake import Lake

log = logging.getLogger(__name__)

CORRECTIONS_TABLE = GOLD_FEATURE_CORRECTIONS


def _read_between(lake: Lake, table: str, column: str, first: date, last: date) -> DataFrame:
    """Partitions ``first``..``last`` of a date-partitioned table (Spark prunes the others unread)."""
    return lake.read(table).where(F.col(column).between(F.lit(first), F.lit(last)))


def _or_empty(lake: Lake, table: str, column: str, first: date, last: date) -> DataFrame:
    if lake.exists(table):
        return _read_between(lake, table, column, first, last)
    log.warning("%s does not exist yet: building features without it", table)
    return lake.spark.createDataFrame([], spec(table).spark_schema())


def late_event_counts(lake: Lake, window: DateWindow, config: FeaturesConfig) -> dict[date, int]:
    """Per event date before the window, the events that landed inside it."""
    first = window.first - timedelta(days=config.late_lookback_days)
    events = _read_between(lake, SILVER_EVENTS, "event_date", first, window.first - timedelta(days=1))
    rows = count_late_events(events, window.first, window.last, config.late_lookback_days).collect()
    return {row["event_date"]: row["late_event_count"] for row in rows}


def _previous_user_features(lake: Lake, day: date) -> DataFrame | None:
    if not lake.exists(GOLD_USER_FEATURES):
        return None
    previous = day - timedelta(days=1)
    return (
        lake.read(GOLD_USER_FEATURES)
        .where(F.col("feature_date") == F.lit(previous))
        .select("feature_date", "user_id", "days_since_first_seen")
    )


def _passes(dates: list[date], size: int) -> list[list[date]]:
    return [dates[start : start + size] for start in range(0, len(dates), size)]


def _write_pass(lake: Lake, chunk: list[date], rows: dict[str, int], built: dict[str, DataFrame]) -> None:
    """Replace the pass's feature dates in each table (one Delta commit per table and pass)."""
    where = "feature_date IN ({})".format(", ".join(f"'{day}'" for day in chunk))
    for table, frame in built.items():
        written = lake.write(frame, table, replace_where=where)
        rows[table] += written
        log.info("%s: %d rows for %s..%s (%d dates)", table, written, chunk[0], chunk[-1], len(chunk))


def _record_corrections(lake: Lake, run_date: date, run_id: str, corrections: list[tuple[date, int]]) -> int:
    now = datetime.now(UTC)
    rows = [
        (run_date, feature_date, table, count, run_id, now)
        for feature_date, count in corrections
        for table in FEATURE_TABLES
    ]
    frame = lake.spark.createDataFrame(rows, gold_schema(CORRECTIONS_TABLE))
    return lake.write(frame, CORRECTIONS_TABLE, replace_where=f"run_date = '{run_date}'")


def run(
    run_date: date,
    run_id: str = "manual",
    from_date: date | None = None,
    lake: Lake | None = None,
    config: FeaturesConfig | None = None,
) -> dict[str, Any]:
    """Build the window's feature dates and re-derive the past dates late events changed; returns a summary."""
    started = time.monotonic()
    lake = lake or Lake()
    config = config or lake.settings.features
    window = DateWindow.ending(run_date, from_date)
    if not lake.exists(SILVER_EVENTS):
        raise RuntimeError(f"silver.events does not exist yet: run clean and validate for {run_date} first")
    if config.late_lookback_days < lake.settings.late_event_max_days:
        log.warning(
            "late_lookback_days=%d < late_event_max_days=%d: late events older than the lookback are not corrected",
            config.late_lookback_days,
            lake.settings.late_event_max_days,
        )
    with _tuned_for_summaries(lake.spark):
        return _build(lake, window, run_id, config, started)


@contextmanager
def _tuned_for_summaries(spark: SparkSession) -> Iterator[None]:
    """Run the build without adaptive query execution, restoring the session's setting after.

    Every plan here reads small cached daily summaries whose sizes Spark knows; re-planning each stage
    (and shuffling sides it then broadcasts) cost ~35% more CPU in bench_features than static plans.
    """
    key = "spark.sql.adaptive.enabled"
    saved = spark.conf.get(key)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, saved)


def _build(lake: Lake, window: DateWindow, run_id: str, config: FeaturesConfig, started: float) -> dict[str, Any]:
    run_date = window.last
    late = late_event_counts(lake, window, config)
    corrections = plan_corrections(late, window.first)
    dates = [day for day, _ in corrections] + window.dates()
    first = dates[0]
    history_start = first - timedelta(days=HISTORY_DAYS - 1)
    snapshots_start = first - timedelta(days=max(PROMO_REFERENCE_DAYS - 1, 7 + config.snapshot_lookback_days))
    log.info(
        "features for %s: rebuilding %d dates %s..%s (late events %s), reading events from %s",
        run_date,
        len(dates),
        first,
        dates[-1],
        late,
        history_start,
    )

    events = _read_between(lake, SILVER_EVENTS, "event_date", history_start, run_date)
    order_lines = _or_empty(lake, SILVER_ORDER_LINES, "event_date", history_start, run_date)
    products = _or_empty(lake, SILVER_PRODUCTS, "snapshot_date", snapshots_start, run_date)
    inventory = None
    if lake.exists(SILVER_INVENTORY_SNAPSHOTS):
        inventory_start = first - timedelta(days=config.snapshot_lookback_days)
        inventory = _read_between(lake, SILVER_INVENTORY_SNAPSHOTS, "snapshot_date", inventory_start, run_date)
    activity = summarise_activity(events, order_lines, first, run_date, config).persist()

    snapshot_dates = sorted({day for day, _ in corrections} | set(window.dates()[-config.backfill_snapshot_days :]))
    rows = dict.fromkeys(FEATURE_TABLES, 0)
    try:
        for chunk in _passes(snapshot_dates, config.dates_per_pass):
            previous = _previous_user_features(lake, chunk[0])
            _write_pass(
                lake,
                chunk,
                rows,
                {
                    GOLD_USER_ITEM_INTERACTIONS: build_user_item_interactions(activity, chunk, config),
                    GOLD_USER_FEATURES: build_user_features(activity, products, chunk, config, previous),
                    GOLD_ITEM_FEATURES: build_item_features(activity, products, inventory, chunk, config),
                    GOLD_ITEM_COOCCURRENCE: build_item_cooccurrence(activity, chunk, config),
                },
            )
        # Daily demand has no day-to-day carry-over and forecasters read its whole history: every date.
        for chunk in _passes(dates, config.demand_dates_per_pass):
            demand = build_sku_daily_demand(activity, products, inventory, chunk, config)
            _write_pass(lake, chunk, rows, {GOLD_SKU_DAILY_DEMAND: demand})
    finally:
        activity.unpersist()
    _record_corrections(lake, run_date, run_id, corrections)
    return {
        "dates": str(window),
        "run_id": run_id,
        "feature_dates": [day.isoformat() for day in dates],
        "snapshot_dates": [day.isoformat() for day in snapshot_dates],
        "corrected_dates": [day.isoformat() for day, _ in corrections],
        "late_events": sum(late.values()),
        "rows": rows,
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run, BUILD_FEATURES)
