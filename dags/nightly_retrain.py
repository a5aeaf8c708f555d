"""Nightly pipeline: land, clean and validate the night's data, rebuild features, retrain, score, publish.

Runs once a day for the logical date (`ds`):
ingest → clean → validate → build_features → (recommender ‖ forecaster) → publish → report.
Spark jobs come from `jobs/` (the `spark_default` connection decides where Spark runs);
model and publish tasks call one function each from `models/` and `shopml/serving`.
Models are promoted only when they beat their baselines; scoring always uses the
promoted version. Trigger with `{"backfill_from": "YYYY-MM-DD"}` to process every
landing date from then to `ds` as one batch (first runs and backfills).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, dag

from shopml.notify import nightly_deadline
from shopml.orchestration import HISTORY_START, default_args, python_job, spark_job

RECOMMENDER_INPUTS = [
    "gold.user_item_interactions",
    "gold.user_features",
    "gold.item_features",
    "gold.item_cooccurrence",
    "silver.order_lines",
]
FEATURE_TABLES = [*RECOMMENDER_INPUTS[:4], "gold.sku_daily_demand", "gold.feature_corrections"]


@dag(
    dag_id="nightly_retrain",
    schedule="@daily",
    # Any history a shop lands is a valid logical date (catchup=False: the scheduler still starts today).
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    deadline=nightly_deadline(),
    default_args=default_args(execution_timeout=timedelta(hours=1)),
    params={"backfill_from": Param(None, type=["null", "string"], format="date", description="first landing date")},
    tags=["nightly", "spark", "delta", "great-expectations", "training"],
    doc_md=__doc__,
)
def nightly_retrain():
    raw = ["bronze.events", "bronze.products", "bronze.inventory"]
    staged = ["staging.events", "staging.products", "staging.inventory"]
    silver = ["silver.events", "silver.order_lines", "silver.products", "silver.inventory_snapshots"]

    ingest = spark_job("ingest", "ingest.py", reads=[], writes=raw)
    clean = spark_job("clean", "clean.py", reads=raw, writes=[*staged, "ops.quarantine"])
    validate = spark_job(
        "validate", "validate.py", reads=staged, writes=[*silver, "ops.quarantine", "ops.validation_results"]
    )
    features = spark_job("build_features", "features.py", reads=silver, writes=FEATURE_TABLES)

    with TaskGroup("forecaster"):
        train_forecaster = python_job(
            "train_forecaster", "models.forecast.pipeline.train_forecaster", reads=["gold.sku_daily_demand"], writes=[]
        )
        forecasts = python_job(
            "score_forecasts",
            "models.forecast.pipeline.score_forecasts",
            reads=["gold.sku_daily_demand", "silver.inventory_snapshots"],
            writes=["gold.demand_forecasts", "gold.inventory_plan"],
        )
        (
            train_forecaster
            >> python_job(
                "backtest_and_gate",
                "models.forecast.pipeline.backtest_and_gate",
                reads=["gold.sku_daily_demand"],
                writes=["ops.model_metrics"],
            )
            >> forecasts
        )

    with TaskGroup("recommender"):
        train_retrieval = python_job(
            "train_retrieval", "models.recommend.pipeline.train_retrieval", reads=RECOMMENDER_INPUTS, writes=[]
        )
        gate = python_job(
            "evaluate_and_gate",
            "models.recommend.pipeline.evaluate_and_gate",
            reads=RECOMMENDER_INPUTS,
            writes=["ops.model_metrics"],
        )
        recommendations = python_job(
            "score_recommendations",
            "models.recommend.pipeline.score_recommendations",
            reads=[*RECOMMENDER_INPUTS, "gold.inventory_plan"],
            writes=["gold.recommendations", "gold.similar_items"],
            # The plan only down-ranks SKUs about to stock out, and a lost gate leaves the promoted model
            # serving: neither a failed forecaster nor a failed evaluation may starve the storefront.
            trigger_rule="all_done",
        )
        (
            train_retrieval
            >> python_job("train_ranker", "models.recommend.pipeline.train_ranker", reads=RECOMMENDER_INPUTS, writes=[])
            >> gate
        )
        # Scoring waits for tonight's inventory plan, so SKUs about to stock out are down-ranked.
        [gate, forecasts] >> recommendations

    with TaskGroup("publish"):
        published = []
        for dataset, table, upstream in (
            ("recommendations", "gold.recommendations", recommendations),
            # The buy-again and discover carousels: lists of the same table, skipped with the reason when
            # the table predates its list column.
            ("buy_again", "gold.recommendations", recommendations),
            ("discover", "gold.recommendations", recommendations),
            ("similar", "gold.similar_items", recommendations),
            ("forecasts", "gold.demand_forecasts", forecasts),
            ("inventory", "gold.inventory_plan", forecasts),
        ):
            publish = python_job(
                f"publish_{dataset}",
                "shopml.serving.publish.publish_dataset",
                reads=[table],
                writes=["ops.publish_audit"],
                call_kwargs={"dataset": dataset, "triggered_by": "nightly_retrain"},
            )
            upstream >> publish
            published.append(publish)

    # A publish skipped for a stated reason (no inventory feed) still gets its night reported.
    report = python_job(
        "report",
        "shopml.report.build_report",
        reads=["ops.model_metrics", "ops.publish_audit"],
        writes=[],
        trigger_rule="none_failed",
    )

    ingest >> clean >> validate >> features >> [train_forecaster, train_retrieval]
    published >> report


nightly_retrain()
