"""Nightly pipeline: land the night's raw files, clean them and gate them with Great Expectations.

Runs once a day for the logical date (`ds`). Trigger with
`{"backfill_from": "YYYY-MM-DD"}` to process every landing date from then to
`ds` as one batch (first runs and backfills). Each task is one Spark job from
`jobs/`; the `spark_default` connection decides where Spark runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag

from shopml.orchestration import default_args, spark_job


@dag(
    dag_id="nightly_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(execution_timeout=timedelta(hours=1)),
    params={"backfill_from": Param(None, type=["null", "string"], format="date", description="first landing date")},
    tags=["nightly", "spark", "delta", "great-expectations"],
    doc_md=__doc__,
)
def nightly_retrain():
    ingest = spark_job("ingest", "ingest.py", reads=[], writes=["bronze.events", "bronze.products", "bronze.inventory"])
    clean = spark_job(
        "clean",
        "clean.py",
        reads=["bronze.events", "bronze.products", "bronze.inventory"],
        writes=["staging.events", "staging.products", "staging.inventory", "ops.quarantine"],
    )
    validate = spark_job(
        "validate",
        "validate.py",
        reads=["staging.events", "staging.products", "staging.inventory"],
        writes=[
            "silver.events",
            "silver.order_lines",
            "silver.products",
            "silver.inventory_snapshots",
            "ops.quarantine",
            "ops.validation_results",
        ],
    )
    ingest >> clean >> validate


nightly_retrain()
