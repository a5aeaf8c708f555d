"""Quarantine and row accounting: where rejected rows go, and the proof that none were lost.

For every landing date and dataset::

    landed = silver + quarantined + duplicates + bots

Ingest records what landed, clean what it quarantined, dropped as duplicate
and removed as bot traffic, validate what GX quarantined and what it
published; validate then checks the equation and fails loudly if a single row
is unaccounted for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from shopml.catalog import OPS_QUARANTINE, OPS_ROW_ACCOUNTING, spec
from shopml.errors import PermanentError
from shopml.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from shopml.dates import DateWindow

# The stream's events are accounted apart from the nightly's (whose ingest starts each date afresh),
# per the micro-batch files' landing dates, summed from the ledger (``shopml/watermark.py``).
STREAM_DATASET = "events_stream"
COUNT_COLUMNS = ("landed", "quarantined_clean", "bots", "duplicates", "staged", "quarantined_validate", "silver")


class RowAccountingError(PermanentError, RuntimeError):
    """Rows went missing (or appeared) between landing and silver."""


def write_quarantine(
    lake: Lake, rejected: DataFrame, dataset: str, stage: str, window: DateWindow, run_id: str
) -> dict[date, int]:
    """Replace this stage's quarantine rows for the window; returns quarantined rows per landing date.

    ``rejected`` needs landing_date, payload, source_file and quarantine_reason.
    """
    from pyspark.sql import functions as F

    key = F.col("event_id") if dataset == "events" else F.col("sku")
    rows = rejected.select(
        F.lit(dataset).alias("dataset"),
        "landing_date",
        F.lit(stage).alias("stage"),
        F.col("quarantine_reason").alias("reason"),
        key.cast("string").alias("record_key"),
        F.make_valid_utf8("payload").alias("payload"),  # readable by every engine; bronze keeps the bytes
        "source_file",
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
    where = f"{window.predicate('landing_date')} AND dataset = '{dataset}' AND stage = '{stage}'"
    lake.write(rows, OPS_QUARANTINE, replace_where=where)
    return count_by_date(lake.read(OPS_QUARANTINE).where(where))


def count_by_date(frame: DataFrame, column: str = "landing_date") -> dict[date, int]:
    return {row[column]: row["count"] for row in frame.groupBy(column).count().collect()}


def read_counts(lake: Lake, dataset: str, dates: list[date]) -> dict[date, dict[str, Any]]:
    import pyarrow.compute as pc

    if not lake.exists(OPS_ROW_ACCOUNTING) or not dates:
        return {}
    table = lake.read_arrow(
        OPS_ROW_ACCOUNTING, filter=(pc.field("dataset") == dataset) & pc.field("landing_date").isin(dates)
    )
    return {row["landing_date"]: row for row in table.to_pylist()}


def merge_stage_counts(
    lake: Lake, dataset: str, run_id: str, counts: dict[date, dict[str, int]], reset: bool = False
) -> dict[date, dict[str, Any]]:
    """The accounting rows with one stage's per-date counts merged in (``reset``: start afresh, as ingest does)."""
    existing = {} if reset or not counts else read_counts(lake, dataset, list(counts))
    now = datetime.now(UTC)
    rows = {}
    for day, stage_counts in counts.items():
        row = dict.fromkeys(COUNT_COLUMNS) | existing.get(day, {}) | stage_counts
        rows[day] = row | {"dataset": dataset, "landing_date": day, "run_id": run_id, "updated_at": now}
    return rows


def write_counts(lake: Lake, dataset: str, rows: dict[date, dict[str, Any]]) -> None:
    """Replace these dates' accounting rows of ``dataset``."""
    import pyarrow as pa

    if not rows:
        return
    schema = spec(OPS_ROW_ACCOUNTING).arrow_schema()
    table = pa.Table.from_pylist(
        [{name: row.get(name) for name in schema.names} for row in rows.values()], schema=schema
    )
    days = ", ".join(f"'{day}'" for day in sorted(rows))
    lake.write_arrow(table, OPS_ROW_ACCOUNTING, replace_where=f"dataset = '{dataset}' AND landing_date IN ({days})")


def record_stage_counts(
    lake: Lake, dataset: str, run_id: str, counts: dict[date, dict[str, int]], reset: bool = False
) -> dict[date, dict[str, Any]]:
    """Merge one stage's per-date counts into the accounting rows and write them."""
    rows = merge_stage_counts(lake, dataset, run_id, counts, reset)
    write_counts(lake, dataset, rows)
    return rows


def reconcile(row: dict[str, Any]) -> None:
    """Raise unless landed = silver + quarantined (clean and validate) + duplicates + bots."""
    accounted = sum(row[c] or 0 for c in ("silver", "quarantined_clean", "quarantined_validate", "duplicates", "bots"))
    if accounted != (row["landed"] or 0):
        raise RowAccountingError(
            f"{row['dataset']} {row['landing_date']}: landed {row['landed']} rows but accounted for {accounted} "
            f"(silver {row['silver']}, quarantined {row['quarantined_clean']}+{row['quarantined_validate']}, "
            f"duplicates {row['duplicates']}, bots {row['bots']})"
        )
