"""Nightly forecaster tasks: train a candidate, backtest and gate it, score with the promoted version.

Each task function is what one Airflow task calls: it takes the run date and run id, does its I/O
through the lake and the model registry, and returns a small JSON-serialisable summary for XCom.
Point in time: a run for day D reads demand rows with ``feature_date <= D`` only.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from models.device import resolve_device
from models.forecast.backtest import decide_promotion, fold_origins, run_backtest
from models.forecast.baselines import BASELINES, empirical_quantiles, moving_average
from models.forecast.features import (
    DEMAND_COLUMNS,
    FEATURES,
    DemandPanel,
    build_panel,
    build_scoring_frame,
    build_training_frame,
)
from models.forecast.inventory import plan_inventory
from models.forecast.metrics import QUANTILE_COLUMNS, metric_value
from models.forecast.model import QuantileForecaster, fit_quantile_model
from models.registry import CANDIDATE, ModelRegistry, ModelVersion, RegistryError, Status, metric_rows
from shopml.catalog import (
    GOLD_DEMAND_FORECASTS,
    GOLD_INVENTORY_PLAN,
    GOLD_SKU_DAILY_DEMAND,
    OPS_MODEL_METRICS,
    SILVER_INVENTORY_SNAPSHOTS,
    spec,
)
from shopml.config.forecast import ForecastConfig
from shopml.errors import PermanentError
from shopml.lake import Lake, date_window
from shopml.notify import alert
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

MODEL_NAME = "forecaster"
DEMAND_TABLE = GOLD_SKU_DAILY_DEMAND
INVENTORY_TABLE = SILVER_INVENTORY_SNAPSHOTS
FORECAST_TABLE = GOLD_DEMAND_FORECASTS
PLAN_TABLE = GOLD_INVENTORY_PLAN
METRICS_TABLE = OPS_MODEL_METRICS
# What scoring serves while no forecaster has passed its gate.
FALLBACK_VERSION = "baseline:empirical_quantiles"

FORECAST_SCHEMA = spec(FORECAST_TABLE).arrow_schema()
# What the output gate checks: finite and non-negative; the quantiles also non-crossing.
FORECAST_VALUES = ("mean", *QUANTILE_COLUMNS)
PLAN_SCHEMA = spec(PLAN_TABLE).arrow_schema()


def baseline_forecasts(panel: DemandPanel, run_date: date, config: ForecastConfig, skus: np.ndarray) -> pd.DataFrame:
    """Forecast rows of the empirical-quantile baseline for ``skus``: the moving average's window gives the
    mean (the moving average itself) and the quantiles."""
    end = panel.index_of(run_date)
    quantiles = empirical_quantiles(panel, end, config.horizon, config.quantiles, config.moving_average_days)
    mean = moving_average(panel, end, config.horizon, config.moving_average_days)
    rows = np.nonzero(np.isin(panel.skus, skus))[0]
    horizon = np.arange(1, config.horizon + 1)
    return forecast_rows(
        np.repeat(panel.skus[rows], config.horizon),
        np.tile([run_date + timedelta(days=int(day)) for day in horizon], len(rows)),
        np.tile(horizon, len(rows)),
        mean[rows].ravel(),
        quantiles[rows].reshape(-1, len(QUANTILE_COLUMNS)),
    )


def forecast_rows(
    skus: np.ndarray, dates: np.ndarray, horizon_days: np.ndarray, mean: np.ndarray, quantiles: np.ndarray
) -> pd.DataFrame:
    """``gold.demand_forecasts`` rows from aligned columns, the (n,) mean and an (n, 3) array of P10/P50/P90."""
    return pd.DataFrame(
        {
            "sku": skus,
            "forecast_date": dates,
            "horizon_day": horizon_days.astype(np.int32),
            "mean": mean,
            **{column: quantiles[:, i] for i, column in enumerate(QUANTILE_COLUMNS)},
        }
    )


class ForecastOutputError(PermanentError, ValueError):
    """Forecasts failed the output gate and were not published."""


# ---- pure checks ------------------------------------------------------------------------------


def check_forecasts(forecasts: pd.DataFrame, active_skus: np.ndarray, horizon: int) -> None:
    """Output gate: finite, non-negative mean and quantiles, non-crossing quantiles, all H days for every
    active SKU. The mean may lie outside P10-P90: on lumpy demand it is often above a zero P90.

    Raises:
        ForecastOutputError: naming every problem found, with examples.
    """
    values = forecasts.loc[:, list(FORECAST_VALUES)].to_numpy(dtype=float)
    problems = []
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        problems.append(f"{bad.sum()} row(s) with non-finite forecasts, e.g. {_examples(forecasts, bad)}")
    negative = (values < 0).any(axis=1)
    if negative.any():
        problems.append(f"{negative.sum()} row(s) with negative forecasts, e.g. {_examples(forecasts, negative)}")
    crossed = (np.diff(values[:, 1:], axis=1) < 0).any(axis=1)
    if crossed.any():
        problems.append(f"{crossed.sum()} row(s) with crossed quantiles, e.g. {_examples(forecasts, crossed)}")
    days = forecasts.groupby("sku")["horizon_day"].nunique()
    missing = sorted(str(sku) for sku in set(active_skus) - set(days[days == horizon].index))
    if missing:
        problems.append(f"{len(missing)} active SKU(s) without all {horizon} forecast days, e.g. {missing[:5]}")
    if problems:
        raise ForecastOutputError("forecast output gate failed: " + "; ".join(problems))


def _examples(frame: pd.DataFrame, mask: np.ndarray) -> list[str]:
    return sorted(frame.loc[mask, "sku"].astype(str).unique())[:5]


def active_skus(demand: pd.DataFrame, run_date: date, lookback_days: int) -> np.ndarray:
    """SKUs with a demand row in the ``lookback_days`` days up to ``run_date``: the ones that must be forecast."""
    dates = pd.to_datetime(demand["feature_date"]).dt.date
    recent = (dates <= run_date) & (dates > run_date - timedelta(days=lookback_days))
    return np.sort(demand.loc[recent, "sku"].astype(str).unique())


def latest_snapshots(snapshots: pd.DataFrame) -> pd.DataFrame:
    """The newest snapshot row per SKU (by snapshot_date, then snapshot_ts)."""
    ordered = snapshots.sort_values(["sku", "snapshot_date", "snapshot_ts"])
    return ordered.groupby("sku", as_index=False).tail(1).reset_index(drop=True)


# ---- I/O helpers ------------------------------------------------------------------------------


def read_demand(lake: Lake, run_date: date, config: ForecastConfig, version: int | None = None) -> pd.DataFrame:
    """Demand rows of the history window up to ``run_date`` (never later days), optionally at a table version."""
    first = run_date - timedelta(days=config.history_days - 1)
    return lake.read_pandas(
        DEMAND_TABLE,
        columns=list(DEMAND_COLUMNS),
        filter=date_window("feature_date", run_date, first),
        version=version,
    )


def read_inventory(lake: Lake, run_date: date) -> pd.DataFrame | None:
    """Latest snapshot per SKU on or before ``run_date``; None when the shop has no inventory feed."""
    if not lake.exists(INVENTORY_TABLE):
        return None
    snapshots = lake.read_pandas(
        INVENTORY_TABLE,
        columns=["snapshot_date", "sku", "on_hand", "on_order", "lead_time_days", "snapshot_ts"],
        filter=date_window("snapshot_date", run_date),
    )
    return None if snapshots.empty else latest_snapshots(snapshots)


def _stamp(frame: pd.DataFrame, schema: pa.Schema, model_version: str, run_id: str, run_date: date) -> pa.Table:
    stamped = frame.assign(
        model_version=model_version,
        run_id=run_id,
        generated_at=pd.Timestamp(datetime.now(UTC)),
        scored_date=run_date,
    )
    return pa.Table.from_pandas(stamped, schema=schema, preserve_index=False)


def _find_candidate(registry: ModelRegistry, run_id: str) -> ModelVersion:
    model = registry.trained_by(MODEL_NAME, run_id)
    if model is None:
        raise RegistryError(f"no {MODEL_NAME} candidate trained by run {run_id}: run train_forecaster first")
    return model


# ---- DAG tasks --------------------------------------------------------------------------------


def train_forecaster(
    run_date: date, run_id: str, settings: Settings | None = None, config: ForecastConfig | None = None
) -> dict:
    """Fit a candidate on demand up to ``run_date`` and register it (not promoted) with its lineage."""
    settings = settings or get_settings()
    config = config or settings.forecast
    lake = Lake(settings)
    device = resolve_device(settings.device.value)
    versions = {DEMAND_TABLE: lake.version(DEMAND_TABLE)}
    demand = read_demand(lake, run_date, config, version=versions[DEMAND_TABLE])
    panel = build_panel(demand, run_date, config.history_days)
    started = time.perf_counter()
    frame = build_training_frame(panel, run_date, config, settings.seed)
    model = fit_quantile_model(frame, config, device, settings.seed)
    seconds = round(time.perf_counter() - started, 3)
    registry = ModelRegistry(settings.models)
    candidate = registry.create_version(MODEL_NAME, run_id)
    model.save(candidate.path)
    registry.save_metadata(
        candidate,
        {
            "run_id": run_id,
            "run_date": run_date.isoformat(),
            "status": Status.CANDIDATE,
            "config": config.model_dump(mode="json"),
            "features": list(FEATURES),
            "calibration_offsets": {group: list(values) for group, values in model.offsets.items()},
            "table_versions": versions,
            "device": device,
            "train_rows": len(frame),
            "train_seconds": seconds,
            "skus": len(panel.skus),
        },
    )
    log.info(
        "trained %s %s on %d rows of %d SKUs in %.1fs",
        MODEL_NAME,
        candidate.version,
        len(frame),
        len(panel.skus),
        seconds,
    )
    return {
        "model_version": candidate.version,
        "train_rows": len(frame),
        "skus": len(panel.skus),
        "train_seconds": seconds,
        "device": device,
    }


def backtest_and_gate(run_date: date, run_id: str, settings: Settings | None = None) -> dict:
    """Backtest this run's candidate against the baselines; promote it only if it passes the gate.

    The backtest reads the demand table at the version the candidate was trained on and uses the
    candidate's own configuration. Metrics go to ``ops.model_metrics`` and the registry metadata.
    """
    settings = settings or get_settings()
    lake = Lake(settings)
    registry = ModelRegistry(settings.models)
    candidate = _find_candidate(registry, run_id)
    meta = candidate.metadata
    config = ForecastConfig.model_validate(meta["config"])
    demand = read_demand(lake, run_date, config, version=meta["table_versions"][DEMAND_TABLE])
    panel = build_panel(demand, run_date, config.history_days)
    device = resolve_device(settings.device.value)
    _, metrics, timings = run_backtest(panel, run_date, config, device, settings.seed)
    passed, verdict = decide_promotion(metrics, config)
    reason = registry.judge(MODEL_NAME, candidate, passed, verdict)
    log.info("%s gate: %s", MODEL_NAME, reason)
    overall = metrics[metrics["segment"] == "overall"]
    registry.update_metadata(
        candidate,
        status=Status.PROMOTED if passed else Status.REJECTED,
        gate_reason=reason,
        metrics={f"{row.candidate}.{row.metric}": row.value for row in overall.itertuples()},
        metrics_by_segment=metrics.to_dict(orient="records"),
        backtest={
            "origins": [origin.isoformat() for origin in fold_origins(run_date, config)],
            "fold_days": config.fold_days,
            "timings": timings,
        },
    )
    lake.write_arrow(metric_rows(metrics, MODEL_NAME, run_id, candidate.version, passed), METRICS_TABLE, mode="append")
    current = registry.current(MODEL_NAME)
    return {
        "promoted": passed,
        "reason": reason,
        "model_version": candidate.version,
        "current_version": current.version if current else None,
        "wape": metric_value(metrics, CANDIDATE, "wape"),
        "best_baseline_wape": min(metric_value(metrics, name, "wape") for name in BASELINES),
        "wql": metric_value(metrics, CANDIDATE, "wql"),
        "best_baseline_wql": min(metric_value(metrics, name, "wql") for name in BASELINES),
        "bias": metric_value(metrics, CANDIDATE, "bias"),
        "coverage_p10_p90": metric_value(metrics, CANDIDATE, "coverage_p10_p90"),
    }


def score_forecasts(run_date: date, run_id: str, settings: Settings | None = None) -> dict:
    """Forecast every active SKU with the promoted version, gate the output, write forecasts and the plan.

    Until a forecaster has passed its gate (a shop's first runs) the storefront and planners get the
    empirical-quantile baseline (``FALLBACK_VERSION``), labelled as such and alerted, never nothing.

    Without an inventory feed (no ``silver.inventory_snapshots`` or no snapshot up to the run date)
    only forecasts are published, and the result says so.
    """
    settings = settings or get_settings()
    lake = Lake(settings)
    current = ModelRegistry(settings.models).current(MODEL_NAME)
    config = settings.forecast if current is None else ForecastConfig.model_validate(current.metadata["config"])
    demand = read_demand(lake, run_date, config)
    skus = active_skus(demand, run_date, config.active_lookback_days)
    if len(skus) == 0:
        raise ForecastOutputError(
            f"no active SKUs: no demand rows in the {config.active_lookback_days} days to {run_date}"
        )
    panel = build_panel(demand, run_date, config.history_days)
    if current is None:
        version = FALLBACK_VERSION
        forecasts = baseline_forecasts(panel, run_date, config, skus)
        alert(
            "model_fallback",
            summary=f"no forecaster has passed its gate yet: serving the {FALLBACK_VERSION} baseline for {run_date}",
            details={"skus": len(skus)},
            settings=settings,
        )
    else:
        version = current.version
        model = QuantileForecaster.load(current.path, resolve_device(settings.device.value))
        frame = build_scoring_frame(panel, run_date, config, skus=skus)
        forecasts = forecast_rows(
            frame["sku"].to_numpy(),
            frame["forecast_date"].to_numpy(),
            frame["horizon_day"].to_numpy(),
            model.predict_mean(frame),
            model.predict(frame),
        )
    check_forecasts(forecasts, skus, config.horizon)
    replace = f"scored_date = '{run_date.isoformat()}'"
    lake.write_arrow(
        _stamp(forecasts, FORECAST_SCHEMA, version, run_id, run_date), FORECAST_TABLE, replace_where=replace
    )
    result = {"model_version": version, "skus": len(skus), "forecast_rows": len(forecasts)}
    snapshots = read_inventory(lake, run_date)
    if snapshots is None:
        note = f"no inventory feed ({INVENTORY_TABLE} has no snapshot up to {run_date}): published forecasts only"
        log.warning(note)
        return {**result, "inventory": note, "plan_rows": 0}
    plan = plan_inventory(forecasts, snapshots, config)
    lake.write_arrow(_stamp(plan, PLAN_SCHEMA, version, run_id, run_date), PLAN_TABLE, replace_where=replace)
    without = len(skus) - len(plan)
    if without:
        log.warning("%d forecast SKU(s) have no inventory snapshot and no plan row", without)
    return {
        **result,
        "inventory": f"planned {len(plan)} SKU(s); {without} without a snapshot",
        "plan_rows": len(plan),
        "status_counts": {str(k): int(v) for k, v in plan["status"].value_counts().sort_index().items()},
    }
