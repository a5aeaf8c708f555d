"""Validate: gate staged rows with Great Expectations, then publish them to silver.

``spark-submit jobs/validate.py --date 2026-01-31 [--from 2026-01-01]``.
Products are validated first (events and inventory are checked against the
catalogue), then inventory, then the daily event volume and the events.
Rows failing a row-level expectation go to ``ops.quarantine`` named by the
expectation's reason; a failed critical expectation stops the run before
anything reaches silver. Every result lands in ``ops.validation_results`` and
the GX Data Docs. Each date's row accounting must reconcile exactly before the
rows are published: a failed reconciliation leaves silver as it was.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cli import run_job
from jobs.stages import VALIDATE
from jobs.transforms.cleaning import to_order_lines, with_catalogue_check
from jobs.transforms.volume import daily_volume
from shopml import accounting
from shopml.catalog import (
    OPS_ROW_ACCOUNTING,
    OPS_VALIDATION_RESULTS,
    SILVER_EVENTS,
    SILVER_INVENTORY_SNAPSHOTS,
    SILVER_ORDER_LINES,
    SILVER_PRODUCTS,
    STAGING,
    spec,
)
from shopml.dates import DateWindow
from shopml.lake import Lake
from shopml.notify import alert
from shopml.quality import ValidationFailed, ValidationOutcome, validate

log = logging.getLogger(__name__)

SILVER_TABLE = {"events": SILVER_EVENTS, "products": SILVER_PRODUCTS, "inventory": SILVER_INVENTORY_SNAPSHOTS}
DATE_COLUMN = {"events": "landing_date", "products": "snapshot_date", "inventory": "snapshot_date"}
KEY_COLUMNS = {"events": ["event_id"], "products": ["snapshot_date", "sku"], "inventory": ["snapshot_date", "sku"]}
VALIDATION_RESULTS = OPS_VALIDATION_RESULTS
LINEAGE_COLUMNS = ("source_file", "payload")


def rejection_reasons(staged: DataFrame, outcome: ValidationOutcome, keys: list[str]) -> DataFrame:
    """The keys of the rows GX listed as unexpected, each with one failing expectation's reason.

    A small local relation: Spark broadcasts it to the staged rows instead of shuffling them.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([staged.schema[key] for key in keys] + [StructField("quarantine_reason", StringType())])
    rows = [(*key_values, reason) for reason, found in sorted(outcome.rejected_keys.items()) for key_values in found]
    return staged.sparkSession.createDataFrame(rows, schema).dropDuplicates(keys)


def rejected_rows(staged: DataFrame, outcome: ValidationOutcome, keys: list[str]) -> DataFrame:
    """Staged rows GX listed as unexpected, each with one failing expectation's reason."""
    return staged.join(rejection_reasons(staged, outcome, keys), keys, "inner")


def _staged_history(lake: Lake, window: DateWindow, weeks: int) -> tuple[dict[date, int], date]:
    """Staged events per landing date in the reference weeks before the window, and the shop's first landing."""
    import pyarrow.compute as pc

    if not lake.exists(OPS_ROW_ACCOUNTING):
        return {}, window.first
    rows = lake.read_arrow(
        OPS_ROW_ACCOUNTING,
        columns=["landing_date", "staged"],
        filter=(pc.field("dataset") == "events") & (pc.field("landing_date") < window.first),
    ).to_pylist()
    history = {row["landing_date"]: row["staged"] or 0 for row in rows if row["staged"] is not None}
    first_landing = min([*history, window.first])
    since = window.first - timedelta(weeks=weeks)
    return {day: count for day, count in history.items() if day >= since}, first_landing


def catalogue_skus(lake: Lake, last_day: date) -> DataFrame | None:
    """SKUs of every product snapshot up to ``last_day``; None when the shop has no product feed."""
    if not lake.exists(SILVER_PRODUCTS):
        return None
    return lake.read(SILVER_PRODUCTS).where(F.col("snapshot_date") <= F.lit(last_day)).select("sku")


def _write_results(lake: Lake, outcome: ValidationOutcome, window: DateWindow) -> None:
    import pyarrow as pa

    schema = spec(VALIDATION_RESULTS).arrow_schema()
    rows = [result | {"landing_date": window.last} for result in outcome.results]
    where = f"landing_date = '{window.last}' AND suite = '{outcome.suite}'"
    lake.write_arrow(pa.Table.from_pylist(rows, schema=schema), VALIDATION_RESULTS, replace_where=where)


def _gate(lake: Lake, outcome: ValidationOutcome, window: DateWindow, what: str) -> None:
    _write_results(lake, outcome, window)
    if outcome.critical_failures:
        message = (
            f"{what} for {window} failed critical expectation(s): {'; '.join(outcome.critical_failures)}. "
            f"Nothing was published to silver. Data Docs: {outcome.data_docs}"
        )
        alert(
            "validation_breach",
            summary=message,
            severity="critical",
            details={"suite": outcome.suite, "failures": outcome.critical_failures},
            settings=lake.settings,
        )
        raise ValidationFailed(message)


def _describe_volume(row: dict[str, Any], settings: Any) -> str:
    expected = row["expected_events"]
    if row["change_vs_expected"] is None:
        return f"{row['landing_date']}: {row['staged_events']:,} staged events (expected {expected or 'some trading'})"
    return (
        f"{row['landing_date']}: {row['staged_events']:,} staged events vs {expected:,.0f} expected "
        f"(ratio {row['change_vs_expected']:.2f}, allowed {settings.volume_min_ratio}..{settings.volume_max_ratio})"
    )


def check_event_volume(lake: Lake, window: DateWindow, run_id: str) -> None:
    """Gate the run's date on its event volume; earlier dates of a backfill window only warn.

    A backfill replays history: a holiday or a bulk-order day months ago is a fact to record
    (``ops.validation_results``, the report), not a reason to stop loading the rest of it.
    """
    settings = lake.settings
    weeks = settings.volume_reference_weeks
    landed = accounting.read_counts(lake, "events", window.dates())
    staged = {day: row["staged"] or 0 for day, row in landed.items()}
    history, first_landing = _staged_history(lake, window, weeks)
    rows = daily_volume(staged, history, weeks, first_landing)
    volume = lake.spark.createDataFrame(
        rows,
        "landing_date string, staged_events long, expected_events double, change_vs_expected double, "
        "events_on_trading_day long",
    )
    outcome = validate(
        volume,
        "event_volume",
        ["landing_date"],
        window.last,
        run_id,
        settings.var_root / "gx",
        parameters={"min_change": settings.volume_min_ratio, "max_change": settings.volume_max_ratio},
    )
    flagged: dict[str, str] = {}
    for reason, keys in sorted(outcome.rejected_keys.items()):
        for (day,) in keys:
            flagged[day] = f"{flagged[day]}, {reason}" if day in flagged else reason
    by_date = {row["landing_date"]: row for row in rows}
    history_flags = [f"{_describe_volume(by_date[day], settings)} [{flagged[day]}]" for day in sorted(flagged)]
    if str(window.last) in flagged:
        history_flags.pop()
        outcome.critical_failures.append(
            f"{flagged[str(window.last)]} on {_describe_volume(by_date[str(window.last)], settings)}; expected is the "
            f"median of the same weekday over the previous {weeks} weeks. If the shop really traded so, widen "
            f"SHOPML_VOLUME_MIN_RATIO / SHOPML_VOLUME_MAX_RATIO (or SHOPML_VOLUME_REFERENCE_WEEKS) and rerun"
        )
        outcome.results = [result | {"severity": "critical"} for result in outcome.results]
    if history_flags:
        log.warning("event volume: %d earlier date(s) of %s out of band: %s", len(history_flags), window, history_flags)
    _gate(lake, outcome, window, "event volume")


def checked_columns(staged: DataFrame, dataset: str, catalogue: DataFrame | None) -> DataFrame:
    """What GX checks of staged rows: the data columns (lineage stays out of the cache) and, for events
    and inventory, whether each row names a product the catalogue knows."""
    checked = staged.drop(*LINEAGE_COLUMNS)
    return with_catalogue_check(checked, catalogue) if dataset != "products" else checked


def validate_staged(
    lake: Lake, checked: DataFrame, dataset: str, last_day: date, run_id: str, has_catalogue: bool
) -> ValidationOutcome:
    """Run the dataset's suite over ``checked`` (SKU integrity left out when the shop has no catalogue)."""
    return validate(
        checked,
        dataset,
        KEY_COLUMNS[dataset],
        last_day,
        run_id,
        lake.settings.var_root / "gx",
        parameters={"late_event_max_days": lake.settings.late_event_max_days},
        skip=() if has_catalogue else ("unknown_sku",),
    )


def validate_dataset(lake: Lake, dataset: str, window: DateWindow, run_id: str) -> dict[str, Any] | None:
    """Validate one staged dataset and publish what passes; raises ValidationFailed on a critical failure."""
    staging, date_column, keys = STAGING[dataset], DATE_COLUMN[dataset], KEY_COLUMNS[dataset]
    if not lake.exists(staging):
        return None
    staged = lake.read(staging).where(window.predicate(date_column))
    if dataset == "events":
        check_event_volume(lake, window, run_id)
        staged = staged.withColumn("days_late", F.datediff("landing_date", "event_date"))
    elif staged.isEmpty():
        return None
    catalogue = catalogue_skus(lake, window.last) if dataset != "products" else None
    checked = checked_columns(staged, dataset, catalogue).cache()
    outcome = validate_staged(lake, checked, dataset, window.last, run_id, has_catalogue=catalogue is not None)
    _gate(lake, outcome, window, dataset)
    reasons = rejection_reasons(checked, outcome, keys)
    rejected = staged.join(reasons, keys, "inner")
    if dataset != "events":
        rejected = rejected.withColumn("landing_date", F.col("snapshot_date"))
    quarantined = accounting.write_quarantine(lake, rejected, dataset, "validate", window, run_id)
    passed = checked.join(reasons.select(*keys), keys, "left_anti").drop("days_late", "sku_in_catalogue").cache()
    # Reconcile before publishing: when rows went missing on the way, silver keeps what it had.
    to_publish = accounting.count_by_date(passed, date_column)
    dates = set(to_publish) | set(quarantined) | set(accounting.read_counts(lake, dataset, window.dates()))
    rows = accounting.merge_stage_counts(
        lake,
        dataset,
        run_id,
        {day: {"quarantined_validate": quarantined.get(day, 0), "silver": to_publish.get(day, 0)} for day in dates},
    )
    for row in rows.values():
        accounting.reconcile(row)
    silver_where = window.predicate(date_column)
    if dataset == "events":  # rows the 5-minute stream merged are not the nightly run's to replace
        silver_where += " AND feed = 'nightly'"
    lake.write(passed, SILVER_TABLE[dataset], replace_where=silver_where)
    if dataset == "events":
        lake.write(to_order_lines(passed), SILVER_ORDER_LINES, replace_where=silver_where)
    accounting.write_counts(lake, dataset, rows)
    passed.unpersist()
    checked.unpersist()
    totals = {name: sum(row[name] or 0 for row in rows.values()) for name in accounting.COUNT_COLUMNS}
    return totals | {"verdict": "passed" if outcome.success else "passed; failing rows quarantined"}


def run(
    run_date: date, run_id: str = "manual", from_date: date | None = None, lake: Lake | None = None
) -> dict[str, Any]:
    lake = lake or Lake()
    window = DateWindow.ending(run_date, from_date)
    results = {
        dataset: validate_dataset(lake, dataset, window, run_id) for dataset in ("products", "inventory", "events")
    }
    return {"dates": str(window), "run_id": run_id, **results}


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run, VALIDATE)
