"""Erase one customer from the lake and the serving store on request (GDPR Art. 17; manual trigger only).

Trigger with `{"user_id": "U-000042"}`. Deletes the customer's rows from every Delta table (raw payloads
and quarantine included) and vacuums them, removes the customer's key from every kept serving version,
and records the request in `ops.erasure_audit` under a hash of the id.
Same as `python -m jobs.privacy erase --user U-000042`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from jobs.stages import ERASE_CUSTOMER
from shopml.orchestration import HISTORY_START, default_args, lineage


@dag(
    dag_id="erase_customer",
    schedule=None,
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={"user_id": Param(type="string", minLength=1, description="the customer's user_id")},
    tags=["privacy", "operations"],
    doc_md=__doc__,
)
def erase_customer():
    @task(**lineage(ERASE_CUSTOMER))
    def erase(params=None, dag_run=None) -> dict:
        erasure = ERASE_CUSTOMER.call(params["user_id"], requested_by=f"airflow:{dag_run.run_id}")
        return {"subject_sha256": erasure.subject_sha256, "deleted_rows": erasure.deleted_rows}

    erase()


erase_customer()
