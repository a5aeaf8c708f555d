"""Which training runs distributed, and how wide (models/distributed.py does the running)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DistributedConfig(BaseModel):
    """Which training runs distributed, and how wide; the defaults keep everything on one machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    xgboost_on_spark: bool = Field(
        False,
        description="Train the XGBoost models (forecaster, ranker) with xgboost.spark on the Spark cluster "
        "instead of in the trainer's process.",
    )
    torch_distributor: bool = Field(
        False,
        description="Run PyTorch training functions through Spark's TorchDistributor instead of in-process.",
    )
    num_workers: int = Field(
        2,
        ge=1,
        description="XGBoost workers / torch processes. Each is one Spark barrier task, so the cluster needs this "
        "many free task slots at once (executor cores / spark.task.cpus, or GPUs with use of CUDA).",
    )
    torch_local_mode: bool = Field(
        False,
        description="TorchDistributor: run the processes on the driver's node (True) or on executors (False).",
    )
    repartition_random_shuffle: bool = Field(
        False,
        description="Shuffle rows randomly when xgboost.spark repartitions the frame to num_workers partitions "
        "(evens out workers when the input is sorted, e.g. by date).",
    )
