"""Point-forecast baselines the model must beat, on the observed (uncensored-as-recorded) sales series.

Baselines see sales as recorded, stockout zeros included: that is what a merchandiser's spreadsheet
would do, and what the model's handling of censoring is measured against. Days without a row (before
a SKU's first sale, or a shop's closed day with no row) are skipped, not read as zero.

Croston, SBA and TSB are the standard forecasts of intermittent demand (Syntetos-Boylan's
intermittent and lumpy classes), where a moving average of mostly-zero days is noise. They are
written here over the whole panel, one pass over the days, as statsforecast would do per series.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.forecast.features import DemandPanel
from shopml.config.forecast import ForecastConfig

BASELINES = ("seasonal_naive", "moving_average", "exponential_smoothing", "croston", "sba", "tsb")


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


def _history_means(panel: DemandPanel, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SKU over its observed days up to ``end``: mean demand size, mean interval, share of demand days.

    The smoothed levels start from these (``init="mean"`` of R's tsintermittent), not from the first
    demand: order-line exports start a SKU's series on its first sale, so a first interval of one day
    would make Croston forecast a whole order every day for months.
    """
    units = panel.units[:, : end + 1]
    observed = (~np.isnan(units)).sum(axis=1)
    demands = (units > 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.where(demands > 0, np.nansum(np.where(units > 0, units, 0.0), axis=1) / demands, 0.0)
        interval = np.where(demands > 0, observed / demands, 1.0)
        share = np.where(observed > 0, demands / observed, 0.0)
    return size, interval, share


def _croston_levels(panel: DemandPanel, end: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Croston's smoothed demand size and inter-demand interval per SKU after day ``end``.

    Both start at the SKU's history means and are updated only on days with demand, the interval
    counting observed days since the previous demand (or since the first observed day). SKUs that
    never sold have size 0.
    """
    size, interval, _ = _history_means(panel, end)
    since = np.zeros(len(size))
    for day in range(end + 1):
        value = panel.units[:, day]
        since += ~np.isnan(value)
        demand = value > 0
        size = np.where(demand, size + alpha * (value - size), size)
        interval = np.where(demand, interval + alpha * (since - interval), interval)
        since = np.where(demand, 0.0, since)
    return size, interval


def croston(panel: DemandPanel, end: int, horizon: int, alpha: float = 0.1) -> np.ndarray:
    """Croston's method: smoothed demand size over smoothed interval, flat over the horizon."""
    size, interval = _croston_levels(panel, end, alpha)
    return np.repeat((size / interval)[:, None], horizon, axis=1)


def sba(panel: DemandPanel, end: int, horizon: int, alpha: float = 0.1) -> np.ndarray:
    """Syntetos-Boylan approximation: Croston times (1 - alpha / 2), which removes Croston's upward bias."""
    return (1 - alpha / 2) * croston(panel, end, horizon, alpha)


def tsb(panel: DemandPanel, end: int, horizon: int, alphas: tuple[float, float] = (0.1, 0.1)) -> np.ndarray:
    """Teunter-Syntetos-Babai: smoothed demand size times smoothed probability of a demand day.

    The probability is updated every observed day (a SKU that stops selling decays towards zero,
    which Croston never does); the size only on days with demand. Both start at the history means.
    """
    alpha_size, alpha_probability = alphas
    size, _, probability = _history_means(panel, end)
    for day in range(end + 1):
        value = panel.units[:, day]
        demand = value > 0
        probability = np.where(np.isnan(value), probability, probability + alpha_probability * (demand - probability))
        size = np.where(demand, size + alpha_size * (value - size), size)
    return np.repeat((size * probability)[:, None], horizon, axis=1)


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


def forecast_baselines(panel: DemandPanel, end: int, config: ForecastConfig) -> dict[str, np.ndarray]:
    """All point baselines at one origin, by name, each (n_skus, horizon)."""
    horizon = config.horizon
    return {
        "seasonal_naive": seasonal_naive(panel, end, horizon),
        "moving_average": moving_average(panel, end, horizon, config.moving_average_days),
        "exponential_smoothing": exponential_smoothing(panel, end, horizon, config.ses_alphas),
        "croston": croston(panel, end, horizon, config.croston_alpha),
        "sba": sba(panel, end, horizon, config.croston_alpha),
        "tsb": tsb(panel, end, horizon, config.tsb_alphas),
    }
