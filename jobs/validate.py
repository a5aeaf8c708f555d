"""Validate: gate one landing date's staged rows with Great Expectations, then publish them to silver.

``spark-submit jobs/validate.py --date 2026-01-31``. Products are validated
first (events are checked against the catalogue), then inventory, then events.
Rows failing a row-level expectation go to ``ops.quarantine`` named by the
expectation's reason; a failed critical expectation stops the run before
anything reaches silver. Every result lands in ``ops.validation_results`` and
the GX Data Docs. Finally the date's row accounting must reconcile exactly.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.cli import run_job
from jobs.transforms.cleaning import to_order_lines
from shopml import accounting
from shopml.lake import Lake
from shopml.quality import ValidationFailed, ValidationOutcome, validate

log = logging.getLogger(__name__)

SILVER_TABLE = {"events": "silver.events", "products": "silver.products", "inventory": "silver.inventory_snapshots"}
DATE_COLUMN = {"events": "landing_date", "products": "snapshot_date", "inventory": "snapshot_date"}
KEY_COLUMN = {"events": "event_id", "products": "sku", "inventory": "sku"}


def rejected_rows(staged: DataFrame, outcome: ValidationOutcome, key: str) -> DataFrame:
    """Staged rows GX listed as unexpected, each with the first failing expectation's reason."""
    spark = staged.sparkSession
    pairs = [(str(k), reason) for reason, keys in outcome.rejected_keys.items() for k in keys]
    reasons = spark.createDataFrame(pairs, f"{key} string, quarantine_reason string").dropDuplicates([key])
    return staged.join(reasons, key, "inner")


def _known_skus(lake: Lake, run_date: date) -> list[str] | None:
    if not lake.exists("silver.products"):
        return None
    products = lake.read("silver.products").where(F.col("snapshot_date") <= F.lit(run_date))
    return [row.sku for row in products.select("sku").distinct().collect()]


def _event_parameters(lake: Lake, run_date: date, known_skus: list[str] | None) -> dict[str, Any]:
    settings = lake.settings
    previous = None
    if lake.exists(accounting.ACCOUNTING_TABLE):
        history = (
            lake.read(accounting.ACCOUNTING_TABLE)
            .where((F.col("dataset") == "events") & (F.col("landing_date") < F.lit(run_date)))
            .where(F.col("silver").isNotNull())
            .orderBy(F.col("landing_date").desc())
            .select("silver")
            .first()
        )
        previous = history.silver if history else None
    start_of_day = datetime.combine(run_date, time.min, tzinfo=UTC)
    return {
        "min_rows": 1 if previous is None else max(1, int(previous * (1 - settings.row_count_max_change))),
        "max_rows": None if previous is None else int(previous * (1 + settings.row_count_max_change)) + 1,
        # A day's file may hold events up to late_event_max_days old, and clocks/time zones a day ahead.
        "min_event_ts": start_of_day - timedelta(days=settings.late_event_max_days),
        "max_event_ts": start_of_day + timedelta(days=2),
        "known_skus": known_skus or [],
    }


def validate_dataset(lake: Lake, dataset: str, run_date: date, run_id: str) -> dict[str, Any] | None:
    """Validate one staged dataset and publish what passes; raises ValidationFailed on a critical failure."""
    staging = f"staging.{dataset}"
    date_column = DATE_COLUMN[dataset]
    if not lake.exists(staging):
        return None
    staged = lake.read(staging).where(F.col(date_column) == F.lit(run_date))
    if dataset != "events" and staged.isEmpty():
        return None
    staged = staged.cache()
    known_skus = _known_skus(lake, run_date) if dataset != "products" else None
    parameters = _event_parameters(lake, run_date, known_skus) if dataset == "events" else {"known_skus": known_skus}
    outcome = validate(
        staged,
        dataset,
        KEY_COLUMN[dataset],
        run_date,
        run_id,
        lake.settings.var_root / "gx",
        parameters=parameters,
        skip=() if known_skus else ("unknown_sku",),
    )
    _write_results(lake, outcome, run_date)
    if outcome.critical_failures:
        raise ValidationFailed(
            f"{dataset} for {run_date} failed critical expectation(s): {'; '.join(outcome.critical_failures)}. "
            f"Nothing was published to silver. Data Docs: {outcome.data_docs}"
        )
    rejected = rejected_rows(staged, outcome, KEY_COLUMN[dataset])
    quarantined = accounting.write_quarantine(lake, rejected, dataset, "validate", run_date, run_id)
    passed = staged.join(rejected.select(KEY_COLUMN[dataset]), KEY_COLUMN[dataset], "left_anti").drop(
        "source_file", "payload"
    )
    silver_where = f"{DATE_COLUMN[dataset]} = '{run_date}'"
    published = lake.write(passed, SILVER_TABLE[dataset], replace_where=silver_where)
    if dataset == "events":
        lake.write(to_order_lines(passed), "silver.order_lines", replace_where=silver_where)
    staged.unpersist()
    row = accounting.record_stage_counts(
        lake, dataset, run_date, run_id, {"quarantined_validate": quarantined, "silver": published}
    )
    accounting.reconcile(row)
    return {key: row[key] for key in accounting.COUNT_COLUMNS} | {
        "verdict": "passed" if outcome.success else "rows quarantined"
    }


def _write_results(lake: Lake, outcome: ValidationOutcome, run_date: date) -> None:
    import pyarrow as pa

    schema = pa.schema(
        [
            ("suite", pa.string()),
            ("landing_date", pa.date32()),
            ("run_id", pa.string()),
            ("expectation", pa.string()),
            ("column", pa.string()),
            ("severity", pa.string()),
            ("success", pa.bool_()),
            ("element_count", pa.int64()),
            ("unexpected_count", pa.int64()),
            ("observed_value", pa.string()),
            ("validated_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    table = pa.Table.from_pylist(outcome.results, schema=schema)
    lake.write_arrow(
        table, "ops.validation_results", replace_where=f"landing_date = '{run_date}' AND suite = '{outcome.suite}'"
    )


def run(run_date: date, run_id: str = "manual", lake: Lake | None = None) -> dict[str, Any]:
    lake = lake or Lake()
    results = {
        dataset: validate_dataset(lake, dataset, run_date, run_id) for dataset in ("products", "inventory", "events")
    }
    return {"date": run_date, "run_id": run_id, **results}


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run)
