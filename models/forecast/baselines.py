"""Point-forecast baselines the model must beat, on the observed (uncensored-as-recorded) sales series.

Baselines see sales as recorded, stockout zeros included: that is what a merchandiser's spreadsheet
would do, and what the model's handling of censoring is measured against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.forecast.features import DemandPanel

BASELINES = ("seasonal_naive", "moving_average", "exponential_smoothing")


def seasonal_naive(panel: DemandPanel, end: int, horizon: int) -> np.ndarray:
    """Same weekday of the last observed week, shape (n_skus, horizon); missing days count as zero."""
    steps = np.arange(1, horizon + 1)
    source = end + steps - 7 * np.ceil(steps / 7).astype(np.int64)
    values = np.where(source >= 0, panel.units[:, np.maximum(source, 0)], np.nan)
    return np.nan_to_num(values)


def moving_average(panel: DemandPanel, end: int, horizon: int, days: int = 28) -> np.ndarray:
    """Mean daily sales over the last ``days`` observed days, flat over the horizon."""
    total, count = panel.window_sum("raw_sum", end, days), panel.window_sum("raw_count", end, days)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(count > 0, total / count, 0.0)
    return np.repeat(level[:, None], horizon, axis=1)


def exponential_smoothing(
    panel: DemandPanel, end: int, horizon: int, alphas: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5)
) -> np.ndarray:
    """Simple exponential smoothing, flat over the horizon; each SKU keeps the alpha with least one-step SSE."""
    grid = np.asarray(alphas, dtype=float)[:, None]
    n_skus = panel.units.shape[0]
    level = np.zeros((len(grid), n_skus))
    sse = np.zeros((len(grid), n_skus))
    started = np.zeros(n_skus, dtype=bool)
    for day in range(end + 1):
        value = panel.units[:, day]
        seen = ~np.isnan(value)
        error = np.where(seen & started, value - level, 0.0)
        sse += error**2
        level = np.where(seen & started, level + grid * error, level)
        level = np.where(seen & ~started, value, level)
        started |= seen
    best = level[np.argmin(sse, axis=0), np.arange(n_skus)]
    return np.repeat(best[:, None], horizon, axis=1)


def empirical_quantiles(
    panel: DemandPanel, end: int, horizon: int, quantiles: Sequence[float], days: int = 28
) -> np.ndarray:
    """Quantiles of each SKU's observed daily sales over the last ``days`` days, flat over the horizon.

    Shape (n_skus, horizon, len(quantiles)). The served forecast while no model has passed its gate:
    the moving-average baseline's window, read as a distribution so planners still get P10/P50/P90.
    SKUs with no observed day in the window forecast zero.
    """
    window = panel.units[:, max(end + 1 - days, 0) : end + 1]
    observed = ~np.isnan(window).all(axis=1)
    levels = np.zeros((len(window), len(quantiles)))
    levels[observed] = np.nanquantile(window[observed], quantiles, axis=1).T
    return np.repeat(levels[:, None, :], horizon, axis=1)


def forecast_baselines(panel: DemandPanel, end: int, horizon: int, ma_days: int, alphas: Sequence[float]):
    """All baselines at one origin, by name."""
    return {
        "seasonal_naive": seasonal_naive(panel, end, horizon),
        "moving_average": moving_average(panel, end, horizon, ma_days),
        "exponential_smoothing": exponential_smoothing(panel, end, horizon, alphas),
    }
