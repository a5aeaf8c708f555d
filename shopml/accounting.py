"""Quarantine and row accounting: where rejected rows go, and the proof that none were lost.

For every landing date and dataset::

    landed = silver + quarantined + duplicates + bots

Clean records what it quarantined, dropped as duplicate and removed as bot
traffic; validate adds what GX quarantined and what it published, then checks
the equation and fails loudly if a single row is unaccounted for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from shopml.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ACCOUNTING_TABLE = "ops.row_accounting"
QUARANTINE_TABLE = "ops.quarantine"
COUNT_COLUMNS = ("landed", "quarantined_clean", "bots", "duplicates", "staged", "quarantined_validate", "silver")


class RowAccountingError(RuntimeError):
    """Rows went missing (or appeared) between landing and silver."""


def write_quarantine(lake: Lake, rejected: DataFrame, dataset: str, stage: str, run_date: date, run_id: str) -> int:
    """Replace this stage's quarantine rows for the date; ``rejected`` needs payload, source_file and quarantine_reason."""
    from pyspark.sql import functions as F

    key = F.col("event_id") if dataset == "events" else F.col("sku")
    rows = rejected.select(
        F.lit(dataset).alias("dataset"),
        F.lit(run_date).alias("landing_date"),
        F.lit(stage).alias("stage"),
        F.col("quarantine_reason").alias("reason"),
        key.cast("string").alias("record_key"),
        "payload",
        "source_file",
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
    where = f"landing_date = '{run_date}' AND dataset = '{dataset}' AND stage = '{stage}'"
    return lake.write(rows, QUARANTINE_TABLE, replace_where=where)


def _counts_row(lake: Lake, dataset: str, run_date: date) -> dict[str, Any]:
    import pyarrow.compute as pc

    if not lake.exists(ACCOUNTING_TABLE):
        return {}
    table = lake.read_arrow(
        ACCOUNTING_TABLE, filter=(pc.field("landing_date") == run_date) & (pc.field("dataset") == dataset)
    )
    return table.to_pylist()[0] if table.num_rows else {}


def record_stage_counts(
    lake: Lake, dataset: str, run_date: date, run_id: str, counts: dict[str, int]
) -> dict[str, Any]:
    """Merge one stage's counts into the date's accounting row (clean first, then validate)."""
    import pyarrow as pa

    row = {column: None for column in COUNT_COLUMNS} | _counts_row(lake, dataset, run_date)
    row.update(counts)
    row.update({"dataset": dataset, "landing_date": run_date, "run_id": run_id, "updated_at": datetime.now(UTC)})
    schema = pa.schema(
        [("dataset", pa.string()), ("landing_date", pa.date32())]
        + [(column, pa.int64()) for column in COUNT_COLUMNS]
        + [("run_id", pa.string()), ("updated_at", pa.timestamp("us", tz="UTC"))]
    )
    table = pa.Table.from_pylist([{name: row.get(name) for name in schema.names}], schema=schema)
    lake.write_arrow(table, ACCOUNTING_TABLE, replace_where=f"landing_date = '{run_date}' AND dataset = '{dataset}'")
    return row


def reconcile(row: dict[str, Any]) -> None:
    """Raise unless landed = silver + quarantined (clean and validate) + duplicates + bots."""
    accounted = sum(row[c] or 0 for c in ("silver", "quarantined_clean", "quarantined_validate", "duplicates", "bots"))
    if accounted != row["landed"]:
        raise RowAccountingError(
            f"{row['dataset']} {row['landing_date']}: landed {row['landed']} rows but accounted for {accounted} "
            f"(silver {row['silver']}, quarantined {row['quarantined_clean']}+{row['quarantined_validate']}, "
            f"duplicates {row['duplicates']}, bots {row['bots']})"
        )
