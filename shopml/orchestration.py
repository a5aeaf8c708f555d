"""Building blocks for the DAG files, so they stay pure wiring.

Kept light on purpose: the scheduler imports DAG files constantly, so nothing
here imports Spark, pandas or models, and nothing touches the lake or the
metadata database. Settings are read from the environment only.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

from shopml.catalog import spec
from shopml.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = REPO_ROOT / "jobs"
SPARK_CONF_DIR = REPO_ROOT / "conf" / "spark"

# Backfills and first runs pass {"backfill_from": "YYYY-MM-DD"}; the nightly schedule processes its own date.
WINDOW_ARGS = ["--date", "{{ ds }}", "--from", "{{ params.backfill_from or ds }}", "--run-id", "{{ run_id }}"]


def default_args(**overrides: Any) -> dict[str, Any]:
    settings = get_settings()
    return {
        "owner": "data-platform",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        **overrides,
    }


def asset(table: str) -> Asset:
    """The Airflow Asset of a Delta table, so lineage shows in the UI and DAGs can be scheduled on it."""
    table_spec = spec(table)
    path = (Path(get_settings().lake) / table_spec.layer / table.split(".", 1)[1]).resolve()
    return Asset(name=table, uri=path.as_uri(), group=f"delta-{table_spec.layer}", extra={"format": "delta"})


def spark_job(task_id: str, script: str, reads: list[str], writes: list[str], **kwargs: Any) -> SparkSubmitOperator:
    """A ``spark-submit`` of ``jobs/<script>`` for the run's date window; the ``spark_default`` connection picks the master."""
    return SparkSubmitOperator(
        task_id=task_id,
        application=str(JOBS_DIR / script),
        name=f"shopml-{task_id}",
        application_args=WINDOW_ARGS,
        driver_memory=get_settings().spark_driver_memory,
        conf={"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable},
        env_vars={"SPARK_CONF_DIR": str(SPARK_CONF_DIR)},
        inlets=[asset(table) for table in reads],
        outlets=[asset(table) for table in writes],
        **kwargs,
    )
