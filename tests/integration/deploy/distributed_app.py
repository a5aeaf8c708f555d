"""A spark-submit application for the deploy tests: the scale-out trainers, run on the cluster it is submitted to.

``spark-submit distributed_app.py <workdir>`` reads ``train.parquet`` and ``score.parquet`` from
``workdir``, fits a one-weight linear model with ``fit_torch`` through TorchDistributor on the
executors and XGBoost with ``train_xgboost_on_spark``, and writes what each gave to
``<workdir>/result.json`` as soon as it has it (so one failing trainer does not hide the other).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from models.distributed import fit_torch, torch_process_group, train_xgboost_on_spark
from shopml.config.distributed import DistributedConfig
from shopml.spark import get_spark

FEATURES = ["x0", "x1", "x2"]
XGB_PARAMS = {"objective": "reg:squarederror", "eta": 0.3, "max_depth": 3, "seed": 11, "tree_method": "hist"}
XGB_ROUNDS = 25
LINE_X = [1.0, 2.0, 3.0]
LINE_Y = [3.0, 6.0, 9.0]


def fit_line(xs: list[float], ys: list[float], steps: int) -> dict:
    """Least squares ``y = w x`` by gradient descent, each process on its own slice of the points.

    Under DistributedDataParallel the gradients are averaged across processes, so every process
    ends at the weight that fits all points; alone, a process would fit only its slice.
    Small enough to check by hand, and real torch all the same.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    rank, world_size = torch_process_group("cpu")
    line = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(line.weight)
    model = DistributedDataParallel(line) if world_size > 1 else line
    x = torch.tensor(xs[rank::world_size]).unsqueeze(1)
    y = torch.tensor(ys[rank::world_size]).unsqueeze(1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        optimiser.step()
    return {"weight": float(line.weight.item()), "rank": rank, "world_size": world_size, "cwd": os.getcwd()}


def main(workdir: Path) -> int:
    spark = get_spark(app_name="shopml-deploy-test")
    config = DistributedConfig(xgboost_on_spark=True, torch_distributor=True, num_workers=1)
    result: dict = {"master": spark.sparkContext.master}
    out = workdir / "result.json"

    def record(key: str, run) -> bool:
        try:
            result[key] = run()
        except Exception:
            result[f"{key}_error"] = traceback.format_exc()
            return False
        finally:
            out.write_text(json.dumps(result))
        return True

    def run_xgboost() -> dict:
        train = spark.read.parquet(str(workdir / "train.parquet"))
        score = spark.read.parquet(str(workdir / "score.parquet"))
        model = train_xgboost_on_spark(
            train, FEATURES, "y", XGB_PARAMS, num_boost_round=XGB_ROUNDS, config=config, device="cpu"
        )
        model.get_booster().save_model(str(workdir / "booster.json"))
        scored = model.transform(score).select("row_id", "prediction").orderBy("row_id").collect()
        return {"row_id": [r.row_id for r in scored], "prediction": [float(r.prediction) for r in scored]}

    ok = record("torch", lambda: fit_torch(fit_line, LINE_X, LINE_Y, 200, config=config, device="cpu"))
    ok &= record("xgboost", run_xgboost)
    spark.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
