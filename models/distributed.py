"""Scale-out training switches: XGBoost on the Spark cluster and PyTorch through Spark's TorchDistributor.

One process on one machine stays the default: ``xgboost.train`` on an in-memory matrix and a plain
torch loop are faster than any cluster until the training rows stop fitting in the trainer's memory
(docs/deployment.md gives the sizes). Past that point ``DistributedConfig`` moves the same training
onto the Spark cluster instead of forking the code:

- XGBoost: ``xgboost.spark`` estimators train one booster with one barrier task per worker; each
  worker holds its share of the rows and the gradient histograms are summed across workers, so no
  machine ever holds the whole matrix. The result is an ordinary ``xgboost.Booster``.
- PyTorch: ``TorchDistributor`` runs a training function under ``torchrun`` on executors (or on the
  driver's node), one process per GPU or core, with DistributedDataParallel doing the all-reduce.

The device comes from the ``Settings.device`` value through ``models.device.resolve_device``. It is
resolved on the driver, so a GPU cluster whose driver has no GPU sets ``SHOPML_DEVICE=cuda``
explicitly (``auto`` would see no GPU there and pick the CPU).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from models.device import resolve_device
from shopml.config.distributed import DistributedConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from xgboost.spark import SparkXGBRankerModel, SparkXGBRegressorModel

log = logging.getLogger(__name__)

T = TypeVar("T")

# xgb.train names → the sklearn-style names xgboost.spark estimators take.
_RENAMED_PARAMS = {"eta": "learning_rate", "seed": "random_state"}
# Decided by the cluster, not by the caller: threads per worker come from spark.task.cpus, the
# device from the device setting, rows per group from qid_col.
_CLUSTER_PARAMS = frozenset({"nthread", "n_jobs", "device", "gpu_id"})
_GROUP_PARAMS = frozenset({"group", "qid", "eval_group", "eval_qid"})


def spark_xgb_params(params: Mapping[str, Any], num_boost_round: int | None = None) -> dict[str, Any]:
    """Translate ``xgb.train`` parameters into the keyword arguments of the ``xgboost.spark`` estimators.

    The single-machine trainers build ``xgb.train`` dicts (``eta``, ``seed``, ``nthread``, rounds as an
    argument); the Spark estimators take sklearn-style names. Thread count and device are dropped
    because the cluster decides them; group arrays are rejected because groups come from a column.
    """
    grouped = _GROUP_PARAMS & set(params)
    if grouped:
        raise ValueError(f"pass query groups as the qid column, not as params {sorted(grouped)}")
    out = {_RENAMED_PARAMS.get(key, key): value for key, value in params.items() if key not in _CLUSTER_PARAMS}
    if num_boost_round is not None:
        out["n_estimators"] = num_boost_round
    return out


def train_xgboost_on_spark(
    frame: DataFrame,
    features: Sequence[str],
    label: str,
    params: Mapping[str, Any],
    *,
    num_boost_round: int | None = None,
    qid: str | None = None,
    weight: str | None = None,
    validation: str | None = None,
    config: DistributedConfig | None = None,
    device: str = "auto",
) -> SparkXGBRegressorModel | SparkXGBRankerModel:
    """Fit one XGBoost model across the cluster's executors and return the fitted Spark model.

    ``features`` are numeric columns (integer-code categorical ones and say so with
    ``feature_types`` in ``params``); they are cast to float32 as the single-machine design matrices
    are. With ``qid`` (or a ``rank:`` objective) the model is a ranker and xgboost.spark keeps each
    query group in one partition. ``validation`` names a boolean column of held-out rows, needed for
    early stopping. The returned model's ``get_booster()`` is a plain ``xgboost.Booster`` (save it in
    the registry as the single-machine path does) and its ``transform(frame)`` scores in parallel on
    the executors.
    """
    config = config or DistributedConfig()
    kwargs = spark_xgb_params(params, num_boost_round)
    ranking = qid is not None or str(kwargs.get("objective", "")).startswith("rank:")
    if ranking and qid is None:
        raise ValueError(f"objective {kwargs['objective']!r} ranks within query groups: pass the qid column")
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBRanker, SparkXGBRegressor

    extra = [name for name in (qid, weight, validation) if name is not None]
    columns = [F.col(name).cast("float").alias(name) for name in features]
    estimator_class = SparkXGBRanker if ranking else SparkXGBRegressor
    estimator = estimator_class(
        features_col=list(features),
        label_col=label,
        num_workers=config.num_workers,
        device=resolve_device(device),
        repartition_random_shuffle=config.repartition_random_shuffle,
        **({"qid_col": qid} if qid else {}),
        **({"weight_col": weight} if weight else {}),
        **({"validation_indicator_col": validation} if validation else {}),
        **kwargs,
    )
    log.info(
        "training %s on Spark: %d workers, %d features, device %s",
        estimator_class.__name__,
        config.num_workers,
        len(features),
        estimator.getOrDefault("device"),
    )
    return estimator.fit(frame.select(*columns, F.col(label).cast("float").alias(label), *extra))


def torch_process_group(device: str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` prepared and return ``(rank, world_size)``.

    Call it first thing in a training function: under TorchDistributor it initialises
    torch.distributed (NCCL on CUDA, Gloo on CPU) from the environment torchrun sets; run in-process
    (the single-machine default) it returns ``(0, 1)`` and initialises nothing, so one training
    function serves both paths.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return dist.get_rank(), world_size


def fit_torch(
    train_fn: Callable[..., T], *args: Any, config: DistributedConfig | None = None, device: str = "auto"
) -> T:
    """Run ``train_fn(*args)`` in this process (default) or on ``num_workers`` processes via TorchDistributor.

    With ``config.torch_distributor`` the function and its arguments are pickled to every process
    (so they must be picklable and small: pass paths or table versions, not data). Every process
    writes its return value and the last one to finish wins, so return only what all ranks agree
    on (weights after all-reduced steps, or a path rank 0 saved the model to). That path needs an
    active SparkSession on the cluster.
    """
    config = config or DistributedConfig()
    if not config.torch_distributor:
        return train_fn(*args)
    from pyspark.ml.torch.distributor import TorchDistributor

    use_gpu = resolve_device(device) == "cuda"
    log.info(
        "training %s with TorchDistributor: %d processes on %s (%s)",
        getattr(train_fn, "__name__", "train_fn"),
        config.num_workers,
        "the driver's node" if config.torch_local_mode else "executors",
        "cuda" if use_gpu else "cpu",
    )
    distributor = TorchDistributor(
        num_processes=config.num_workers, local_mode=config.torch_local_mode, use_gpu=use_gpu
    )
    return distributor.run(train_fn, *args)
