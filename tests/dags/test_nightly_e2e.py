"""The whole nightly DAG through real Airflow on a small generated shop, then a failure and its rerun."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from shopml import airflow_env
from shopml.generate import GeneratorConfig, generate
from shopml.lake import Lake
from shopml.settings import load_settings

SHOP = GeneratorConfig(users=300, skus=80, categories=6, days=63, events_per_day=1200, seed=5)
DATASETS = ("recommendations", "similar", "forecasts", "inventory")
SPARK_AND_MODELS = r"^(ingest|clean|validate|build_features|forecaster\..*|recommender\..*)$"


class _Receiver(BaseHTTPRequestHandler):
    messages: ClassVar[list[dict]] = []

    def do_POST(self):
        self.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.messages = []
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Receiver.messages
    server.shutdown()


def _served(settings) -> dict[str, tuple[str, int]]:
    from shopml.serving.store import open_store

    store = open_store(settings.serving)
    try:
        return {
            name: (version, store.count_entries(name, version))
            for name in DATASETS
            if (version := store.current_version(name)) is not None
        }
    finally:
        store.close()


@pytest.mark.slow
def test_nightly_run_then_failed_publish_then_rerun(tmp_path, monkeypatch, webhook):
    url, messages = webhook
    generate(SHOP, tmp_path / "landing")
    monkeypatch.setenv("SHOPML_TASK_RETRIES", "0")
    monkeypatch.setenv("SHOPML_NOTIFY", json.dumps({"webhook_url": url}))
    settings = load_settings(var_root=tmp_path / "var", landing_root=tmp_path / "landing")
    last = SHOP.end_date

    airflow_env.test_dag("nightly_retrain", last, {"backfill_from": SHOP.start_date.isoformat()}, settings=settings)

    lake = Lake(settings)
    served = _served(settings)
    assert set(served) == set(DATASETS)
    assert all(count > 0 for _, count in served.values())
    events = lake.read_pandas("silver.events", columns=["event_id"])
    assert events["event_id"].is_unique
    recommendations = lake.read_pandas("gold.recommendations")
    assert not recommendations.duplicated(["scored_date", "user_id", "rank"]).any()
    assert (settings.reports / last.isoformat() / "index.html").exists()
    audit = lake.read_pandas("ops.publish_audit")
    assert set(audit["dataset"]) == set(DATASETS)

    # The store goes away at publish time: the publish tasks fail, alert, and the last versions keep serving.
    broken = load_settings(
        var_root=tmp_path / "var", landing_root=tmp_path / "landing", serving_url="sqlite:////proc/no-such-dir/x.db"
    )
    with pytest.raises(RuntimeError, match="failed"):
        airflow_env.test_dag(
            "nightly_retrain", last, {"backfill_from": last.isoformat()}, settings=broken, skip_tasks=SPARK_AND_MODELS
        )
    assert _served(settings) == served
    failed = {m["task_id"] for m in messages if m["event"] == "task_failed"}
    assert failed >= {f"publish.publish_{name}" for name in DATASETS}

    # Clear-and-rerun of what failed completes, with the same keys served.
    airflow_env.test_dag(
        "nightly_retrain", last, {"backfill_from": last.isoformat()}, settings=settings, skip_tasks=SPARK_AND_MODELS
    )
    rerun = _served(settings)
    assert {name: count for name, (_, count) in rerun.items()} == {name: count for name, (_, count) in served.items()}
    assert len(lake.read_pandas("gold.recommendations").drop_duplicates(["scored_date", "user_id", "rank"])) == len(
        recommendations
    )
