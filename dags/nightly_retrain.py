"""Nightly pipeline: land, clean and validate the night's data, rebuild features, retrain, score, publish.

Runs once a day for the logical date (`ds`):
ingest → clean → validate → build_features → (recommender ‖ forecaster) → publish → report; the customer
scores branch reads only silver order lines, so it starts after validate.
Each task runs one stage, declared beside its code with the tables it reads and writes (`jobs/stages.py`,
`models/*/stages.py`, `serving/stages.py`): the tasks' Asset inlets and outlets are those tables.
Spark jobs come from `jobs/` (the `spark_default` connection decides where Spark runs).
Models are promoted only when they beat their baselines; scoring always uses the
promoted version. Trigger with `{"backfill_from": "YYYY-MM-DD"}` to process every
landing date from then to `ds` as one batch (first runs and backfills).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, dag

from jobs import stages as data
from models.customer import stages as customer
from models.forecast import stages as forecaster
from models.recommend import stages as recommender
from serving.datasets import DATASETS as SERVED_DATASETS
from serving.stages import PUBLISH
from shopml.notify import nightly_deadline
from shopml.orchestration import HISTORY_START, default_args, python_job, spark_job


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
    ingest = spark_job("ingest", data.INGEST)
    clean = spark_job("clean", data.CLEAN)
    validate = spark_job("validate", data.VALIDATE)
    features = spark_job("build_features", data.BUILD_FEATURES)

    with TaskGroup("forecaster"):
        train_forecaster = python_job("train_forecaster", forecaster.TRAIN)
        forecasts = python_job("score_forecasts", forecaster.SCORE)
        train_forecaster >> python_job("backtest_and_gate", forecaster.BACKTEST_AND_GATE) >> forecasts

    with TaskGroup("recommender"):
        train_retrieval = python_job("train_retrieval", recommender.TRAIN_RETRIEVAL)
        gate = python_job("evaluate_and_gate", recommender.EVALUATE_AND_GATE)
        # The plan only down-ranks SKUs about to stock out, and a lost gate leaves the promoted model
        # serving: neither a failed forecaster nor a failed evaluation may starve the storefront.
        recommendations = python_job("score_recommendations", recommender.SCORE, trigger_rule="all_done")
        train_retrieval >> python_job("train_ranker", recommender.TRAIN_RANKER) >> gate
        # Scoring waits for tonight's inventory plan, so SKUs about to stock out are down-ranked.
        [gate, forecasts] >> recommendations

    with TaskGroup("customer"):
        train_customers = python_job("train_customer_models", customer.TRAIN)
        # A shop with too little history skips training (and so the gate) for a stated reason; scoring
        # still runs, with BG/NBD for the heads no promoted model covers.
        customer_gate = python_job("evaluate_and_gate", customer.EVALUATE_AND_GATE, trigger_rule="none_failed")
        customer_scores = python_job("score_customers", customer.SCORE, trigger_rule="all_done")
        train_customers >> customer_gate >> customer_scores

    with TaskGroup("publish"):
        published = []
        # One task per serving dataset (serving/datasets.py), after the branch that scores its table.
        scored_by = {"recommender": recommendations, "forecaster": forecasts, "customer": customer_scores}
        for served in SERVED_DATASETS.values():
            publish = python_job(
                f"publish_{served.name}",
                PUBLISH[served.name],
                call_kwargs={"dataset": served.name, "triggered_by": "nightly_retrain"},
            )
            scored_by[served.producer] >> publish
            published.append(publish)

    # A publish skipped for a stated reason (no inventory feed) still gets its night reported.
    report = python_job("report", data.REPORT, trigger_rule="none_failed")

    ingest >> clean >> validate >> features >> [train_forecaster, train_retrieval]
    validate >> train_customers
    published >> report


nightly_retrain()
