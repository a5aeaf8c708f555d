"""Roll a serving dataset back to its previously published version (manual trigger only).

Trigger with `{"dataset": "recommendations"}` (or `buy_again`, `discover`, `similar`, `forecasts`, `inventory`).
The storefront switches atomically; the rollback is recorded in `ops.publish_audit`.
Same as `python -m serving rollback <dataset>`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from serving.datasets import DATASETS
from serving.stages import ROLLBACK
from shopml.orchestration import HISTORY_START, default_args, lineage


@dag(
    dag_id="serving_rollback",
    schedule=None,
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={"dataset": Param("recommendations", enum=list(DATASETS), description="serving dataset to roll back")},
    tags=["serving", "operations"],
    doc_md=__doc__,
)
def serving_rollback():
    @task(**lineage(ROLLBACK))
    def rollback(params=None, dag_run=None) -> str:
        return ROLLBACK.call(params["dataset"], triggered_by=f"airflow:{dag_run.run_id}")

    rollback()


serving_rollback()
