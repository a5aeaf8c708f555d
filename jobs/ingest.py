"""Ingest: copy one landing date's raw files into bronze Delta tables, line for line.

``spark-submit jobs/ingest.py --date 2026-01-31 [--from 2026-01-01]`` (or ``python jobs/ingest.py``).
Each landed line becomes one bronze row with its original text, so nothing is
lost before parsing. Rerunning a date (or a backfill window) replaces those dates' bronze rows.
Events are required; the product and inventory feeds are optional (many shops
have only order lines).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.cli import run_job
from jobs.landing import LandingFolder, csv_header, scan_folder
from jobs.stages import INGEST
from jobs.transforms.raw import FIELDS_BY_DATASET
from jobs.transforms.volume import expected_volume
from shopml import accounting
from shopml.catalog import BRONZE, OPS_QUARANTINE
from shopml.dates import DateWindow
from shopml.errors import PermanentError
from shopml.lake import Lake

log = logging.getLogger(__name__)

DATASETS = ("events", "products", "inventory")
REQUIRED_DATASETS = ("events",)


class LandingError(PermanentError, RuntimeError):
    """The landing zone does not hold what the run needs, said plainly."""


def landing_dir(landing_root: Path, dataset: str, run_date: date) -> Path:
    return Path(landing_root) / dataset / f"date={run_date.isoformat()}"


def _unique_names(header: list[str]) -> list[str]:
    """Header names made usable as Spark columns: blanks and repeats numbered (``_c3``, ``sku_2``)."""
    seen: dict[str, int] = {}
    names = []
    for i, name in enumerate(header):
        name = (name or f"_c{i}").replace("`", "")
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def read_landed_lines(spark: SparkSession, json_files: list[str], csv_files: list[str]) -> DataFrame:
    """One row per landed line: ``landing_date`` (from the folder), ``source_file`` and ``payload``.

    CSV rows are re-encoded as JSON objects so every later step parses one format;
    a CSV row the reader could not split keeps its raw text and fails parsing with a reason.
    """
    frames = []
    if json_files:
        frames.append(
            spark.read.text(json_files).select(
                F.input_file_name().alias("source_file"), F.col("value").alias("payload")
            )
        )
    by_header: dict[tuple[str, ...], list[str]] = {}
    for path in csv_files:
        by_header.setdefault(tuple(_unique_names(csv_header(Path(path)))), []).append(path)
    for header, files in by_header.items():
        # The file's own header as the schema, applied by position: columns in any order are read by name,
        # and columns the contract does not know stay in the payload (bronze keeps them).
        schema = StructType([StructField(name, StringType()) for name in [*header, "_corrupt_record"]])
        rows = (
            spark.read.option("header", True)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", "_corrupt_record")
            .schema(schema)
            .csv(files)
        )
        as_json = F.to_json(F.struct(*(F.col(f"`{name}`") for name in header)))
        payload = F.coalesce(F.col("_corrupt_record"), as_json)
        frames.append(rows.select(F.input_file_name().alias("source_file"), payload.alias("payload")))
    if not frames:
        return spark.createDataFrame([], "landing_date date, source_file string, payload string")
    lines = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    landing_date = F.regexp_extract("source_file", r"date=(\d{4}-\d{2}-\d{2})", 1).cast("date")
    return lines.select(landing_date.alias("landing_date"), "source_file", "payload")


def _closed(lake: Lake, window: DateWindow, present: list[date]) -> bool:
    """True when the shop's history shows no trading on the window's weekday; otherwise a missing day is an error."""
    weeks = lake.settings.volume_reference_weeks
    looked_back = [window.last - timedelta(days=n) for n in range(1, 7 * (weeks + 1) + 1)]
    landed = {day: row["landed"] or 0 for day, row in accounting.read_counts(lake, "events", looked_back).items()}
    # Days of this window not landed yet: a folder means trading, no folder means none.
    landed |= {day: int(day in present) for day in window.dates()[:-1]}
    first_landing = min([*landed, *present, window.last])
    expected = expected_volume(landed, window.last, weeks, first_landing)
    if expected == 0:
        log.info(
            "no events landed for %s: the shop's history shows no trading on %ss", window.last, f"{window.last:%A}"
        )
        return True
    folder = landing_dir(lake.settings.landing, "events", window.last)
    raise LandingError(
        f"no events landed for {window.last}: expected folder {folder} (the shop's history expects "
        f"{'trading' if expected is None else f'about {expected:,.0f} events'} that day; landing root "
        f"{lake.settings.landing}; set SHOPML_LANDING_ROOT or LANDING= to point elsewhere)"
    )


def _rejections_recorded(lake: Lake, dataset: str, window: DateWindow) -> bool:
    if not lake.exists(OPS_QUARANTINE):
        return False
    in_window = (pc.field("landing_date") >= window.first) & (pc.field("landing_date") <= window.last)
    ingest_rows = (pc.field("dataset") == dataset) & (pc.field("stage") == "ingest")
    return lake.read_arrow(OPS_QUARANTINE, columns=["stage"], filter=in_window & ingest_rows).num_rows > 0


def record_rejected_files(lake: Lake, dataset: str, window: DateWindow, run_id: str, files: LandingFolder) -> None:
    """Replace the window's stage-``ingest`` quarantine rows with one row per rejected file."""
    rows = [
        (
            date.fromisoformat(rejected.path.parent.name.removeprefix("date=")),
            rejected.path.name,
            rejected.detail,
            str(rejected.path),
            f"rejected_file:{rejected.reason}",
        )
        for rejected in files.rejected
    ]
    if not rows and not _rejections_recorded(lake, dataset, window):
        return  # nothing to record and nothing to clear: spare the commit
    key = "event_id" if dataset == "events" else "sku"
    frame = lake.spark.createDataFrame(
        rows, f"landing_date date, {key} string, payload string, source_file string, quarantine_reason string"
    )
    accounting.write_quarantine(lake, frame, dataset, "ingest", window, run_id)


@dataclass(frozen=True)
class Ingested:
    """One dataset's landing: lines per landing date (an empty folder counts 0) and the files set aside."""

    landed: dict[date, int]
    rejected_files: list[str]
    skipped_entries: list[str]


def ingest_dataset(lake: Lake, dataset: str, window: DateWindow, run_id: str) -> Ingested | None:
    """Land one dataset for the window's dates into ``bronze.<dataset>`` (None: the shop has no such feed)."""
    folders = [landing_dir(lake.settings.landing, dataset, day) for day in window.dates()]
    present = [folder for folder in folders if folder.is_dir()]
    present_days = [date.fromisoformat(folder.name.removeprefix("date=")) for folder in present]
    closed_day = dataset in REQUIRED_DATASETS and not folders[-1].is_dir() and _closed(lake, window, present_days)
    if not present and not closed_day:
        log.info("no %s feed for %s: skipped", dataset, window)
        return None
    settings = lake.settings
    files = LandingFolder()
    for folder in present:
        found = scan_folder(
            folder,
            settings.landing,
            settings.landing_max_file_bytes,
            settings.landing_max_line_bytes,
            tuple(field.name for field in FIELDS_BY_DATASET[dataset] if field.required),
        )
        if not found.json_files and not found.csv_files:
            log.warning("%s: folder %s has no file to ingest; that date's bronze rows are emptied", dataset, folder)
        files.extend(found)
    record_rejected_files(lake, dataset, window, run_id, files)
    lines = read_landed_lines(lake.spark, files.json_files, files.csv_files)
    bronze = lines.withColumn("ingested_at", F.current_timestamp())
    table = BRONZE[dataset]
    lake.write(bronze, table, replace_where=window.predicate("landing_date"))
    landed = dict.fromkeys(present_days, 0)
    if closed_day:
        landed[window.last] = 0
    written = lake.read(table).where(window.predicate("landing_date")).groupBy("landing_date").count().collect()
    landed.update({row.landing_date: row["count"] for row in written})
    accounting.record_stage_counts(lake, dataset, run_id, {day: {"landed": n} for day, n in landed.items()}, reset=True)
    log.info(
        "ingested %d %s lines for %s (%d files rejected, %d entries skipped)",
        sum(landed.values()),
        dataset,
        window,
        len(files.rejected),
        len(files.skipped),
    )
    rejected = [f"{r.path} ({r.reason}: {r.detail})" for r in files.rejected]
    return Ingested(landed, rejected, files.skipped)


def run(
    run_date: date, run_id: str = "manual", from_date: date | None = None, lake: Lake | None = None
) -> dict[str, Any]:
    lake = lake or Lake()
    window = DateWindow.ending(run_date, from_date)
    ingested = {dataset: ingest_dataset(lake, dataset, window, run_id) for dataset in DATASETS}
    present = {dataset: found for dataset, found in ingested.items() if found is not None}
    return {
        "dates": str(window),
        "run_id": run_id,
        "landed_lines": {
            dataset: None if found is None else sum(found.landed.values()) for dataset, found in ingested.items()
        },
        "rejected_files": {dataset: found.rejected_files for dataset, found in present.items() if found.rejected_files},
        "skipped_entries": {
            dataset: found.skipped_entries for dataset, found in present.items() if found.skipped_entries
        },
    }


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run, INGEST)
