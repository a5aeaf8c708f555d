"""The customer-score task functions on a temporary lake: train -> evaluate and gate -> score -> serve.

The shop is ``models.customer.synthetic``'s: 300 days of 1,500 customers with planted segments
(loyal, regular, churners who leave, one-time buyers), written as silver.order_lines.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from models.customer.pipeline import (
    FALLBACK_VERSION,
    METRICS_TABLE,
    MODEL_NAME,
    ORDER_LINES,
    SCORES_TABLE,
    evaluate_and_gate,
    score_customers,
    train_customer_models,
)
from models.customer.synthetic import generate_customers
from models.registry import ModelRegistry
from shopml.errors import Skipped
from shopml.lake import Lake
from shopml.settings import load_settings

pytestmark = pytest.mark.slow

START, DAYS = date(2025, 1, 1), 300
RUN_DATE = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = load_settings(var_root=tmp_path_factory.mktemp("customers"))
    lines, truth = generate_customers(n_customers=1500, n_days=DAYS, start=START, seed=0)
    Lake(settings).write_arrow(lines, ORDER_LINES)
    trained = train_customer_models(RUN_DATE, "night", settings=settings)
    gate = evaluate_and_gate(RUN_DATE, "night", settings=settings)
    scored = score_customers(RUN_DATE, "night", settings=settings)
    return settings, lines, truth, trained, gate, scored


def test_every_head_trains_on_labels_that_end_before_its_evaluation(shop):
    _, _, _, trained, _, _ = shop
    assert set(trained["heads"]) == {"purchase", "churn", "value"} and trained["skipped_heads"] == {}
    for head, horizon in (("purchase", 30), ("churn", 90), ("value", 90)):
        plan = trained["heads"][head]
        evaluation = date.fromisoformat(plan["evaluation_as_of"])
        assert evaluation == RUN_DATE - timedelta(days=horizon)
        assert all(date.fromisoformat(day) + timedelta(days=horizon) <= evaluation for day in plan["training_as_of"])


def test_the_churn_model_beats_the_recency_rule_and_bg_nbd_calibrated_and_serves(shop):
    settings, _, _, _, gate, scored = shop
    churn = gate["metrics"]["churn"]
    assert churn["model"] > max(churn["recency_rule"], churn["bgnbd"], churn["rfm"]), churn
    assert churn["calibration_error"] < 0.05
    assert gate["promoted"] and "churn" in gate["served_heads"]
    assert ModelRegistry(settings.models).require_current(MODEL_NAME).version == gate["model_version"]
    assert "churn=model" in scored["scored_by"]
    # Every head the gate refused is scored by BG/NBD, and says so.
    for head in {"purchase", "value"} - set(gate["served_heads"]):
        assert f"{head}=bgnbd" in scored["scored_by"]


def test_every_metric_of_every_candidate_is_recorded(shop):
    settings, _, _, _, gate, _ = shop
    rows = Lake(settings).read_pandas(METRICS_TABLE, filter=pc.field("model_version") == gate["model_version"])
    overall = rows[rows["segment"] == "overall"]
    for head, metrics in (
        ("purchase", {"roc_auc", "pr_auc", "brier", "calibration_error"}),
        ("value", {"mae", "gini"}),
    ):
        for candidate in ("model", "recency_rule", "rfm", "bgnbd"):
            recorded = set(overall.loc[overall["candidate"] == candidate, "metric"])
            assert {f"{head}.{m}" for m in metrics} <= recorded, (head, candidate)
    calibration = rows[(rows["metric"] == "churn.calibration_observed") & (rows["candidate"] == "model")]
    assert len(calibration) == 10 and calibration["value"].between(0, 1).all()
    assert rows["promoted"].all()


def test_scores_cover_every_recent_customer_and_find_the_planted_segments(shop):
    settings, lines, truth, _, gate, scored = shop
    scores = Lake(settings).read_pandas(SCORES_TABLE, filter=pc.field("scored_date") == pa.scalar(RUN_DATE))
    buyers = set(pc.unique(lines["user_id"]).to_pylist())
    assert set(scores["user_id"]) == buyers and scored["customers"] == len(buyers)
    assert scores["p_purchase_30d"].between(0, 1).all() and (scores["expected_revenue_90d"] >= 0).all()
    assert (scores["model_version"] == gate["model_version"]).all()
    active = scores["p_churn_90d"].notna()
    assert scores.loc[active, "p_churn_90d"].between(0, 1).all()
    assert all(len(reasons) == 3 for reasons in scores["top_reasons"])
    assert scores["rfm_segment"].str.fullmatch(r"R[1-5]F[1-5]M[1-5]").all()
    merged = scores.merge(truth, on="user_id")
    gone = (merged["segment"] == "churner") & (merged["churn_day"] < DAYS) & active
    loyal = (merged["segment"] == "loyal") & active
    assert merged.loc[gone, "p_churn_90d"].mean() > merged.loc[loyal, "p_churn_90d"].mean() + 0.3
    assert merged.loc[loyal, "expected_revenue_90d"].mean() > 2 * merged["expected_revenue_90d"].mean()


def test_scores_ignore_orders_after_the_scored_day(shop):
    """Point in time: orders dated after the run date (a later night's) change no score of that night."""
    settings, lines, _, _, _, _ = shop
    lake = Lake(settings)
    before = lake.read_pandas(SCORES_TABLE).drop(columns=["generated_at"])
    later = lines.slice(0, 50).set_column(
        lines.schema.get_field_index("event_date"), "event_date", pa.array([RUN_DATE + timedelta(days=3)] * 50)
    )
    lake.write_arrow(later, ORDER_LINES, mode="append")
    try:
        score_customers(RUN_DATE, "night", settings=settings)
        after = lake.read_pandas(SCORES_TABLE).drop(columns=["generated_at"])
    finally:
        lake.write_arrow(lines, ORDER_LINES)
    assert (
        after.sort_values("user_id").reset_index(drop=True).equals(before.sort_values("user_id").reset_index(drop=True))
    )


def test_a_shop_with_a_short_history_skips_training_and_is_scored_by_bg_nbd(tmp_path):
    settings = load_settings(var_root=tmp_path)
    lines, _ = generate_customers(n_customers=400, n_days=60, start=START, seed=1)
    Lake(settings).write_arrow(lines, ORDER_LINES)
    last = START + timedelta(days=59)
    with pytest.raises(Skipped, match="needs 89 days of order history for 30-day labels, has 60"):
        train_customer_models(last, "short", settings=settings)
    with pytest.raises(Skipped, match="no customer candidate trained by run short"):
        evaluate_and_gate(last, "short", settings=settings)
    scored = score_customers(last, "short", settings=settings)
    assert scored["model_version"] == FALLBACK_VERSION
    assert scored["scored_by"] == "purchase=bgnbd churn=bgnbd value=bgnbd"


def test_the_storefront_and_crm_read_a_customers_scores_through_the_api(shop):
    settings, _, _, _, gate, _ = shop
    from serving.api import create_app
    from serving.publish import publish_dataset

    published = publish_dataset("customers", RUN_DATE, "night", settings=settings)
    assert published.key_count > 1000
    scores = Lake(settings).read_pandas(SCORES_TABLE).set_index("user_id")
    user = scores.index[0]
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        body = client.get(f"/v1/customers/{user}").json()
        assert body["model_version"] == gate["model_version"] and body["version"] == published.version
        assert body["scores"]["p_purchase_30d"] == pytest.approx(scores.loc[user, "p_purchase_30d"], abs=1e-6)
        assert body["scores"]["top_reasons"] == list(scores.loc[user, "top_reasons"])
        assert body["scores"]["rfm_segment"] == scores.loc[user, "rfm_segment"]
        assert client.get("/v1/customers/nobody").status_code == 404
    assert np.isfinite(body["scores"]["expected_revenue_90d"])


def test_the_report_shows_the_scores_calibration_and_lift(shop):
    settings, _, _, _, gate, _ = shop
    from jobs.report import build_report

    page = build_report(RUN_DATE, "night", settings=settings).read_text()
    section = page[page.index('id="customer-scores"') :]
    assert "Customer scores" in page and 'alt="Customer score distributions"' in section
    assert 'alt="Calibration and lift"' in section and gate["model_version"] in section
    assert "churn.roc_auc" in page  # the model table compares every head with its best baseline
