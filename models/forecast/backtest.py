"""Rolling-origin backtest of a forecaster configuration against the baselines, and the promotion gate.

Each fold refits the model on days up to its origin only (no leakage) and forecasts the next
``fold_days`` days; the baselines forecast from the same origins. Censored (stockout or missing)
days are not scored: their recorded zero is not the demand the forecast is for.

The gate cannot be won by forecasting too little: the mean forecast must beat the best baseline's
WAPE, the quantiles must beat every baseline's wQL (a proper score: under- and over-forecasting both
cost), the horizon totals must be nearly unbiased, and the P10-P90 interval must cover as promised.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from models.forecast.baselines import BASELINES, empirical_quantiles, forecast_baselines
from models.forecast.features import (
    DEMAND_CLASSES,
    DemandPanel,
    build_scoring_frame,
    build_training_frame,
    demand_class_codes,
)
from models.forecast.metrics import QUANTILE_COLUMNS, compute_metrics, metric_value, velocity_band
from models.forecast.model import fit_quantile_model
from models.registry import CANDIDATE
from shopml.config.forecast import DEFAULT_CONFIG, ForecastConfig

log = logging.getLogger(__name__)


def fold_origins(run_date: date, config: ForecastConfig = DEFAULT_CONFIG) -> list[date]:
    """Origins of the folds, oldest first; the newest fold's last scored day is ``run_date``."""
    return [run_date - timedelta(days=config.fold_days * k) for k in range(config.backtest_folds, 0, -1)]


def _weekly_naive_scale(panel: DemandPanel, end: int) -> np.ndarray:
    """Per SKU in-sample MAE of the weekly naive forecast up to ``end``: the MASE denominator."""
    values = panel.in_stock[:, : end + 1]
    diffs = np.abs(values[:, 7:] - values[:, :-7])
    count = (~np.isnan(diffs)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, np.nansum(diffs, axis=1) / count, 0.0)


def evaluate_fold(
    panel: DemandPanel, origin: date, fold: int, config: ForecastConfig, device: str, seed: int
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Refit at ``origin``, forecast ``fold_days`` ahead, and line up actuals, model and baselines per row."""
    started = time.perf_counter()
    model = fit_quantile_model(build_training_frame(panel, origin, config, seed), config, device, seed)
    trained = time.perf_counter()
    scoring = build_scoring_frame(panel, origin, config)
    forecasts = model.predict(scoring)
    mean = model.predict_mean(scoring)
    predicted = time.perf_counter()
    end = panel.index_of(origin)
    days = min(config.horizon, config.fold_days)
    sku_rows = np.searchsorted(panel.skus, scoring["sku"].to_numpy())
    steps = scoring["horizon_day"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "fold": fold,
            "sku": scoring["sku"].to_numpy(),
            "category": scoring["category"].to_numpy(),
            "horizon_day": steps,
            "actual": panel.in_stock[sku_rows, end + steps],
            "mean": mean,
            **{column: forecasts[:, i] for i, column in enumerate(QUANTILE_COLUMNS)},
        }
    )
    for name, values in forecast_baselines(panel, end, config).items():
        frame[name] = values[sku_rows, steps - 1]
    # The served fallback: the moving average's window read as a distribution (its quantiles for wQL).
    window = empirical_quantiles(panel, end, config.horizon, config.quantiles, config.moving_average_days)
    for i, column in enumerate(QUANTILE_COLUMNS):
        frame[f"moving_average_{column}"] = window[sku_rows, steps - 1, i]
    level = panel.window_sum("sum", end, 91) / np.maximum(panel.window_sum("count", end, 91), 1)
    frame["velocity"] = velocity_band(level, config.velocity_bands)[sku_rows]
    classes = demand_class_codes(panel, end, config.demand_class_days, config.demand_class_cutoffs)
    frame["demand_class"] = np.asarray(DEMAND_CLASSES)[classes][sku_rows]
    frame["mase_scale"] = _weekly_naive_scale(panel, end)[sku_rows]
    frame = frame[(frame["horizon_day"] <= days) & frame["actual"].notna()]
    timing = {"train_s": trained - started, "forecast_s": predicted - trained}
    log.info("fold %d at %s: %d scored rows, %s", fold, origin, len(frame), timing)
    return frame.reset_index(drop=True), timing


def run_backtest(
    panel: DemandPanel, run_date: date, config: ForecastConfig = DEFAULT_CONFIG, device: str = "cpu", seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, float]]]:
    """All folds: (evaluation rows, metrics frame, per-fold timings)."""
    parts, timings = [], []
    for fold, origin in enumerate(fold_origins(run_date, config), start=1):
        part, timing = evaluate_fold(panel, origin, fold, config, device, seed)
        parts.append(part)
        timings.append(timing)
    evaluation = pd.concat(parts, ignore_index=True)
    if evaluation.empty:
        raise ValueError(f"backtest up to {run_date} has no uncensored days to score")
    return evaluation, compute_metrics(evaluation, config.quantiles, BASELINES), timings


def decide_promotion(metrics: pd.DataFrame, config: ForecastConfig = DEFAULT_CONFIG) -> tuple[bool, str]:
    """Promote only when the mean forecast beats the best baseline's WAPE, the quantiles beat every
    baseline's wQL, |bias| is within ``max_abs_bias`` and P10-P90 coverage is in the band.

    Returns:
        (promoted, reason): the reason names every failing metric with its value, or all of them on a pass.
    """
    model_wape = metric_value(metrics, CANDIDATE, "wape")
    best = min(BASELINES, key=lambda name: metric_value(metrics, name, "wape"))
    best_wape = metric_value(metrics, best, "wape")
    gain = 1 - model_wape / best_wape if best_wape > 0 else float("-inf")
    model_wql = metric_value(metrics, CANDIDATE, "wql")
    best_wql_name = min(BASELINES, key=lambda name: metric_value(metrics, name, "wql"))
    best_wql = metric_value(metrics, best_wql_name, "wql")
    model_bias = metric_value(metrics, CANDIDATE, "bias")
    covered = metric_value(metrics, CANDIDATE, "coverage_p10_p90")
    low, high = config.coverage_band
    wape_text = f"WAPE of the mean {model_wape:.3f} vs best baseline {best} {best_wape:.3f} ({gain:+.1%})"
    wql_text = f"wQL {model_wql:.3f} vs best baseline {best_wql_name} {best_wql:.3f}"
    bias_text = f"bias {model_bias:+.2f}"
    coverage_text = f"P10-P90 coverage {covered:.3f} (band {low:.2f}-{high:.2f})"
    problems = []
    if not gain > config.min_wape_gain:
        problems.append(f"does not beat the best baseline by more than {config.min_wape_gain:.0%}: {wape_text}")
    if not model_wql < best_wql:
        problems.append(f"quantiles not better than every baseline: {wql_text}")
    if not abs(model_bias) <= config.max_abs_bias:
        problems.append(f"{bias_text} outside ±{config.max_abs_bias:.2f}")
    if not low <= covered <= high:
        problems.append(f"interval coverage outside the band: {coverage_text}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{wape_text}; {wql_text}; {bias_text} (within ±{config.max_abs_bias:.2f}); {coverage_text}"
