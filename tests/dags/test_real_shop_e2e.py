"""A real shop's order history through the nightly DAG: import, backfill, train, publish, serve.

The shop is the UCI "Online Retail II" export in ``../shared/data`` (a UK wholesaler: no views,
categories, brands or inventory feed; holiday gaps, bulk orders, cancellations). The test
imports its last ten weeks, runs the DAG over them through real Airflow and reads what the
storefront gets through the read API.
"""

from __future__ import annotations

from datetime import date

import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from shopml import airflow_env
from shopml.lake import Lake
from shopml.land import PRESETS, land_order_lines
from shopml.settings import load_settings
from tests.shop import REAL_SHOP, needs_real_shop

SINCE, LAST = date(2010, 10, 4), date(2010, 12, 9)

pytestmark = [pytest.mark.slow, needs_real_shop]


# What the test checks is the path through the DAG and the API, not model quality (the README's figures
# come from `make run` on the whole year): a lighter forecaster backtest and no ALS baseline keep it short.
LIGHTER_MODELS = {
    "SHOPML_TASK_RETRIES": "0",
    "SHOPML_RECOMMEND__ALS__ENABLED": "false",
    "SHOPML_FORECAST__BACKTEST_FOLDS": "1",
    "SHOPML_FORECAST__BOOSTER__N_ESTIMATORS": "40",
}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """The DAG run over the imported slice: (settings, run outcome)."""
    root = tmp_path_factory.mktemp("real-shop")
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIGHTER_MODELS.items():
            env.setenv(name, value)
        settings = load_settings(var_root=root / "var", landing_root=root / "landing")
        report = land_order_lines(
            REAL_SHOP, settings.landing, PRESETS["online-retail-ii"], settings.non_product_skus, SINCE
        )
        assert report.reconciled and report.last_date == str(LAST)
        run = airflow_env.test_dag("nightly_retrain", LAST, {"backfill_from": SINCE.isoformat()}, settings=settings)
    return settings, run


def test_every_task_ran_and_the_missing_inventory_feed_is_a_stated_skip(night):
    _, run = night
    assert run.unfinished == []
    reasons = {task.task_id: task.skip_reason for task in run.tasks.values() if task.state == "skipped"}
    skipped = dict(reasons)
    assert skipped.pop("publish.publish_inventory") == (
        "nothing to publish for inventory: the shop has no inventory_snapshots feed"
    )
    # Ten weeks are too few for 30-day labels: customer scores come from BG/NBD until a model can be judged.
    assert "needs 89 days of order history for 30-day labels" in skipped.pop("customer.train_customer_models")
    assert "no customer candidate trained" in skipped.pop("customer.evaluate_and_gate")
    assert skipped == {}
    assert all(task.state == "success" for task in run.tasks.values() if task.task_id not in reasons)


def test_known_customers_get_personal_lists_from_the_api(night):
    settings, _ = night
    lake = Lake(settings)
    recent = lake.read_arrow(
        "silver.order_lines", columns=["user_id"], filter=pc.field("event_date") >= date(2010, 11, 1)
    )
    customers = set(pc.unique(pc.drop_null(recent["user_id"])).to_pylist())
    from serving.api import create_app

    with TestClient(create_app(settings), base_url="http://localhost") as client:
        answers = [client.get(f"/v1/recommendations/{user}", params={"k": 10}) for user in sorted(customers)[:300]]
        personal = [a.json() for a in answers if a.status_code == 200 and not a.json()["fallback"]]
        assert len(personal) >= 0.9 * len(answers), f"{len(personal)} personal lists for {len(answers)} customers"
        assert all(len(body["items"]) == 10 for body in personal)
        sku = personal[0]["items"][0]["sku"]
        assert client.get(f"/v1/similar/{sku}").status_code == 200
        forecast = client.get(f"/v1/forecasts/{sku}")
        assert forecast.status_code == 200 and forecast.json()["days"]
        customer = client.get(f"/v1/customers/{sorted(customers)[0]}").json()
        assert customer["model_version"] == "baseline:bgnbd" and 0 <= customer["scores"]["p_purchase_30d"] <= 1
        inventory = client.get(f"/v1/inventory/{sku}")  # no inventory feed: no plan was published
        assert inventory.status_code == 503 and inventory.json()["error"] == "not_published"


def test_lists_and_similar_items_are_published_from_the_promoted_model(night):
    """The path the sample shop's DAG test gates on purpose: a candidate that wins, promoted and served."""
    settings, run = night
    evaluation = run.tasks["recommender.evaluate_and_gate"].result
    assert evaluation["promoted"] and evaluation["serve"] == "model", evaluation
    scored = run.tasks["recommender.score_recommendations"].result
    assert scored["model_version"] == evaluation["model_version"]
    from serving.publish import dataset_versions

    for dataset in ("recommendations", "buy_again", "discover", "similar"):
        current, versions = dataset_versions(dataset, settings)
        info = next(v for v in versions if v.version == current)
        assert info.scored_date == str(LAST) and info.key_count > 0, info
        if dataset != "similar":  # similar items carry the retrieval embeddings' version
            assert info.model_version == evaluation["model_version"], info


def test_the_run_accounts_for_every_landed_line(night):
    settings, _ = night
    rows = Lake(settings).read_arrow("ops.row_accounting", filter=pc.field("dataset") == "events").to_pylist()
    assert len(rows) == len({row["landing_date"] for row in rows}) > 50
    for row in rows:
        accounted = sum(
            row[c] or 0 for c in ("silver", "quarantined_clean", "quarantined_validate", "duplicates", "bots")
        )
        assert accounted == row["landed"], row
