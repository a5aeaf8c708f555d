"""Ingest: copy one landing date's raw files into bronze Delta tables, line for line.

``spark-submit jobs/ingest.py --date 2026-01-31 [--from 2026-01-01]`` (or ``python jobs/ingest.py``).
Each landed line becomes one bronze row with its original text, so nothing is
lost before parsing. Rerunning a date (or a backfill window) replaces those dates' bronze rows.
Events are required; the product and inventory feeds are optional (many shops
have only order lines).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.cli import run_job
from jobs.transforms.raw import FIELDS_BY_DATASET
from jobs.transforms.volume import expected_volume
from shopml import accounting
from shopml.dates import DateWindow
from shopml.errors import PermanentError
from shopml.lake import Lake

log = logging.getLogger(__name__)

DATASETS = ("events", "products", "inventory")
REQUIRED_DATASETS = ("events",)
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")


class LandingError(PermanentError, RuntimeError):
    """The landing zone does not hold what the run needs, said plainly."""


def landing_dir(landing_root: Path, dataset: str, run_date: date) -> Path:
    return Path(landing_root) / dataset / f"date={run_date.isoformat()}"


def landed_files(folder: Path) -> tuple[list[str], list[str]]:
    """JSON-lines and CSV files in a landing folder; anything else is an error, not a silent skip."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    json_files = [str(p) for p in files if p.name.endswith(JSON_SUFFIXES)]
    csv_files = [str(p) for p in files if p.name.endswith(CSV_SUFFIXES)]
    unknown = [p.name for p in files if not p.name.endswith(JSON_SUFFIXES + CSV_SUFFIXES)]
    if unknown:
        raise LandingError(
            f"{folder}: unsupported file type(s) {unknown}; landing accepts JSON Lines "
            f"({', '.join(JSON_SUFFIXES)}) and CSV with a header ({', '.join(CSV_SUFFIXES)})"
        )
    return json_files, csv_files


def read_landed_lines(spark: SparkSession, json_files: list[str], csv_files: list[str], dataset: str) -> DataFrame:
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
    if csv_files:
        columns = [field.name for field in FIELDS_BY_DATASET[dataset]]
        schema = StructType([StructField(name, StringType()) for name in [*columns, "_corrupt_record"]])
        rows = (
            spark.read.option("header", True)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", "_corrupt_record")
            .option("enforceSchema", False)
            .schema(schema)
            .csv(csv_files)
        )
        payload = F.coalesce(F.col("_corrupt_record"), F.to_json(F.struct(*columns)))
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


def ingest_dataset(lake: Lake, dataset: str, window: DateWindow, run_id: str) -> dict[date, int] | None:
    """Land one dataset for the window's dates into ``bronze.<dataset>``.

    Returns lines landed per landing date (an empty folder counts as 0; None: no such feed).
    """
    folders = [landing_dir(lake.settings.landing, dataset, day) for day in window.dates()]
    present = [folder for folder in folders if folder.is_dir()]
    present_days = [date.fromisoformat(folder.name.removeprefix("date=")) for folder in present]
    closed_day = dataset in REQUIRED_DATASETS and not folders[-1].is_dir() and _closed(lake, window, present_days)
    if not present and not closed_day:
        log.info("no %s feed for %s: skipped", dataset, window)
        return None
    json_files: list[str] = []
    csv_files: list[str] = []
    for folder in present:
        found_json, found_csv = landed_files(folder)
        if not found_json and not found_csv:
            log.warning("%s: folder %s is empty; that date's bronze rows are emptied", dataset, folder)
        json_files += found_json
        csv_files += found_csv
    lines = read_landed_lines(lake.spark, json_files, csv_files, dataset)
    bronze = lines.withColumn("ingested_at", F.current_timestamp())
    table = f"bronze.{dataset}"
    lake.write(bronze, table, replace_where=window.predicate("landing_date"))
    landed = dict.fromkeys(present_days, 0)
    if closed_day:
        landed[window.last] = 0
    written = lake.read(table).where(window.predicate("landing_date")).groupBy("landing_date").count().collect()
    landed.update({row.landing_date: row["count"] for row in written})
    accounting.record_stage_counts(lake, dataset, run_id, {day: {"landed": n} for day, n in landed.items()}, reset=True)
    log.info("ingested %d %s lines for %s", sum(landed.values()), dataset, window)
    return landed


def run(
    run_date: date, run_id: str = "manual", from_date: date | None = None, lake: Lake | None = None
) -> dict[str, Any]:
    lake = lake or Lake()
    window = DateWindow.ending(run_date, from_date)
    landed = {dataset: ingest_dataset(lake, dataset, window, run_id) for dataset in DATASETS}
    totals = {dataset: None if counts is None else sum(counts.values()) for dataset, counts in landed.items()}
    return {"dates": str(window), "run_id": run_id, "landed_lines": totals}


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run)
