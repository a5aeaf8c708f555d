"""Permanent failures are not retried, transient ones are, and a skip always says why."""

from __future__ import annotations

import os
import sys
from datetime import date

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from shopml.errors import SKIP_REASON_KEY, PermanentError, Skipped
from shopml.orchestration import SparkJobOperator, python_job
from shopml.stages import Stage


def fails_for_good(run_date: date, run_id: str) -> None:
    raise PermanentError(f"critical expectation failed on {run_date}")


def fails_for_now(run_date: date, run_id: str) -> None:
    raise ConnectionError("store down")


def has_nothing_to_do(run_date: date, run_id: str) -> None:
    raise Skipped("the shop has no inventory feed")


class _TaskInstance:
    """Its id and where it keeps its XComs: the pieces of a running task these callables touch."""

    def __init__(self) -> None:
        self.task_id = "t"
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def _call(target: str, ti: _TaskInstance | None = None) -> None:
    """Run the callable of a ``python_job`` task for ``target`` as the task runner would."""
    with DAG("orchestration_test", schedule=None):
        task = python_job("t", Stage(f"{__name__}:{target}")).operator
    task.python_callable(ds="2010-12-09", run_id="manual__test", ti=ti or _TaskInstance())


def test_a_permanent_error_fails_the_task_without_retries():
    with pytest.raises(AirflowFailException, match=r"PermanentError: critical expectation failed on 2010-12-09"):
        _call("fails_for_good")


def test_a_transient_error_is_left_to_retries():
    with pytest.raises(ConnectionError):
        _call("fails_for_now")


def test_a_skip_keeps_its_reason():
    ti = _TaskInstance()
    with pytest.raises(AirflowSkipException, match="no inventory feed"):
        _call("has_nothing_to_do", ti)
    assert ti.xcoms == {SKIP_REASON_KEY: "the shop has no inventory feed"}


@pytest.mark.parametrize(("exit_code", "raised"), [(3, AirflowFailException), (1, AirflowException)])
def test_spark_jobs_report_permanent_failures_by_exit_code(tmp_path, monkeypatch, exit_code, raised):
    """A real spark-submit of an app that exits with the code: 3 (permanent) fails at once, others retry."""
    app = tmp_path / "job.py"
    app.write_text(f"import sys\nsys.exit({exit_code})\n")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[1]"}')
    monkeypatch.setenv("PATH", f"{sys.prefix}/bin{os.pathsep}{os.environ['PATH']}")
    operator = SparkJobOperator(task_id="job", application=str(app))
    with pytest.raises(raised) as caught:
        operator.execute({})
    assert (caught.type is AirflowFailException) == (exit_code == 3)
