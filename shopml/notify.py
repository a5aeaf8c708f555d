"""Alerts: one structured message, posted to a JSON-lines file and optionally to a webhook.

Four events raise an alert: a task that failed for good (``on_task_failure``),
a validation breach and a gated (not promoted) model (tasks call ``alert``),
and a run that missed its deadline (``nightly_deadline``, Airflow 3's
replacement for SLAs). Every alert is appended to
``<var_root>/alerts/alerts.jsonl`` and logged; when a webhook URL is known
(the Airflow connection ``shopml_alerts``, else ``NotifyConfig.webhook_url``)
the same JSON is POSTed there.

The scheduler imports DAG files constantly and DAG files import this module, so
it imports only the standard library, pydantic and the settings at module level; Airflow is
imported inside the functions that need it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopml.config.notify import NotifyConfig
from shopml.settings import Settings, get_settings

if TYPE_CHECKING:
    from airflow.sdk import Connection, DeadlineAlert

log = logging.getLogger(__name__)

Event = Literal["task_failed", "validation_breach", "model_gated", "model_fallback", "deadline_missed"]
Severity = Literal["info", "warning", "error", "critical"]

DEFAULT_SEVERITY: dict[str, Severity] = {
    "task_failed": "error",
    "validation_breach": "warning",
    "model_gated": "warning",
    "model_fallback": "warning",
    "deadline_missed": "error",
}
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
# Set by Airflow in every task process and inherited by spark-submit, so Spark jobs can alert with their run's ids.
_CONTEXT_ENV = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
    "logical_date": "AIRFLOW_CTX_LOGICAL_DATE",
}
_DEFAULT_BASE_URL = "http://localhost:8080"


class NotifierError(RuntimeError):
    """An alert could not be delivered; the message says to which receiver and why (never its secrets)."""


def _jsonable(value: Any) -> Any:
    """numpy scalars become numbers, anything else JSON cannot hold (dates, paths) its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


class AlertMessage(BaseModel):
    """The one message schema every notifier sends (``model_dump(mode="json")`` is the wire format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Event
    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    task_id: str | None = None
    severity: Severity
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    link: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("details", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        """Task results carry dates, paths and numpy numbers; a receiver needs plain JSON."""
        return json.loads(json.dumps(value or {}, default=_jsonable))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"))


class Notifier(Protocol):
    def send(self, message: AlertMessage) -> None: ...


class FileNotifier:
    """Appends each alert as one JSON line and logs it: the record that survives a down webhook."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: AlertMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(message.to_json() + "\n")
        where = ".".join(part for part in (message.dag_id, message.task_id) if part)
        log.log(
            _LOG_LEVELS[message.severity],
            "ALERT %s [%s] %s run %s: %s",
            message.event,
            message.severity,
            where,
            message.run_id,
            message.summary,
        )


class WebhookNotifier:
    """POSTs the message as JSON. Logs and errors name only scheme, host and port: webhook paths hold tokens."""

    def __init__(self, url: str, timeout_s: float = 5.0, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})

    @property
    def receiver(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"

    def send(self, message: AlertMessage) -> None:
        request = urllib.request.Request(
            self.url,
            data=message.to_json().encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "shopml-alerts/1", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise NotifierError(
                f"webhook {self.receiver} rejected the {message.event} alert: HTTP {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifierError(
                f"webhook {self.receiver} unreachable (within {self.timeout_s:g}s) for the {message.event} alert: {reason}"
            ) from None
        log.info("posted %s alert to webhook %s (HTTP %s)", message.event, self.receiver, status)


# ---- configuration ------------------------------------------------------------------------------


def alerts_path(settings: Settings) -> Path:
    return settings.var_root / "alerts" / "alerts.jsonl"


def webhook_from_connection(connection: Connection, timeout_s: float = 5.0) -> WebhookNotifier:
    """A webhook from an Airflow connection: the ``url`` extra, else ``schema://host:port/endpoint``.

    Like Airflow's HTTP connections, ``schema`` holds the scheme; ``login``/``password``
    become basic auth and a ``headers`` extra is sent as is (neither is ever logged);
    a ``timeout_s`` extra overrides ``timeout_s``.
    """
    extra = connection.extra_dejson
    url = extra.get("url")
    if not url:
        if not connection.host:
            raise NotifierError(f"connection {connection.conn_id} has neither a `url` extra nor a host")
        host = connection.host.rstrip("/")
        url = host if "://" in host else f"{connection.schema or 'http'}://{host}"
        if connection.port:
            url += f":{connection.port}"
        if endpoint := extra.get("endpoint"):
            url += "/" + endpoint.lstrip("/")
    headers = {str(key): str(value) for key, value in (extra.get("headers") or {}).items()}
    if connection.login:
        token = base64.b64encode(f"{connection.login}:{connection.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return WebhookNotifier(url, timeout_s=float(extra.get("timeout_s", timeout_s)), headers=headers)


def resolve_webhook(config: NotifyConfig) -> WebhookNotifier | None:
    """The webhook from the Airflow connection if it exists, else from the settings, else none."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(config.webhook_conn_id)
    except AirflowNotFoundException:
        return _configured_webhook(config)
    return webhook_from_connection(connection, config.timeout_s)


async def aresolve_webhook(config: NotifyConfig) -> WebhookNotifier | None:
    """``resolve_webhook`` for the triggerer's event loop, where only the async connection lookup works."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = await Connection.async_get(config.webhook_conn_id)
    except AirflowNotFoundException:
        return _configured_webhook(config)
    return webhook_from_connection(connection, config.timeout_s)


def _configured_webhook(config: NotifyConfig) -> WebhookNotifier | None:
    url = config.webhook_url.get_secret_value()
    return WebhookNotifier(url, timeout_s=config.timeout_s) if url else None


def build_notifiers(settings: Settings, webhook: WebhookNotifier | None) -> list[Notifier]:
    """The file notifier always (first, so it is written even when the webhook is down), then the webhook."""
    notifiers: list[Notifier] = [FileNotifier(alerts_path(settings))]
    if webhook is not None:
        notifiers.append(webhook)
    return notifiers


# ---- sending ------------------------------------------------------------------------------------


def send_alert(message: AlertMessage, notifiers: Sequence[Notifier]) -> None:
    """Deliver to every notifier; raise one NotifierError naming each that failed, after trying them all."""
    failures = []
    for notifier in notifiers:
        try:
            notifier.send(message)
        except NotifierError as exc:
            failures.append(str(exc))
    if failures:
        raise NotifierError("; ".join(failures))


def _airflow_url(dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The run's (or task's) page in the Airflow UI, where its logs are."""
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback=_DEFAULT_BASE_URL) or _DEFAULT_BASE_URL
    url = f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"
    return f"{url}/tasks/{task_id}" if task_id else url


def _from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """dag_id, run_id, logical_date, task_id and log link of an Airflow task context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    fields = {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "logical_date": context.get("logical_date") or getattr(dag_run, "logical_date", None),
        "task_id": getattr(ti, "task_id", None),
        "link": getattr(ti, "log_url", None),
    }
    return {key: value for key, value in fields.items() if value is not None}


def make_message(
    event: Event,
    *,
    summary: str,
    severity: Severity | None = None,
    details: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    **fields: Any,
) -> AlertMessage:
    """A message whose ids come from ``fields``, else the Airflow context, else the AIRFLOW_CTX_* environment."""
    values = {key: os.environ[name] for key, name in _CONTEXT_ENV.items() if os.environ.get(name)}
    values |= _from_context(context or {})
    values |= {key: value for key, value in fields.items() if value is not None}
    values.setdefault("dag_id", "manual")
    values.setdefault("run_id", "manual")
    if "link" not in values and values["dag_id"] != "manual":
        values["link"] = _airflow_url(values["dag_id"], values["run_id"], values.get("task_id"))
    return AlertMessage(
        event=event,
        severity=severity or DEFAULT_SEVERITY[event],
        summary=summary,
        details=dict(details or {}),
        **values,
    )


def alert(
    event: Event,
    *,
    summary: str,
    severity: Severity | None = None,
    details: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    config: NotifyConfig | None = None,
    **fields: Any,
) -> AlertMessage:
    """Raise an alert from task code (validation breaches, gated models).

    ``fields`` may set dag_id, run_id, logical_date, task_id or link; what is not
    given comes from ``context`` or the Airflow task environment. A down
    receiver never fails the task: the file notifier has the message and the
    delivery error is logged.
    """
    settings = settings or get_settings()
    message = make_message(event, summary=summary, severity=severity, details=details, context=context, **fields)
    webhook = None
    try:
        webhook = resolve_webhook(config or settings.notify)
    except NotifierError as exc:
        log.error("alert webhook misconfigured, file only: %s", exc)
    try:
        send_alert(message, build_notifiers(settings, webhook))
    except NotifierError as exc:
        log.error("alert %s not delivered everywhere: %s", event, exc)
    return message


# ---- Airflow callbacks --------------------------------------------------------------------------


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: a task failed after its last retry. Delivery errors are raised for Airflow to log."""
    settings = get_settings()
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    details = {
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "error_type": type(error).__name__ if error is not None else None,
        "error": str(error)[:2000] if error is not None else None,
    }
    ids = _from_context(context)
    task = ".".join(filter(None, (ids.get("dag_id"), ids.get("task_id"))))
    reason = f": {type(error).__name__}: {str(error)[:300]}" if error is not None else ""
    message = make_message("task_failed", summary=f"{task} failed{reason}", details=details, context=context)
    send_alert(message, build_notifiers(settings, resolve_webhook(settings.notify)))


def deadline_message(context: Mapping[str, Any], deadline_hours: float | None = None) -> AlertMessage:
    """The ``deadline_missed`` message from the context Airflow hands a deadline callback."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = dag_run.get("dag_id") or "unknown"
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "unknown"
    due = deadline.get("deadline_time")
    return make_message(
        "deadline_missed",
        summary=f"{dag_id} run {run_id} has not finished by its deadline {due}",
        details={
            "deadline_time": due,
            "deadline_hours": deadline_hours,
            "state": dag_run.get("state"),
            "queued_at": dag_run.get("queued_at"),
            "start_date": dag_run.get("start_date"),
        },
        dag_id=dag_id,
        run_id=run_id,
        logical_date=dag_run.get("logical_date"),
        link=_airflow_url(dag_id, run_id),
    )


async def notify_deadline_missed(context: Mapping[str, Any] | None = None, deadline_hours: float | None = None) -> dict:
    """Deadline callback, run by the triggerer: post ``deadline_missed`` through the notifiers.

    A delivery error is raised, so the callback shows as failed in Airflow (the file is written first).
    """
    settings = get_settings()
    message = deadline_message(context or {}, deadline_hours)
    webhook = await aresolve_webhook(settings.notify)
    await asyncio.to_thread(send_alert, message, build_notifiers(settings, webhook))
    return message.model_dump(mode="json")


def nightly_deadline(config: NotifyConfig | None = None) -> DeadlineAlert | None:
    """What ``@dag(deadline=...)`` takes: alert when a run is unfinished ``deadline_hours`` after its reference.

    ``deadline_hours=0`` gives None (no deadline).
    """
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    config = config or get_settings().notify
    if not config.deadline_hours:
        return None
    reference = (
        DeadlineReference.DAGRUN_QUEUED_AT
        if config.deadline_reference == "queued_at"
        else DeadlineReference.DAGRUN_LOGICAL_DATE
    )
    return DeadlineAlert(
        reference=reference,
        interval=timedelta(hours=config.deadline_hours),
        callback=AsyncCallback(notify_deadline_missed, kwargs={"deadline_hours": config.deadline_hours}),
        name="nightly_deadline",
    )
