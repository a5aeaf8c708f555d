"""The on-call rollback through real Airflow: the `serving_rollback` DAG puts the previous version back."""

from __future__ import annotations

from datetime import date

import pytest

from serving.publish import dataset_versions, publish_dataset
from shopml import airflow_env
from shopml.lake import Lake
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import similar_table

D1, D2 = date(2026, 1, 2), date(2026, 1, 3)


@pytest.mark.slow
def test_the_rollback_dag_serves_the_previous_version_and_revokes_the_bad_one(tmp_path):
    settings = load_settings(var_root=tmp_path / "var")
    lake = Lake(settings)
    lake.write_arrow(similar_table({"s1": ["s2", "s3"]}, D1), "gold.similar_items")
    lake.write_arrow(similar_table({"s1": ["s9"]}, D2, "run-2"), "gold.similar_items", mode="append")
    good = publish_dataset("similar", D1, "run-1", settings=settings)
    bad = publish_dataset("similar", D2, "run-2", settings=settings)

    run = airflow_env.test_dag("serving_rollback", D2, {"dataset": "similar"}, settings=settings)

    assert run.tasks["rollback"].state == "success" and run.tasks["rollback"].result == good.version
    current, versions = dataset_versions("similar", settings)
    assert current == good.version
    assert {v.version: v.status for v in versions}[bad.version] == "revoked"
    audit = lake.read_pandas("ops.publish_audit").sort_values("published_at")
    last = audit.iloc[-1]
    assert last["version"] == good.version and last["triggered_by"] == f"rollback:airflow:{run.run_id}"
