"""A job and the scale-out trainers on a real Spark standalone cluster, submitted the way the DAG submits them.

The cluster is a master and a worker (1 core, 1 GiB) started from the pyspark install on loopback;
drivers reach it through the ``spark_default`` Airflow connection, set as ``AIRFLOW_CONN_SPARK_DEFAULT``
exactly as docker-compose.yml sets it for the Airflow services.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopml.settings import get_settings, load_settings
from tests.integration.deploy.distributed_app import FEATURES, XGB_PARAMS, XGB_ROUNDS
from tests.integration.deploy.spark_cluster import LocalSparkCluster, loopback_env, start_cluster

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("distributed_app.py")
SHOP = {"users": 40, "skus": 12, "categories": 3, "days": 1, "events_per_day": 200, "seed": 3}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> LocalSparkCluster:
    cluster = start_cluster(tmp_path_factory.mktemp("spark-cluster"), cores=1, memory="1g")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def driver_env(cluster, tmp_path_factory) -> Path:
    """What a driver started by spark-submit sees in the stack: settings env and the spark_default connection."""
    root = tmp_path_factory.mktemp("cluster-shop")
    with pytest.MonkeyPatch.context() as env:
        for key, value in loopback_env().items():
            env.setenv(key, value)
        env.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": cluster.master_url}))
        env.setenv("SHOPML_VAR_ROOT", str(root / "var"))
        env.setenv("SHOPML_LANDING_ROOT", str(root / "landing"))
        env.setenv("SHOPML_SPARK_DRIVER_MEMORY", "512m")
        env.setenv("SHOPML_SPARK_SHUFFLE_PARTITIONS", "2")
        get_settings.cache_clear()
        yield root
    get_settings.cache_clear()


def _new_apps(cluster: LocalSparkCluster, before: set[str]) -> list[dict]:
    return [app for app in cluster.state()["completedapps"] if app["id"] not in before]


def test_ingest_job_runs_on_the_cluster_through_the_spark_connection(cluster, driver_env):
    from jobs.ingest import DATASETS
    from jobs.stages import INGEST
    from sample_shop.generate import GeneratorConfig, generate
    from shopml.lake import Lake
    from shopml.orchestration import spark_job

    config = GeneratorConfig(**SHOP)
    manifest = generate(config, driver_env / "landing")
    day = config.start_date.isoformat()
    before = {app["id"] for app in cluster.state()["completedapps"]}

    # The DAG's own task factory; only the executor size is shrunk to fit the 1 GiB worker.
    task = spark_job("ingest", INGEST, executor_memory="512m", total_executor_cores=1)
    context = {"ds": day, "params": {"backfill_from": None}, "run_id": "cluster_test"}
    task.render_template_fields(context)
    assert task.application_args == ["--date", day, "--from", day, "--run-id", "cluster_test"]
    task.execute(context)

    apps = _new_apps(cluster, before)
    assert [(app["state"], app["cores"]) for app in apps] == [("FINISHED", 1)], apps
    lake = Lake(load_settings())
    for dataset in DATASETS:
        table = lake.read_arrow(f"bronze.{dataset}")
        assert table.num_rows == manifest["days"][day][dataset]["lines"], dataset
        assert set(table.column("landing_date").to_pylist()) == {config.start_date}
    accounting = lake.read_pandas("ops.row_accounting")
    assert sorted(accounting["dataset"]) == sorted(DATASETS)


def _regression_data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = (2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] ** 2 + rng.normal(scale=0.1, size=rows)).astype(np.float32)
    frame["row_id"] = np.arange(rows)
    return frame


@pytest.fixture(scope="module")
def distributed_run(cluster, driver_env) -> dict:
    """Submit distributed_app.py once (torch and XGBoost share the driver's start-up) and read what it recorded."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    workdir = driver_env / "distributed"
    workdir.mkdir()
    train, score = _regression_data(400, seed=1), _regression_data(100, seed=2)
    train.to_parquet(workdir / "train.parquet", index=False)
    score.drop(columns="y").to_parquet(workdir / "score.parquet", index=False)
    before = {app["id"] for app in cluster.state()["completedapps"]}
    hook = SparkSubmitHook(
        conn_id="spark_default",
        conf={"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable},
        executor_memory="512m",
        total_executor_cores=1,
        driver_memory="512m",
        name="shopml-deploy-test",
        application_args=[str(workdir)],
    )
    submit_error = None
    try:
        hook.submit(str(APP))
    except Exception as exc:  # the app records each trainer's own error; the tests report them
        submit_error = str(exc)
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return {
        "result": result,
        "submit_error": submit_error,
        "apps": _new_apps(cluster, before),
        "train": train,
        "score": score,
        "workdir": workdir,
    }


def _trainer_result(run: dict, key: str):
    if key not in run["result"]:
        detail = (run["result"].get(f"{key}_error") or run["submit_error"] or "no result written")[-3000:]
        if "sklearn needs to be installed" in detail:
            detail = f"xgboost.spark is built on XGBoost's scikit-learn wrappers: install scikit-learn\n{detail}"
        pytest.fail(f"{key} training on the cluster failed:\n{detail}")
    return run["result"][key]


def test_torch_distributor_trains_on_an_executor(cluster, distributed_run):
    torch_result = _trainer_result(distributed_run, "torch")
    assert distributed_run["result"]["master"] == cluster.master_url
    # y = 3x exactly, so least squares ends at w = 3.
    assert torch_result["weight"] == pytest.approx(3.0, abs=1e-3)
    assert (torch_result["rank"], torch_result["world_size"]) == (0, 1)
    # It ran in an executor's working directory under the worker's work dir, not on the driver.
    assert Path(torch_result["cwd"]).is_relative_to(cluster.work_dir), torch_result["cwd"]


def test_xgboost_on_spark_predicts_like_the_single_machine_model(distributed_run):
    """Same rows, same parameters: the cluster's booster predicts (nearly) what ``xgb.train`` does.

    Not bit-identical in general: the Spark estimator gets its rows partition by partition, and
    with several workers the quantile sketches are merged and the gradient histograms summed across
    workers in another floating-point order, so a split can land on a neighbouring bin edge.
    """
    import xgboost as xgb

    distributed = _trainer_result(distributed_run, "xgboost")
    train, score = distributed_run["train"], distributed_run["score"]
    assert distributed["row_id"] == score["row_id"].tolist()
    single = xgb.train(
        {**XGB_PARAMS, "nthread": 1},
        xgb.DMatrix(train[FEATURES].to_numpy(np.float32), label=train["y"].to_numpy()),
        num_boost_round=XGB_ROUNDS,
    )
    expected = single.predict(xgb.DMatrix(score[FEATURES].to_numpy(np.float32)))
    got = np.asarray(distributed["prediction"])
    spread = float(train["y"].std())
    assert np.corrcoef(got, expected)[0, 1] > 0.999
    assert np.abs(got - expected).mean() < 0.02 * spread
    assert np.abs(got - expected).max() < 0.1 * spread
    # The distributed model is an ordinary booster with the same number of trees.
    booster = xgb.Booster(model_file=str(distributed_run["workdir"] / "booster.json"))
    assert booster.num_boosted_rounds() == XGB_ROUNDS
