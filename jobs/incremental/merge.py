"""The merge step: the stream's new micro-batch files, parsed, de-duplicated and validated as the nightly
run would, MERGEd insert-only into silver, every line accounted for per file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest import read_landed_lines
from jobs.landing import CSV_SUFFIXES, JSON_SUFFIXES
from jobs.transforms.cleaning import (
    drop_duplicate_events,
    flag_bot_sessions,
    to_order_lines,
    with_event_date,
)
from jobs.transforms.raw import parse_events
from jobs.validate import catalogue_skus, checked_columns, rejected_rows, validate_staged
from shopml import accounting
from shopml.catalog import OPS_QUARANTINE, SILVER_EVENTS, SILVER_ORDER_LINES, spec
from shopml.lake import Lake
from shopml.notify import alert
from shopml.quality import ValidationFailed
from shopml.watermark import (
    misnamed_files,
)

log = logging.getLogger(__name__)


# event_date first: Delta prunes the target to the batch's partitions before matching ids.
MERGE_KEYS = ("event_date", "event_id")


EVENT_COLUMNS = ["event_id", "event_type", "user_id", "sku", "quantity", "event_ts"]


@dataclass
class Batch:
    """What one run took from the stream."""

    counts: dict[str, int]
    # Valid events of the batch (new ones and ones silver already held): who and what they affect.
    events: pd.DataFrame
    # Per file name: its landing date and row accounting (``shopml.accounting.COUNT_COLUMNS``).
    file_counts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Batch:
        return cls({}, pd.DataFrame({column: pd.Series(dtype=object) for column in EVENT_COLUMNS}))


def _batch_landing_date(fallback: date):
    """The batch's UTC date from its file name (``batch-YYYYMMDDT…``): reruns assign the same landing date."""
    stamp = F.regexp_extract(F.col("source_file"), r"batch-(\d{8})T", 1)
    return F.coalesce(F.to_date(F.try_to_timestamp(stamp, F.lit("yyyyMMdd"))), F.lit(fallback))


def _flag_bots(lake: Lake, fresh: DataFrame, event_dates: list[date]) -> DataFrame:
    """``is_bot`` as the nightly rule, counting each session's stream events already merged the same landing day."""
    limit = lake.settings.bot_max_events_per_session
    fresh = fresh.withColumn("_prior", F.lit(False))
    if lake.exists(SILVER_EVENTS):
        prior = (
            lake.read(SILVER_EVENTS)
            .where(F.col("event_date").isin(event_dates) & (F.col("feed") == "stream"))
            .select("landing_date", "session_id", "event_type", "user_agent")
            .join(fresh.select("landing_date", "session_id").distinct(), ["landing_date", "session_id"], "left_semi")
            .withColumn("_prior", F.lit(True))
        )
        fresh = fresh.unionByName(prior, allowMissingColumns=True)
    return flag_bot_sessions(fresh, limit).where(~F.col("_prior")).drop("_prior")


def _write_quarantine(lake: Lake, rejected: DataFrame, sources: list[tuple[date, str]], run_id: str) -> None:
    """Replace the quarantine rows of exactly these files, so a rerun of a batch rewrites instead of appending."""
    rows = rejected.select(
        F.lit("events").alias("dataset"),
        "landing_date",
        "stage",
        F.col("quarantine_reason").alias("reason"),
        F.col("event_id").cast("string").alias("record_key"),
        "payload",
        "source_file",
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
    days = ", ".join(sorted({f"'{day}'" for day, _ in sources}))
    files = ", ".join(sorted({"'" + name.replace("'", "''") + "'" for _, name in sources}))
    where = (
        f"landing_date IN ({days}) AND dataset = 'events' AND stage IN ('stream_clean', 'stream_validate') "
        f"AND source_file IN ({files})"
    )
    lake.write(rows, OPS_QUARANTINE, replace_where=where)


def file_accounting(
    seen: list, unique: DataFrame, known: DataFrame, flagged: DataFrame, rejected: DataFrame, passed: DataFrame
) -> dict[str, dict[str, Any]]:
    """Each file's row accounting, as the nightly keeps it per landing date, reconciled.

    ``seen`` holds the parsed lines per (landing_date, source_file, event_date) with ``lines`` and
    ``unparsable``; the frames are the batch's stages, each with ``source_file``, counted per file in one
    Spark job. Raises ``RowAccountingError`` (before anything is merged) when a file's rows do not add up.
    """
    stages = {"unique": unique, "known": known, "flagged": flagged, "rejected": rejected, "passed": passed}
    tagged = [
        frame.select(
            "source_file",
            F.lit(stage).alias("stage"),
            (F.col("is_bot") if stage == "flagged" else F.lit(False)).alias("is_bot"),
        )
        for stage, frame in stages.items()
    ]
    union = tagged[0]
    for frame in tagged[1:]:
        union = union.unionByName(frame)
    counts: dict[tuple[str, str], Any] = {
        (row.source_file.rsplit("/", 1)[-1], row.stage): row
        for row in union.groupBy("source_file", "stage")
        .agg(F.count(F.lit(1)).alias("n"), F.count_if("is_bot").alias("bots"))
        .collect()
    }
    files: dict[str, dict[str, Any]] = {}
    for row in seen:
        name = row.source_file.rsplit("/", 1)[-1]
        entry = files.setdefault(name, {"landing_date": row.landing_date, "landed": 0, "quarantined_clean": 0})
        entry["landed"] += row.lines
        entry["quarantined_clean"] += row.unparsable

    def count(name: str, stage: str, column: str = "n") -> int:
        found = counts.get((name, stage))
        return found[column] if found is not None else 0

    for name, entry in files.items():
        bots = count(name, "flagged", "bots")
        entry |= {
            "unique": count(name, "unique"),
            "known": count(name, "known"),
            "duplicates": entry["landed"] - entry["quarantined_clean"] - count(name, "unique") + count(name, "known"),
            "bots": bots,
            "staged": count(name, "flagged") - bots,
            "quarantined_validate": count(name, "rejected"),
            "silver": count(name, "passed"),
        }
        accounting.reconcile(
            entry | {"dataset": accounting.STREAM_DATASET, "landing_date": f"{entry['landing_date']} ({name})"}
        )
    return files


def merge_batch(lake: Lake, files: Sequence[Path], run_ts: datetime, run_id: str) -> Batch:
    """Parse, de-duplicate, validate and MERGE micro-batch files into silver; returns counts and the valid events.

    Raises ``ValidationFailed`` (nothing merged) when a critical expectation fails, ``RowAccountingError``
    (nothing merged) when a file's rows do not add up.
    """
    spark, settings = lake.spark, lake.settings
    lines = read_landed_lines(
        spark,
        [str(path) for path in files if path.name.endswith(JSON_SUFFIXES)],
        [str(path) for path in files if path.name.endswith(CSV_SUFFIXES)],
    )
    bronze = lines.withColumn("landing_date", _batch_landing_date(run_ts.date()))
    parsed = parse_events(bronze, settings.non_product_skus).cache()
    usable = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason")
    unique = drop_duplicate_events(usable, spark.createDataFrame([], "event_id string")).cache()
    # One pass over the parsed lines: the files' landing dates, the events' dates and the line counts.
    files_seen = parsed.groupBy("landing_date", "source_file", F.to_date("event_ts").alias("event_date")).agg(
        F.count(F.lit(1)).alias("lines"), F.count("quarantine_reason").alias("unparsable")
    )
    seen = files_seen.collect()
    sources = sorted({(row.landing_date, row.source_file) for row in seen})
    event_dates = sorted({row.event_date for row in seen if row.event_date is not None})
    if lake.exists(SILVER_EVENTS):
        loaded = lake.read(SILVER_EVENTS).where(F.col("event_date").isin(event_dates)).select("event_id")
    else:
        loaded = spark.createDataFrame([], "event_id string")
    known = unique.join(loaded, "event_id", "left_semi")
    flagged = _flag_bots(lake, unique.join(loaded, "event_id", "left_anti"), event_dates).cache()
    staged = (
        with_event_date(flagged.where(~F.col("is_bot")).drop("is_bot"))
        .withColumn("feed", F.lit("stream"))
        .withColumn("days_late", F.datediff("landing_date", "event_date"))
        .cache()
    )
    catalogue = catalogue_skus(lake, run_ts.date())
    checked = checked_columns(staged, "events", catalogue)
    outcome = validate_staged(lake, checked, "events", run_ts.date(), run_id, has_catalogue=catalogue is not None)
    if outcome.critical_failures:
        raise ValidationFailed(
            f"micro-batch {files[0].name}..{files[-1].name} failed critical expectation(s): "
            f"{'; '.join(outcome.critical_failures)}. Nothing was merged; the watermark stays."
        )
    rejected = rejected_rows(staged, outcome, ["event_id"]).cache()
    passing = staged.join(rejected.select("event_id"), "event_id", "left_anti").cache()
    clean_rejects = parsed.where(F.col("quarantine_reason").isNotNull()).unionByName(
        flagged.where("is_bot").drop("is_bot").withColumn("quarantine_reason", F.lit("bot_traffic"))
    )
    quarantine = clean_rejects.withColumn("stage", F.lit("stream_clean")).unionByName(
        rejected.drop("days_late", "event_date", "feed").withColumn("stage", F.lit("stream_validate"))
    )
    per_file = file_accounting(seen, unique, known, flagged, rejected, passing)
    passed = passing.drop("source_file", "payload", "days_late")
    totals = {
        column: sum(entry[column] for entry in per_file.values())
        for column in (*accounting.COUNT_COLUMNS, "unique", "known")
    }
    counts = {
        "lines": totals["landed"],
        "unique": totals["unique"],
        "already_in_silver": totals["known"],
        "bots": totals["bots"],
        "quarantined": totals["quarantined_clean"] + totals["bots"] + totals["quarantined_validate"],
        "merged": totals["silver"],
        "duplicates": totals["duplicates"],
    }
    if counts["quarantined"]:
        _write_quarantine(lake, quarantine, sources, run_id)
    if counts["merged"]:
        # Order lines first: a run that dies between the two merges is redone whole (the events are not yet
        # in silver, so they are not taken for duplicates), and both merges insert only what is missing.
        lake.merge(to_order_lines(passed), SILVER_ORDER_LINES, MERGE_KEYS, update=False)
        lake.merge(passed, SILVER_EVENTS, MERGE_KEYS, update=False)
    events = passed.select(*EVENT_COLUMNS).unionByName(known.select(*EVENT_COLUMNS)).toPandas()
    for frame in (parsed, unique, flagged, staged, rejected, passing):
        frame.unpersist()
    log.info("micro-batch %s..%s: %s", files[0].name, files[-1].name, counts)
    return Batch(counts, events, per_file)


def set_aside_misnamed(lake: Lake, folder: Path, run_id: str, run_ts: datetime) -> list[str]:
    """Move finished files named outside the producer contract to ``_rejected/``, with a quarantine row
    each and one alert: processed, a ``manual-fix.jsonl`` could hide a bad batch; left, it would be unseen."""
    misnamed = misnamed_files(folder, JSON_SUFFIXES + CSV_SUFFIXES)
    if not misnamed:
        return []
    rejected_dir = folder / "_rejected"
    rejected_dir.mkdir(exist_ok=True)
    rows, moves = [], []
    for path in misnamed:
        target = rejected_dir / f"{run_ts:%Y%m%dT%H%M%SZ}-{path.name}"
        moves.append((path, target))
        rows.append(
            {
                "dataset": "events",
                "landing_date": run_ts.date(),
                "stage": "stream_ingest",
                "reason": "rejected_file:name_outside_contract",
                "record_key": path.name,
                "payload": f"moved to {target}; stream files are named batch-YYYYMMDDTHHMMSSZ-NNNN.<jsonl|csv>[.gz]",
                "source_file": str(path),
                "run_id": run_id,
                "quarantined_at": run_ts,
            }
        )
    schema = spec(OPS_QUARANTINE).arrow_schema()
    # The rows first: a move that fails leaves the file in place to be set aside again, never unrecorded.
    lake.write_arrow(pa.Table.from_pylist(rows, schema=schema), OPS_QUARANTINE, mode="append")
    for path, target in moves:
        path.replace(target)
    names = [path.name for path in misnamed]
    alert(
        "validation_breach",
        summary=f"{len(names)} stream file(s) named outside the producer contract moved to {rejected_dir}",
        details={"files": names},
        settings=lake.settings,
        dag_id="incremental_refresh",
        run_id=run_id,
    )
    return names
