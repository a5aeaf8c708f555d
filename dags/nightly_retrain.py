"""Nightly pipeline: land, clean and validate the night's data, rebuild features, retrain, score, publish.

Runs once a day for the logical date (`ds`):
ingest → clean → validate → build_features → (recommender ‖ forecaster) → publish → report.
Spark jobs come from `jobs/` (the `spark_default` connection decides where Spark runs);
model and publish tasks call one function each from `models/` and `serving`.
Models are promoted only when they beat their baselines; scoring always uses the
promoted version. Trigger with `{"backfill_from": "YYYY-MM-DD"}` to process every
landing date from then to `ds` as one batch (first runs and backfills).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, dag

from serving.datasets import DATASETS as SERVED_DATASETS
from shopml.catalog import (
    BRONZE_EVENTS,
    BRONZE_INVENTORY,
    BRONZE_PRODUCTS,
    GOLD_DEMAND_FORECASTS,
    GOLD_FEATURE_CORRECTIONS,
    GOLD_INVENTORY_PLAN,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_RECOMMENDATIONS,
    GOLD_SIMILAR_ITEMS,
    GOLD_SKU_DAILY_DEMAND,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    OPS_MODEL_METRICS,
    OPS_PUBLISH_AUDIT,
    OPS_QUARANTINE,
    OPS_ROW_ACCOUNTING,
    OPS_VALIDATION_RESULTS,
    SILVER_EVENTS,
    SILVER_INVENTORY_SNAPSHOTS,
    SILVER_ORDER_LINES,
    SILVER_PRODUCTS,
    STAGING_EVENTS,
    STAGING_INVENTORY,
    STAGING_PRODUCTS,
)
from shopml.notify import nightly_deadline
from shopml.orchestration import HISTORY_START, default_args, python_job, spark_job

RECOMMENDER_INPUTS = [
    GOLD_USER_ITEM_INTERACTIONS,
    GOLD_USER_FEATURES,
    GOLD_ITEM_FEATURES,
    GOLD_ITEM_COOCCURRENCE,
    SILVER_ORDER_LINES,
]
FEATURE_TABLES = [*RECOMMENDER_INPUTS[:4], GOLD_SKU_DAILY_DEMAND, GOLD_FEATURE_CORRECTIONS]


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
    raw = [BRONZE_EVENTS, BRONZE_PRODUCTS, BRONZE_INVENTORY]
    staged = [STAGING_EVENTS, STAGING_PRODUCTS, STAGING_INVENTORY]
    silver = [SILVER_EVENTS, SILVER_ORDER_LINES, SILVER_PRODUCTS, SILVER_INVENTORY_SNAPSHOTS]

    # Each stage adds its counts to the row accounting and its rejects to the quarantine.
    ops = [OPS_QUARANTINE, OPS_ROW_ACCOUNTING]
    ingest = spark_job("ingest", "ingest.py", reads=[], writes=[*raw, *ops])
    clean = spark_job("clean", "clean.py", reads=raw, writes=[*staged, *ops])
    validate = spark_job("validate", "validate.py", reads=staged, writes=[*silver, *ops, OPS_VALIDATION_RESULTS])
    features = spark_job("build_features", "features.py", reads=silver, writes=FEATURE_TABLES)

    with TaskGroup("forecaster"):
        train_forecaster = python_job(
            "train_forecaster", "models.forecast.pipeline.train_forecaster", reads=[GOLD_SKU_DAILY_DEMAND], writes=[]
        )
        forecasts = python_job(
            "score_forecasts",
            "models.forecast.pipeline.score_forecasts",
            reads=[GOLD_SKU_DAILY_DEMAND, SILVER_INVENTORY_SNAPSHOTS],
            writes=[GOLD_DEMAND_FORECASTS, GOLD_INVENTORY_PLAN],
        )
        (
            train_forecaster
            >> python_job(
                "backtest_and_gate",
                "models.forecast.pipeline.backtest_and_gate",
                reads=[GOLD_SKU_DAILY_DEMAND],
                writes=[OPS_MODEL_METRICS],
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
            writes=[OPS_MODEL_METRICS],
        )
        recommendations = python_job(
            "score_recommendations",
            "models.recommend.pipeline.score_recommendations",
            reads=[*RECOMMENDER_INPUTS, GOLD_INVENTORY_PLAN],
            writes=[GOLD_RECOMMENDATIONS, GOLD_SIMILAR_ITEMS],
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
        # One task per serving dataset (serving/datasets.py), after the branch that scores its table.
        scored_by = {"recommender": recommendations, "forecaster": forecasts}
        for served in SERVED_DATASETS.values():
            publish = python_job(
                f"publish_{served.name}",
                "serving.publish.publish_dataset",
                reads=[served.table],
                writes=[OPS_PUBLISH_AUDIT],
                call_kwargs={"dataset": served.name, "triggered_by": "nightly_retrain"},
            )
            scored_by[served.producer] >> publish
            published.append(publish)

    # A publish skipped for a stated reason (no inventory feed) still gets its night reported.
    report = python_job(
        "report",
        "jobs.report.build_report",
        reads=[
            *FEATURE_TABLES[:-1],
            SILVER_ORDER_LINES,
            GOLD_RECOMMENDATIONS,
            GOLD_SIMILAR_ITEMS,
            GOLD_DEMAND_FORECASTS,
            GOLD_INVENTORY_PLAN,
            OPS_QUARANTINE,
            OPS_ROW_ACCOUNTING,
            OPS_VALIDATION_RESULTS,
            OPS_MODEL_METRICS,
            OPS_PUBLISH_AUDIT,
        ],
        writes=[],
        trigger_rule="none_failed",
    )

    ingest >> clean >> validate >> features >> [train_forecaster, train_retrieval]
    published >> report


nightly_retrain()
