"""Building blocks for the DAG files, so they stay pure wiring.

Kept light on purpose: the scheduler imports DAG files constantly, so nothing
here imports Spark, pandas or models, and nothing touches the lake or the
metadata database. Settings are read from the environment only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from datetime import date, timedelta
from pathlib import Path, PurePath
from typing import Any

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from shopml.catalog import spec
from shopml.errors import PERMANENT_EXIT_CODE, SKIP_REASON_KEY, PermanentError, Skipped
from shopml.notify import on_task_failure
from shopml.settings import TASK_ENV, get_settings
from shopml.spark import driver_java_options
from shopml.stages import Stage

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = REPO_ROOT / "jobs"
SPARK_CONF_DIR = REPO_ROOT / "conf" / "spark"

# Earliest logical date a DAG accepts: a shop's landed history can be years old, and `dags test`
# of a date before start_date creates a run with no task instances that reports success.
HISTORY_START = pendulum.datetime(2000, 1, 1, tz="UTC")

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
        "on_failure_callback": on_task_failure,
        **overrides,
    }


def asset(table: str) -> Asset:
    """The Airflow Asset of a Delta table, so lineage shows in the UI and DAGs can be scheduled on it."""
    table_spec = spec(table)
    path = (Path(get_settings().lake) / table_spec.layer / table.split(".", 1)[1]).resolve()
    return Asset(name=table, uri=path.as_uri(), group=f"delta-{table_spec.layer}", extra={"format": "delta"})


class SparkJobOperator(SparkSubmitOperator):
    """``spark-submit`` that fails at once, without retries, when the job reports a permanent failure."""

    def execute(self, context: Any) -> None:
        try:
            super().execute(context)
        except AirflowException as exc:
            if re.search(rf"Error code is: {PERMANENT_EXIT_CODE}\b", str(exc)):
                raise AirflowFailException(
                    f"{self.task_id}: permanent failure (bad data, a failed gate or a broken contract; "
                    "the reason is in the job's log above): not retried"
                ) from exc
            raise


def lineage(stage: Stage) -> dict[str, list[Asset]]:
    """A task's Airflow inlets and outlets: the tables its stage reads and writes."""
    return {"inlets": [asset(table) for table in stage.reads], "outlets": [asset(table) for table in stage.writes]}


def spark_job(task_id: str, stage: Stage, **kwargs: Any) -> SparkSubmitOperator:
    """A ``spark-submit`` of the stage's ``jobs/`` script for the run's date window; ``spark_default`` picks the master."""
    return SparkJobOperator(
        task_id=task_id,
        application=str(JOBS_DIR / stage.runs),
        name=f"shopml-{task_id}",
        application_args=WINDOW_ARGS,
        driver_memory=get_settings().spark_driver_memory,
        conf={
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
            "spark.driver.extraJavaOptions": driver_java_options(get_settings()),
        },
        env_vars={"SPARK_CONF_DIR": str(SPARK_CONF_DIR), TASK_ENV: task_id},
        **lineage(stage),
        **kwargs,
    )


def python_job(task_id: str, stage: Stage, **kwargs: Any):
    """A task that calls the stage's function for the run's logical date (imported when it runs, not at parse).

    A result saying ``promoted: False`` (a model gate kept the current model) is
    reported through the notifiers, so a gated model is never silent. ``Skipped``
    skips the task with its reason (kept as the ``skip_reason`` XCom for ``make run``'s
    summary); a ``PermanentError`` fails it without retries.
    """
    fixed = kwargs.pop("call_kwargs", {})

    @task(task_id=task_id, **lineage(stage), **kwargs)
    def run_job(**context: Any) -> Any:
        os.environ[TASK_ENV] = context["ti"].task_id
        try:
            result = stage.call(run_date=date.fromisoformat(context["ds"]), run_id=context["run_id"], **fixed)
        except Skipped as exc:
            context["ti"].xcom_push(key=SKIP_REASON_KEY, value=str(exc))
            raise AirflowSkipException(str(exc)) from exc
        except PermanentError as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {exc} (permanent: not retried)") from exc
        if dataclasses.is_dataclass(result):
            result = dataclasses.asdict(result)
        elif isinstance(result, PurePath):
            result = str(result)
        log.info("%s → %s", stage.runs, result)
        if isinstance(result, dict) and result.get("promoted") is False:
            from shopml.notify import alert

            alert(
                "model_gated", context=context, summary=result.get("reason", "candidate not promoted"), details=result
            )
        return result

    return run_job()
