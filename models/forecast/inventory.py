"""Inventory actions from demand forecasts: lead-time demand, safety stock, reorder point, order, cover, risk.

Expected demand (cycle stock, lead-time demand, order-up-to level, days of cover) is the forecast's
*mean*: demand is right-skewed, and on lumpy demand the median is often zero, so a P50-based plan
orders far too little. The spread (safety stock, stockout probability) comes from the quantiles:
the daily standard deviation is read off the interval, (P90 - P10) / (z90 - z10). Days are
independent, so over a protection period the means and variances add, and the total is treated
as normal. Days beyond the forecast horizon repeat the horizon's average day. Lead times are fixed
(the snapshot's value): supplier lead-time variability is not modelled.

Policy: periodic review with reorder point. When the inventory position (on hand + on order) is at
or below the reorder point, order up to the level that covers lead time + review period at the
service level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from shopml.catalog import GOLD_INVENTORY_PLAN, spec
from shopml.config.forecast import DEFAULT_CONFIG, ForecastConfig

# The plan's own columns in the catalog's order (the writer adds the run's date and stamp).
PLAN_COLUMNS = spec(GOLD_INVENTORY_PLAN).content_columns


def daily_sigma(p10: np.ndarray, p90: np.ndarray, quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)):
    """Standard deviation of daily demand implied by the low/high quantiles under a normal approximation."""
    spread = ndtri(quantiles[2]) - ndtri(quantiles[0])
    return np.maximum(np.asarray(p90) - np.asarray(p10), 0.0) / spread


def period_demand(mean: np.ndarray, variance: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of demand over the next ``days`` days per SKU.

    Args:
        mean, variance: (n_skus, horizon) daily mean and variance.
        days: (n_skus,) period length; beyond the horizon each day adds the horizon's average day.
    """
    horizon = mean.shape[1]
    days = np.asarray(days, dtype=np.int64)
    within = np.clip(days, 0, horizon)
    extra = np.maximum(days - horizon, 0)
    cum_mean = np.concatenate([np.zeros((len(mean), 1)), np.cumsum(mean, axis=1)], axis=1)
    cum_var = np.concatenate([np.zeros((len(variance), 1)), np.cumsum(variance, axis=1)], axis=1)
    rows = np.arange(len(mean))
    total_mean = cum_mean[rows, within] + extra * mean.mean(axis=1)
    total_var = cum_var[rows, within] + extra * variance.mean(axis=1)
    return total_mean, total_var


def safety_stock(sigma: np.ndarray, service_level: float) -> np.ndarray:
    """Units held beyond expected demand so demand over the period is covered with ``service_level``."""
    return ndtri(service_level) * np.asarray(sigma)


def stockout_probability(position: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(demand over the period > position); a point mass when the spread is zero."""
    position, mean, sigma = (np.asarray(a, dtype=float) for a in (position, mean, sigma))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = 1.0 - ndtr((position - mean) / sigma)
    return np.where(sigma > 0, spread, (mean > position).astype(float))


def days_of_cover(on_hand: np.ndarray, daily_mean: np.ndarray, cap: float) -> np.ndarray:
    """Days the stock on hand lasts at the forecast's average daily demand, capped (no demand: the cap)."""
    on_hand, daily_mean = np.asarray(on_hand, dtype=float), np.asarray(daily_mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(daily_mean > 0, np.maximum(on_hand, 0) / daily_mean, cap)
    return np.minimum(cover, cap)


def inventory_status(
    stockout_prob: np.ndarray,
    position: np.ndarray,
    reorder_point: np.ndarray,
    cover: np.ndarray,
    config: ForecastConfig = DEFAULT_CONFIG,
) -> np.ndarray:
    """at_risk (likely to run out before a new order can arrive) > reorder > overstock > ok."""
    return np.select(
        [
            np.asarray(stockout_prob) >= config.at_risk_probability,
            np.asarray(position) <= np.asarray(reorder_point),
            np.asarray(cover) > config.overstock_days,
        ],
        ["at_risk", "reorder", "overstock"],
        default="ok",
    )


def plan_inventory(
    forecasts: pd.DataFrame, snapshots: pd.DataFrame, config: ForecastConfig = DEFAULT_CONFIG
) -> pd.DataFrame:
    """One plan row per SKU present in both the forecasts and the latest inventory snapshots.

    Args:
        forecasts: sku, horizon_day (1..H), mean, p10, p90 (every SKU has all H days).
        snapshots: sku, on_hand, on_order, lead_time_days (null lead time: ``default_lead_time_days``).
    """
    wide = forecasts.pivot(index="sku", columns="horizon_day", values=["mean", "p10", "p90"]).sort_index(axis=1)
    stock = snapshots.set_index("sku").loc[:, ["on_hand", "on_order", "lead_time_days"]]
    skus = wide.index.intersection(stock.index).sort_values()
    wide, stock = wide.loc[skus], stock.loc[skus]
    mean, low, high = (wide[column].to_numpy(dtype=float) for column in ("mean", "p10", "p90"))
    variance = daily_sigma(low, high, config.quantiles) ** 2
    on_hand = stock["on_hand"].fillna(0).to_numpy(dtype=np.int64)
    on_order = stock["on_order"].fillna(0).to_numpy(dtype=np.int64)
    lead_time = stock["lead_time_days"].fillna(config.default_lead_time_days).to_numpy(dtype=np.int64)
    lead_time = np.maximum(lead_time, 1)
    position = on_hand + on_order

    lead_mean, lead_var = period_demand(mean, variance, lead_time)
    lead_sigma = np.sqrt(lead_var)
    buffer = safety_stock(lead_sigma, config.service_level)
    reorder_point = lead_mean + buffer
    cover_mean, cover_var = period_demand(mean, variance, lead_time + config.review_period_days)
    order_up_to = cover_mean + safety_stock(np.sqrt(cover_var), config.service_level)
    order = np.where(position <= reorder_point, np.ceil(np.maximum(order_up_to - position, 0.0)), 0.0)
    cover = days_of_cover(on_hand, mean.mean(axis=1), config.max_days_of_cover)
    risk = stockout_probability(position, lead_mean, lead_sigma)
    return pd.DataFrame(
        {
            "sku": skus.to_numpy(),
            "on_hand": on_hand.astype(np.int32),
            "on_order": on_order.astype(np.int32),
            "lead_time_days": lead_time.astype(np.int32),
            "expected_lead_time_demand": lead_mean,
            "safety_stock": buffer,
            "reorder_point": reorder_point,
            "recommended_order_qty": order,
            "days_of_cover": cover,
            "stockout_probability": risk,
            "status": inventory_status(risk, position, reorder_point, cover, config),
        },
        columns=list(PLAN_COLUMNS),
    )
