"""Ingest: copy one landing date's raw files into bronze Delta tables, line for line.

``spark-submit jobs/ingest.py --date 2026-01-31 [--from 2026-01-01]`` (or ``python jobs/ingest.py``).
Each landed line becomes one bronze row with its original text, so nothing is
lost before parsing. Rerunning a date (or a backfill window) replaces those dates' bronze rows.
Events are required; the product and inventory feeds are optional (many shops
have only order lines).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.cli import run_job
from jobs.transforms.raw import FIELDS_BY_DATASET
from shopml import accounting
from shopml.dates import DateWindow
from shopml.lake import Lake

log = logging.getLogger(__name__)

DATASETS = ("events", "products", "inventory")
REQUIRED_DATASETS = ("events",)
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")


class LandingError(RuntimeError):
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


def ingest_dataset(lake: Lake, dataset: str, window: DateWindow, run_id: str) -> dict[date, int] | None:
    """Land one dataset for the window's dates into ``bronze.<dataset>``.

    Returns lines landed per landing date (an empty folder counts as 0; None: no such feed).
    """
    folders = [landing_dir(lake.settings.landing, dataset, day) for day in window.dates()]
    present = [folder for folder in folders if folder.is_dir()]
    if dataset in REQUIRED_DATASETS and not folders[-1].is_dir():
        raise LandingError(
            f"no {dataset} landed for {window.last}: expected folder {folders[-1]} "
            f"(landing root {lake.settings.landing}; set SHOPML_LANDING_ROOT or LANDING= to point elsewhere)"
        )
    if not present:
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
    landed = dict.fromkeys((date.fromisoformat(folder.name.removeprefix("date=")) for folder in present), 0)
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
