"""The whole nightly DAG through real Airflow on a small generated shop: a first night, its models
and publishing rerun, then a failure at publish and the rerun of what failed.

A backfill window over nights already done is tests/integration/test_backfill.py's (the same Spark
jobs, without Airflow): here the rerun starts after build_features and costs a third of a night."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sample_shop.generate import GeneratorConfig, generate
from shopml import airflow_env
from shopml.lake import Lake
from shopml.settings import load_settings
from tests.lineage import undeclared

SHOP = GeneratorConfig(users=300, skus=80, categories=6, days=63, events_per_day=1200, seed=5)
FORECAST_DATASETS = {"forecasts", "inventory"}
RECOMMENDATION_DATASETS = {"recommendations", "buy_again", "discover", "similar"}
DATASETS = RECOMMENDATION_DATASETS | FORECAST_DATASETS | {"customers"}
NIGHT_TABLES = {
    "silver.events": "event_date",
    "silver.order_lines": "event_date",
    "gold.user_features": "feature_date",
    "gold.item_features": "feature_date",
    "gold.user_item_interactions": "feature_date",
    "gold.item_cooccurrence": "feature_date",
    "gold.sku_daily_demand": "feature_date",
    "gold.demand_forecasts": "scored_date",
    "gold.inventory_plan": "scored_date",
    "gold.customer_scores": "scored_date",
}
RUN_METADATA = ["ingested_at", "run_id", "model_version", "generated_at"]
# Rerun the night's models, scoring and publishing, as clearing them in the UI would.
DATA_DONE = r"^(ingest|clean|validate|build_features)$"
# Rerun only the publish and report tasks of the night.
ALREADY_DONE = (
    r"^(ingest|clean|validate|build_features|forecaster\..*|recommender\..*|customer\..*"
    r"|publish\.publish_(recommendations|buy_again|discover|similar))$"
)


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
    from serving.store import open_store

    store = open_store(settings.serving)
    try:
        return {
            name: (version, store.count_entries(name, version))
            for name in sorted(DATASETS)
            if (version := store.current_version(name)) is not None
        }
    finally:
        store.close()


def _night_outputs(lake: Lake, night: date) -> dict[str, tuple[int, int]]:
    """(rows, order-free content hash) of each table's partition for ``night``, run metadata left out."""
    outputs = {}
    for table, column in NIGHT_TABLES.items():
        frame = lake.read_pandas(table, filter=pc.field(column) == pa.scalar(night, pa.date32()))
        frame = frame.drop(columns=[c for c in RUN_METADATA if c in frame.columns])
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        outputs[table] = (len(frame), int(pd.util.hash_pandas_object(frame, index=False).sum()))
    return outputs


def _row_accounting(lake: Lake) -> pd.DataFrame:
    counts = lake.read_pandas("ops.row_accounting").drop(columns=["run_id", "updated_at"])
    return counts.sort_values(["dataset", "landing_date"], ignore_index=True)


@pytest.mark.slow
def test_a_night_then_its_models_rerun_then_a_failed_publish_and_its_rerun(tmp_path, monkeypatch, webhook):
    """A whole night through real Airflow, its models rerun, the store down at publish, a rerun.

    The recommender candidate is made to lose (it must beat its baselines tenfold) and no model
    was promoted before: it is gated, and the storefront still gets lists, from the baseline that
    beat it, labelled and alerted as such; the run succeeds.
    """
    url, messages = webhook
    generate(SHOP, tmp_path / "landing")
    monkeypatch.setenv("SHOPML_TASK_RETRIES", "0")
    monkeypatch.setenv("SHOPML_NOTIFY", json.dumps({"webhook_url": url}))
    monkeypatch.setenv("SHOPML_RECOMMEND__GATE__MIN_LIFT_OVER_BASELINE", "10")
    monkeypatch.setenv("SHOPML_LINEAGE_LOG", str(tmp_path / "lineage.jsonl"))
    settings = load_settings(var_root=tmp_path / "var", landing_root=tmp_path / "landing")
    last = SHOP.end_date

    night = airflow_env.test_dag(
        "nightly_retrain", last, {"backfill_from": SHOP.start_date.isoformat()}, settings=settings
    )

    assert undeclared("nightly_retrain", tmp_path / "lineage.jsonl") == {}, "tasks touched tables they do not declare"
    gated = [m for m in messages if m["event"] == "model_gated"]
    assert "recommender.evaluate_and_gate" in [m["task_id"] for m in gated]
    evaluation = night.tasks["recommender.evaluate_and_gate"].result
    assert "does not beat the best baseline" in evaluation["reason"] and evaluation["serve"] != "model"
    scored = night.tasks["recommender.score_recommendations"].result
    assert scored["model_version"] == f"baseline:{evaluation['serve']}" and "beat the candidate" in scored["why"]
    fallback = [m for m in messages if m["event"] == "model_fallback" and "recommendations" in m["summary"]]
    assert len(fallback) == 1 and evaluation["serve"] in fallback[0]["summary"]
    # Nine weeks of history are too few for 30-day labels: the customer scores come from BG/NBD, and say why.
    trained = night.tasks["customer.train_customer_models"]
    assert trained.state == "skipped" and "needs 89 days of order history" in trained.skip_reason
    assert night.tasks["customer.evaluate_and_gate"].state == "skipped"
    assert night.tasks["customer.score_customers"].result["model_version"] == "baseline:bgnbd"
    lake = Lake(settings)
    assert lake.read_pandas("silver.events", columns=["event_id"])["event_id"].is_unique
    served = _served(settings)
    assert set(served) == DATASETS
    assert all(count > 0 for _, count in served.values())
    lists = lake.read_pandas("gold.recommendations", filter=pc.field("scored_date") == pa.scalar(last, pa.date32()))
    assert (lists["model_version"] == scored["model_version"]).all()
    assert not lists.loc[lists["user_id"] != "__default__", "is_fallback"].all()
    forecasts = lake.read_pandas("gold.demand_forecasts")
    assert not forecasts.duplicated(["scored_date", "sku", "forecast_date"]).any()
    assert set(lake.read_pandas("ops.publish_audit")["dataset"]) == DATASETS

    # Training, scoring and publishing rerun over the same data: the same tables, nothing twice, and the
    # serving store re-points to the versions it holds instead of publishing duplicates.
    outputs = _night_outputs(lake, last)
    accounting = _row_accounting(lake)
    airflow_env.test_dag("nightly_retrain", last, settings=settings, skip_tasks=DATA_DONE)
    assert _night_outputs(lake, last) == outputs
    assert lake.read_pandas("silver.events", columns=["event_id"])["event_id"].is_unique
    assert _row_accounting(lake).equals(accounting)
    assert _served(settings) == served
    audit = lake.read_pandas("ops.publish_audit")
    assert audit.groupby("dataset")["version"].agg(["size", "nunique"]).to_dict("index") == {
        name: {"size": 2, "nunique": 1} for name in DATASETS
    }

    # The store goes away at publish time: the publish tasks fail and alert; the last versions keep serving.
    broken = load_settings(
        var_root=tmp_path / "var", landing_root=tmp_path / "landing", serving_url="sqlite:////proc/no-such-dir/x.db"
    )
    messages.clear()
    with pytest.raises(RuntimeError, match="failed"):
        airflow_env.test_dag("nightly_retrain", last, settings=broken, skip_tasks=ALREADY_DONE)
    assert _served(settings) == served
    failed = {m["task_id"] for m in messages if m["event"] == "task_failed"}
    assert failed >= {f"publish.publish_{name}" for name in FORECAST_DATASETS}

    # Rerunning what failed completes: the same keys are served and the report is written.
    airflow_env.test_dag("nightly_retrain", last, settings=settings, skip_tasks=ALREADY_DONE)
    rerun = _served(settings)
    assert {name: count for name, (_, count) in rerun.items()} == {name: count for name, (_, count) in served.items()}
    assert (settings.reports / last.isoformat() / "index.html").exists()
