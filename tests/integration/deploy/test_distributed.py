"""The scale-out switches in models/distributed.py without a cluster: parameters, defaults, torch processes."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from models.distributed import fit_torch, spark_xgb_params, train_xgboost_on_spark
from shopml.config.distributed import DistributedConfig
from tests.integration.deploy.distributed_app import fit_line

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_defaults_keep_training_on_one_machine():
    config = DistributedConfig()
    assert (config.xgboost_on_spark, config.torch_distributor) == (False, False)
    with pytest.raises(ValidationError):
        DistributedConfig(num_workers=0)
    with pytest.raises(ValidationError):
        DistributedConfig(xgboost_on_spark=True, workers=4)


def test_xgb_train_params_become_spark_estimator_arguments():
    params = {"objective": "rank:ndcg", "eta": 0.1, "seed": 7, "nthread": 8, "device": "cuda", "max_depth": 6}
    assert spark_xgb_params(params, num_boost_round=300) == {
        "objective": "rank:ndcg",
        "learning_rate": 0.1,
        "random_state": 7,
        "max_depth": 6,
        "n_estimators": 300,
    }
    with pytest.raises(ValueError, match="qid column"):
        spark_xgb_params({"objective": "rank:ndcg", "qid": [0, 0, 1]})


def test_a_ranking_objective_needs_query_groups(spark):
    frame = spark.createDataFrame([(1.0, 0.0)], "x double, y double")
    with pytest.raises(ValueError, match="pass the qid column"):
        train_xgboost_on_spark(frame, ["x"], "y", {"objective": "rank:ndcg"}, device="cpu")


def test_fit_torch_runs_in_process_by_default():
    # Both points in one process: least squares of y = 2 and y = 4 at x = 1 is w = 3.
    result = fit_torch(fit_line, [1.0, 1.0], [2.0, 4.0], 300)
    assert result["world_size"] == 1
    assert result["weight"] == pytest.approx(3.0, abs=1e-3)
    assert result["cwd"] == os.getcwd()


@pytest.mark.slow
def test_torch_distributor_averages_gradients_across_processes(spark, monkeypatch):
    """Two torchrun processes on the driver's node, one point each: only all-reduced gradients reach w = 3.

    Alone, rank 0 would fit its own point (w = 2); DistributedDataParallel averages the two
    gradients every step, so both ranks follow the full-data loss.
    """
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # the two processes talk over loopback only
    config = DistributedConfig(torch_distributor=True, num_workers=2, torch_local_mode=True)
    result = fit_torch(fit_line, [1.0, 1.0], [2.0, 4.0], 300, config=config, device="cpu")
    # Every process writes its return value and the last one wins, so only what all ranks agree on
    # is worth returning: after all-reduced steps, the weight.
    assert result["world_size"] == 2
    assert result["rank"] in (0, 1)
    assert result["weight"] == pytest.approx(3.0, abs=1e-3)
