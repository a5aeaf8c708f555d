"""Forecast accuracy metrics, overall and by category and velocity band, for the model and the baselines.

All functions take the evaluation frame of a backtest: one row per (fold, SKU, forecast day) with the
observed ``actual`` (censored days already removed: a stockout day's zero is not demand), the model's
``mean`` and ``p10``/``p50``/``p90``, and one point-forecast column per baseline (a baseline that also
has quantiles, as the served fallback does, adds ``<name>_p10``/``_p50``/``_p90``).

Point metrics (WAPE, bias, MASE) score the *mean* forecast: a median wins WAPE on lumpy demand by
forecasting too little, which a planner pays for in stockouts. wQL scores the quantiles; a point
forecast's wQL is its own value at every quantile, which over symmetric quantiles equals its WAPE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.registry import CANDIDATE

QUANTILE_COLUMNS = ("p10", "p50", "p90")
SEGMENT_KEYS = ("category", "velocity", "demand_class")


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |error| / sum actual (volume-weighted, zero-safe per row)."""
    total = float(np.sum(actual))
    return float(np.sum(np.abs(actual - forecast)) / total) if total > 0 else float("nan")


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Relative bias: sum (forecast - actual) / sum actual; positive means over-forecasting."""
    total = float(np.sum(actual))
    return float(np.sum(forecast - actual) / total) if total > 0 else float("nan")


def pinball(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """Mean pinball (quantile) loss at ``quantile``."""
    error = actual - forecast
    return float(np.mean(np.maximum(quantile * error, (quantile - 1) * error)))


def weighted_quantile_loss(actual: np.ndarray, forecasts: np.ndarray, quantiles: Sequence[float]) -> float:
    """wQL as in GluonTS: per quantile, 2 * summed pinball loss / summed actual; averaged over quantiles.

    Args:
        forecasts: (rows, len(quantiles)) quantile forecasts.
    """
    total = float(np.sum(actual))
    if total <= 0:
        return float("nan")
    losses = [2 * pinball(actual, forecasts[:, i], q) * len(actual) / total for i, q in enumerate(quantiles)]
    return float(np.mean(losses))


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of actuals inside [low, high]: nominal 0.8 for a P10-P90 interval."""
    return float(np.mean((actual >= low) & (actual <= high)))


def mase(frame: pd.DataFrame, column: str) -> float:
    """Mean absolute scaled error: per (fold, SKU) MAE over the SKU's in-sample weekly-naive MAE, averaged.

    Series with a zero in-sample scale (no variation before the origin) are left out.
    """
    usable = frame[frame["mase_scale"] > 0]
    if usable.empty:
        return float("nan")
    errors = (usable["actual"] - usable[column]).abs() / usable["mase_scale"]
    return float(errors.groupby([usable["fold"], usable["sku"]]).mean().mean())


def velocity_band(mean_units: np.ndarray, bands: tuple[float, float]) -> np.ndarray:
    """slow / medium / fast by mean units per day, split at ``bands``."""
    return np.select([mean_units < bands[0], mean_units < bands[1]], ["slow", "medium"], default="fast")


def candidate_columns(name: str, frame: pd.DataFrame) -> tuple[str, tuple[str, ...] | None]:
    """(point column, quantile columns or None) of a candidate in an evaluation frame."""
    if name == CANDIDATE:
        return "mean", QUANTILE_COLUMNS
    columns = tuple(f"{name}_{column}" for column in QUANTILE_COLUMNS)
    return name, columns if set(columns) <= set(frame.columns) else None


def _segment_metrics(frame: pd.DataFrame, quantiles: Sequence[float], baselines: Sequence[str]) -> dict[tuple, float]:
    actual = frame["actual"].to_numpy()
    out: dict[tuple, float] = {}
    for name in (CANDIDATE, *baselines):
        point_column, quantile_columns = candidate_columns(name, frame)
        point = frame[point_column].to_numpy()
        out[(name, "wape")] = wape(actual, point)
        out[(name, "mase")] = mase(frame, point_column)
        out[(name, "bias")] = bias(actual, point)
        if quantile_columns is None:
            out[(name, "wql")] = weighted_quantile_loss(actual, np.repeat(point[:, None], len(quantiles), 1), quantiles)
            continue
        values = frame.loc[:, list(quantile_columns)].to_numpy(dtype=float)
        out[(name, "wql")] = weighted_quantile_loss(actual, values, quantiles)
        out[(name, "coverage_p10_p90")] = coverage(actual, values[:, 0], values[:, -1])
    out[(CANDIDATE, "wape_p50")] = wape(actual, frame["p50"].to_numpy())
    out[(CANDIDATE, "bias_p50")] = bias(actual, frame["p50"].to_numpy())
    for column, quantile in zip(QUANTILE_COLUMNS, quantiles, strict=True):
        out[(CANDIDATE, f"pinball_{column}")] = pinball(actual, frame[column].to_numpy(), quantile)
    out[(CANDIDATE, "rows")] = float(len(frame))
    return out


def compute_metrics(evaluation: pd.DataFrame, quantiles: Sequence[float], baselines: Sequence[str]) -> pd.DataFrame:
    """Long metrics frame (candidate, metric, segment, value): overall and per category, velocity band, demand class.

    Segment keys missing from the frame are skipped.
    """
    segments = [("overall", evaluation)]
    for key in SEGMENT_KEYS:
        if key in evaluation.columns:
            segments += [(f"{key}={value}", part) for value, part in evaluation.groupby(key, sort=True)]
    rows = [
        {"candidate": candidate, "metric": metric, "segment": segment, "value": value}
        for segment, part in segments
        for (candidate, metric), value in _segment_metrics(part, quantiles, baselines).items()
    ]
    return pd.DataFrame(rows, columns=["candidate", "metric", "segment", "value"])


def metric_value(metrics: pd.DataFrame, candidate: str, metric: str, segment: str = "overall") -> float:
    """One value of a metrics frame."""
    hit = metrics[(metrics["candidate"] == candidate) & (metrics["metric"] == metric) & (metrics["segment"] == segment)]
    if hit.empty:
        raise KeyError(f"no metric {metric} for {candidate} in segment {segment}")
    return float(hit["value"].iloc[0])
