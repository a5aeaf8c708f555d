"""Ingest: copy one landing date's raw files into bronze Delta tables, line for line.

``spark-submit jobs/ingest.py --date 2026-01-31`` (or ``python jobs/ingest.py``).
Each landed line becomes one bronze row with its original text, so nothing is
lost before parsing. Rerunning a date replaces that date's bronze rows.
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
    """One row per landed line: ``source_file`` and ``payload`` (CSV rows re-encoded as JSON objects)."""
    frames = []
    if json_files:
        lines = spark.read.text(json_files).select(
            F.input_file_name().alias("source_file"), F.col("value").alias("payload")
        )
        frames.append(lines)
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
        # A row the CSV reader could not split keeps its raw text, which then fails JSON parsing with a reason.
        payload = F.coalesce(F.col("_corrupt_record"), F.to_json(F.struct(*columns)))
        frames.append(rows.select(F.input_file_name().alias("source_file"), payload.alias("payload")))
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def ingest_dataset(lake: Lake, dataset: str, run_date: date) -> int | None:
    """Land one dataset for one date into ``bronze.<dataset>``; returns lines landed (None: feed absent)."""
    folder = landing_dir(lake.settings.landing, dataset, run_date)
    if not folder.is_dir():
        if dataset in REQUIRED_DATASETS:
            raise LandingError(
                f"no {dataset} landed for {run_date}: expected folder {folder} "
                f"(landing root {lake.settings.landing}; set SHOPML_LANDING_ROOT or LANDING= to point elsewhere)"
            )
        log.info("no %s feed for %s (%s absent): skipped", dataset, run_date, folder)
        return None
    json_files, csv_files = landed_files(folder)
    if not json_files and not csv_files:
        log.warning("%s for %s: folder %s is empty; bronze for that date is emptied", dataset, run_date, folder)
        lines = lake.spark.createDataFrame([], "source_file string, payload string")
    else:
        lines = read_landed_lines(lake.spark, json_files, csv_files, dataset)
    bronze = lines.select(
        F.lit(run_date).alias("landing_date"), "source_file", "payload", F.current_timestamp().alias("ingested_at")
    )
    count = lake.write(bronze, f"bronze.{dataset}", replace_where=f"landing_date = '{run_date}'")
    log.info("ingested %d %s lines for %s", count, dataset, run_date)
    return count


def run(run_date: date, run_id: str = "manual", lake: Lake | None = None) -> dict[str, Any]:
    lake = lake or Lake()
    landed = {dataset: ingest_dataset(lake, dataset, run_date) for dataset in DATASETS}
    return {"date": run_date, "run_id": run_id, "landed_lines": landed}


if __name__ == "__main__":
    run_job(__doc__.splitlines()[0], run)
