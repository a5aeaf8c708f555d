"""Alerts against a real HTTP receiver on loopback: exact messages, the JSON-lines file, a receiver that is down."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

# Importing Airflow configures logging and replaces the root handlers; do it before pytest's log capture
# attaches its own, as a real task process has it configured before any callback runs.
import airflow.sdk.configuration  # noqa: F401
import numpy as np
import pytest

from shopml.notify import (
    AlertMessage,
    FileNotifier,
    NotifierError,
    NotifyConfig,
    WebhookNotifier,
    alert,
    alerts_path,
    build_notifiers,
    make_message,
    nightly_deadline,
    resolve_webhook,
    send_alert,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/hooks/T0KEN-s3cret"
CREATED = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)


@dataclass
class Receiver:
    """What a webhook receiver got, and how it answers (status code, delay)."""

    url: str
    requests: list[dict] = field(default_factory=list)
    status: int = 204
    delay_s: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server in a thread on a free loopback port."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(body),
                }
            )
            time.sleep(state.delay_s)
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def down_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{TOKEN_PATH}"


@pytest.fixture(autouse=True)
def _no_airflow_context(monkeypatch):
    """Tests start outside any Airflow task and without the alerts connection."""
    for name in ("DAG_ID", "DAG_RUN_ID", "TASK_ID", "LOGICAL_DATE", "TRY_NUMBER"):
        monkeypatch.delenv(f"AIRFLOW_CTX_{name}", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SHOPML_ALERTS", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.test:8080/")


@pytest.fixture
def global_settings(settings, monkeypatch):
    """Point the process-wide settings (what Airflow callbacks read) at the test's var root."""
    from shopml.settings import get_settings

    monkeypatch.setenv("SHOPML_VAR_ROOT", str(settings.var_root))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _connection(monkeypatch, **fields) -> None:
    """The ``shopml_alerts`` Airflow connection, through Airflow's environment-variable secrets backend."""
    monkeypatch.setenv("AIRFLOW_CONN_SHOPML_ALERTS", json.dumps({"conn_type": "http", **fields}))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def gated_message() -> AlertMessage:
    return AlertMessage(
        event="model_gated",
        dag_id="nightly_retrain",
        run_id="scheduled__2026-03-10T00:00:00+00:00",
        logical_date=datetime(2026, 3, 10, tzinfo=UTC),
        task_id="forecaster.backtest_and_gate",
        severity="warning",
        summary="kept current v1: candidate does not beat the best baseline",
        details={"promoted": False, "wape": 0.61, "run_date": date(2026, 3, 10)},
        link="http://airflow.test:8080/dags/nightly_retrain/runs/x/tasks/forecaster.backtest_and_gate",
        created_at=CREATED,
    )


GATED_JSON = {
    "event": "model_gated",
    "dag_id": "nightly_retrain",
    "run_id": "scheduled__2026-03-10T00:00:00+00:00",
    "logical_date": "2026-03-10T00:00:00Z",
    "task_id": "forecaster.backtest_and_gate",
    "severity": "warning",
    "summary": "kept current v1: candidate does not beat the best baseline",
    "details": {"promoted": False, "wape": 0.61, "run_date": "2026-03-10"},
    "link": "http://airflow.test:8080/dags/nightly_retrain/runs/x/tasks/forecaster.backtest_and_gate",
    "created_at": "2026-03-10T06:30:00Z",
}


def test_webhook_receives_the_exact_structured_message(receiver):
    WebhookNotifier(receiver.url).send(gated_message())
    assert receiver.requests == [
        {"path": TOKEN_PATH, "content_type": "application/json", "authorization": None, "body": GATED_JSON}
    ]


def test_file_notifier_appends_one_json_line_per_alert(tmp_path, caplog):
    path = tmp_path / "alerts" / "alerts.jsonl"
    breach = make_message("validation_breach", summary="3 rows failed", dag_id="d", run_id="r", task_id="validate")
    with caplog.at_level("INFO", logger="shopml.notify"):
        FileNotifier(path).send(gated_message())
        FileNotifier(path).send(breach)
    assert _lines(path) == [GATED_JSON, breach.model_dump(mode="json")]
    assert "ALERT validation_breach [warning] d.validate run r: 3 rows failed" in caplog.text


def test_alert_posts_to_the_airflow_connection_and_the_file(receiver, settings, monkeypatch):
    port = int(receiver.url.split(":")[2].split("/")[0])
    _connection(monkeypatch, host="127.0.0.1", port=port, schema="http", extra={"endpoint": TOKEN_PATH})
    message = alert(
        "model_gated",
        summary="not promoted",
        details={"reason": "gate"},
        settings=settings,
        dag_id="nightly_retrain",
        run_id="manual__1",
        task_id="recommender.evaluate_and_gate",
    )
    assert (
        message.link
        == "http://airflow.test:8080/dags/nightly_retrain/runs/manual__1/tasks/recommender.evaluate_and_gate"
    )
    assert message.severity == "warning"
    assert [request["body"] for request in receiver.requests] == [message.model_dump(mode="json")]
    assert receiver.requests[0]["path"] == TOKEN_PATH
    assert _lines(alerts_path(settings)) == [message.model_dump(mode="json")]


def test_connection_url_extra_and_basic_auth_are_used_but_never_logged(receiver, settings, monkeypatch, caplog):
    _connection(monkeypatch, host="ignored.invalid", login="alerts", password="pa55word", extra={"url": receiver.url})
    with caplog.at_level("DEBUG"):
        alert("validation_breach", summary="x", settings=settings)
    assert receiver.requests[0]["authorization"] == "Basic " + base64.b64encode(b"alerts:pa55word").decode()
    assert "posted validation_breach alert to webhook http://127.0.0.1:" in caplog.text
    assert "pa55word" not in caplog.text and "T0KEN" not in caplog.text


def test_webhook_comes_from_the_setting_when_there_is_no_connection(receiver):
    assert resolve_webhook(NotifyConfig()) is None  # default: file only
    webhook = resolve_webhook(NotifyConfig(webhook_url=receiver.url, timeout_s=2))
    assert (webhook.url, webhook.timeout_s) == (receiver.url, 2)
    assert "T0KEN" not in repr(NotifyConfig(webhook_url=receiver.url))


def test_receiver_down_is_a_clear_error_and_the_file_is_still_written(settings, down_url):
    with pytest.raises(NotifierError) as error:
        send_alert(gated_message(), build_notifiers(settings, WebhookNotifier(down_url, timeout_s=2)))
    port = down_url.split(":")[2].split("/")[0]
    assert str(error.value).startswith(
        f"webhook http://127.0.0.1:{port} unreachable (within 2s) for the model_gated alert"
    )
    assert "refused" in str(error.value).lower()
    assert "T0KEN" not in str(error.value)
    assert _lines(alerts_path(settings)) == [GATED_JSON]


def test_alert_from_a_task_survives_a_down_receiver(settings, down_url, caplog):
    message = alert("validation_breach", summary="x", settings=settings, config=NotifyConfig(webhook_url=down_url))
    assert _lines(alerts_path(settings)) == [message.model_dump(mode="json")]
    assert "alert validation_breach not delivered everywhere: webhook http://127.0.0.1:" in caplog.text


def test_receiver_errors_and_timeouts_are_reported(receiver):
    receiver.status = 500
    with pytest.raises(NotifierError, match=r"rejected the model_gated alert: HTTP 500"):
        WebhookNotifier(receiver.url).send(gated_message())
    receiver.status, receiver.delay_s = 204, 1.5
    started = time.monotonic()
    with pytest.raises(NotifierError, match=r"unreachable \(within 0.3s\).*timed out"):
        WebhookNotifier(receiver.url, timeout_s=0.3).send(gated_message())
    assert time.monotonic() - started < 1.2


def test_ids_come_from_the_airflow_task_environment(monkeypatch):
    """Spark jobs run under spark-submit inherit AIRFLOW_CTX_* from their task, so their alerts carry the run."""
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "nightly_retrain")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "scheduled__2026-03-10T00:00:00+00:00")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "validate")
    monkeypatch.setenv("AIRFLOW_CTX_LOGICAL_DATE", "2026-03-10T00:00:00+00:00")
    details = {"path": Path("/a"), "day": date(2026, 3, 9), "rows": np.int64(3), "share": np.float32(0.5)}
    message = make_message("validation_breach", summary="x", details=details)
    assert message.model_dump(mode="json", exclude={"created_at"}) == {
        "event": "validation_breach",
        "dag_id": "nightly_retrain",
        "run_id": "scheduled__2026-03-10T00:00:00+00:00",
        "logical_date": "2026-03-10T00:00:00Z",
        "task_id": "validate",
        "severity": "warning",
        "summary": "x",
        "details": {"path": "/a", "day": "2026-03-09", "rows": 3, "share": 0.5},
        "link": "http://airflow.test:8080/dags/nightly_retrain/runs/scheduled__2026-03-10T00%3A00%3A00%2B00%3A00/tasks/validate",
    }
    assert make_message("task_failed", summary="x", run_id="other").run_id == "other"  # explicit fields win


TEST_DAG = """
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from shopml.notify import alert, nightly_deadline, on_task_failure


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    default_args={"on_failure_callback": on_task_failure, "retries": 0},
    deadline=nightly_deadline(),
)
def alerting():
    @task
    def gate(**context):
        alert("model_gated", context=context, summary="kept v1", details={"promoted": False})

    @task
    def publish():
        raise ConnectionError("serving store down")

    gate() >> publish()


alerting_dag = alerting()  # at module level, so Airflow finds and serializes it

if __name__ == "__main__":
    alerting_dag.test()
"""


@pytest.mark.slow
def test_a_real_airflow_run_posts_gated_and_failed_alerts(receiver, tmp_path):
    """``dag.test()`` on a throwaway metadata DB: a task's alert and the failure callback, with Airflow's own context."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "alerting.py").write_text(TEST_DAG)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "SHOPML_"))},
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
        "AIRFLOW_CONN_SHOPML_ALERTS": json.dumps({"conn_type": "http", "extra": {"url": receiver.url}}),
        "SHOPML_VAR_ROOT": str(tmp_path / "var"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "dags" / "alerting.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    gated, failed = (request["body"] for request in receiver.requests)
    run_id = gated["run_id"]
    assert run_id.startswith("manual__") and failed["run_id"] == run_id
    task_url = f"http://airflow.test:8080/dags/alerting/runs/{quote(run_id)}/tasks"
    assert gated | {"created_at": None, "logical_date": None} == {
        "event": "model_gated",
        "dag_id": "alerting",
        "run_id": run_id,
        "logical_date": None,
        "task_id": "gate",
        "severity": "warning",
        "summary": "kept v1",
        "details": {"promoted": False},
        "link": f"{task_url}/gate?try_number=1",
        "created_at": None,
    }
    assert failed | {"created_at": None, "logical_date": None} == {
        "event": "task_failed",
        "dag_id": "alerting",
        "run_id": run_id,
        "logical_date": None,
        "task_id": "publish",
        "severity": "error",
        "summary": "alerting.publish failed: ConnectionError: serving store down",
        "details": {"try_number": 1, "max_tries": 0, "error_type": "ConnectionError", "error": "serving store down"},
        "link": f"{task_url}/publish?try_number=1",
        "created_at": None,
    }
    assert _lines(tmp_path / "var" / "alerts" / "alerts.jsonl") == [gated, failed]


def test_nightly_deadline_is_a_deadline_alert_with_our_callback():
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    deadline = nightly_deadline(NotifyConfig(deadline_hours=6))
    assert isinstance(deadline, DeadlineAlert) and isinstance(deadline.callback, AsyncCallback)
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval == timedelta(hours=6)
    assert (deadline.callback.path, deadline.callback.kwargs) == (
        "shopml.notify.notify_deadline_missed",
        {"deadline_hours": 6},
    )
    by_logical_date = nightly_deadline(NotifyConfig(deadline_reference="logical_date", deadline_hours=1.5))
    assert by_logical_date.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert by_logical_date.interval == timedelta(minutes=90)


def _run_deadline_callback(deadline) -> list[dict]:
    """Run the callback the way Airflow's triggerer does, with the context a missed deadline carries."""
    from airflow.triggers.callback import CallbackTrigger

    context = {
        "dag_run": {
            "dag_id": "nightly_retrain",
            "dag_run_id": "scheduled__2026-03-10T00:00:00+00:00",
            "logical_date": "2026-03-10T00:00:00Z",
            "queued_at": "2026-03-10T00:00:04Z",
            "start_date": "2026-03-10T00:00:05Z",
            "state": "running",
        },
        "deadline": {"id": "d-1", "deadline_time": "2026-03-10T06:00:04Z"},
    }
    trigger = CallbackTrigger(deadline.callback.path, {**deadline.callback.kwargs, "context": context})

    async def run() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(run())


def test_missed_deadline_posts_deadline_missed(receiver, global_settings, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SHOPML_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": receiver.url}}))
    events = _run_deadline_callback(nightly_deadline(NotifyConfig(deadline_hours=6)))
    assert [str(event["state"]) for event in events] == ["running", "success"]
    body = receiver.requests[0]["body"]
    assert body | {"created_at": None} == {
        "event": "deadline_missed",
        "dag_id": "nightly_retrain",
        "run_id": "scheduled__2026-03-10T00:00:00+00:00",
        "logical_date": "2026-03-10T00:00:00Z",
        "task_id": None,
        "severity": "error",
        "summary": "nightly_retrain run scheduled__2026-03-10T00:00:00+00:00 has not finished by its deadline 2026-03-10T06:00:04Z",
        "details": {
            "deadline_time": "2026-03-10T06:00:04Z",
            "deadline_hours": 6.0,
            "state": "running",
            "queued_at": "2026-03-10T00:00:04Z",
            "start_date": "2026-03-10T00:00:05Z",
        },
        "link": "http://airflow.test:8080/dags/nightly_retrain/runs/scheduled__2026-03-10T00%3A00%3A00%2B00%3A00",
        "created_at": None,
    }
    assert _lines(alerts_path(global_settings)) == [body]


def test_missed_deadline_with_receiver_down_fails_the_callback_but_writes_the_file(
    global_settings, down_url, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_SHOPML_ALERTS", json.dumps({"conn_type": "http", "extra": {"url": down_url}}))
    events = _run_deadline_callback(nightly_deadline())
    assert str(events[-1]["state"]) == "failed"
    assert "unreachable" in events[-1]["body"]
    assert [line["event"] for line in _lines(alerts_path(global_settings))] == ["deadline_missed"]


def test_importing_the_module_stays_light():
    """DAG files import the callbacks and the scheduler parses DAG files constantly."""
    code = (
        "import sys, shopml.notify; "
        "print(sorted(m for m in ('airflow', 'pandas', 'numpy', 'pyspark', 'torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
