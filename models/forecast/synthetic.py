"""Seeded synthetic daily demand with planted structure, for the forecaster's tests, benchmark and demos.

Planted: category- and SKU-level weekly seasonality, a slow trend, yearly seasonality, promotion runs
(price cut and uplift), overdispersed Poisson noise with many slow movers, and stockout runs during
which sales are zero although demand is not (the censoring the model must not learn as zero demand).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd


def _runs(rng: np.random.Generator, shape: tuple[int, int], start_rate: float, length: tuple[int, int]) -> np.ndarray:
    """Boolean (SKU, day) runs: each day not in a run starts one with ``start_rate``, lasting ``length`` days."""
    out = np.zeros(shape, dtype=bool)
    left = np.zeros(shape[0], dtype=np.int64)
    for day in range(shape[1]):
        starts = (left == 0) & (rng.random(shape[0]) < start_rate)
        left = np.where(starts, rng.integers(length[0], length[1] + 1, size=shape[0]), left)
        out[:, day] = left > 0
        left = np.maximum(left - 1, 0)
    return out


def generate_demand(
    n_skus: int = 40,
    n_days: int = 120,
    start: date = date(2024, 1, 1),
    seed: int = 0,
    n_categories: int = 4,
    long_stockout_skus: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Daily demand rows in the ``gold.sku_daily_demand`` layout, and the true expected demand.

    Args:
        long_stockout_skus: the first this many SKUs are out of stock about half of the time, in long runs,
            including the last 20 days.

    Returns:
        (rows with feature_date, sku, category, units, unit_price, on_promotion, is_stockout and calendar
        columns; true expected demand per SKU and day as an (n_skus, n_days) array).
    """
    rng = np.random.default_rng(seed)
    days = np.arange(n_days)
    dates = [start + timedelta(days=int(d)) for d in days]
    weekday = np.array([d.weekday() for d in dates])
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])

    category = rng.integers(0, n_categories, size=n_skus)
    cat_profile = np.exp(rng.normal(0.0, 0.35, size=(n_categories, 7)))
    sku_profile = cat_profile[category] * np.exp(rng.normal(0.0, 0.1, size=(n_skus, 7)))
    sku_profile /= sku_profile.mean(axis=1, keepdims=True)
    base = np.clip(np.exp(rng.normal(np.log(2.0), 1.0, size=n_skus)), 0.05, 200.0)
    trend = np.exp(rng.normal(0.0, 0.2, size=n_skus)[:, None] * days[None, :] / 365.0)
    phase = rng.uniform(0, 365, size=n_categories)[category]
    yearly = 1.0 + 0.15 * np.sin(2 * np.pi * (day_of_year[None, :] + phase[:, None]) / 365.0)

    promo = _runs(rng, (n_skus, n_days), 1 / 40, (4, 10))
    uplift = np.exp(rng.normal(np.log(1.8), 0.2, size=n_skus))[:, None]
    rate = base[:, None] * sku_profile[:, weekday] * trend * yearly * np.where(promo, uplift, 1.0)
    units = rng.poisson(rate * rng.gamma(4.0, 0.25, size=rate.shape)).astype(float)

    stockout = _runs(rng, (n_skus, n_days), 1 / 80, (1, 10))
    if long_stockout_skus:
        long = _runs(rng, (long_stockout_skus, n_days), 1 / 15, (10, 20))
        long[:, -20:] = True
        stockout[:long_stockout_skus] |= long
    units[stockout] = 0.0

    price = np.round(np.exp(rng.normal(np.log(20.0), 0.6, size=n_skus)), 2)[:, None] * np.where(promo, 0.8, 1.0)
    frame = pd.DataFrame(
        {
            "feature_date": np.tile(np.array(dates, dtype="datetime64[D]"), n_skus),
            "sku": np.repeat([f"SKU-{i:05d}" for i in range(n_skus)], n_days),
            "category": np.repeat([f"cat-{c}" for c in category], n_days),
            "units": units.ravel(),
            "unit_price": price.ravel(),
            "on_promotion": promo.ravel(),
            "is_stockout": stockout.ravel(),
        }
    )
    frame["feature_date"] = frame["feature_date"].dt.date
    frame["day_of_week"] = np.tile(weekday + 1, n_skus).astype(np.int32)
    frame["is_weekend"] = frame["day_of_week"] >= 6
    return frame, rate
