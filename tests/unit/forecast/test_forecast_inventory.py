"""Inventory formulas on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.forecast.inventory import (
    daily_sigma,
    days_of_cover,
    inventory_status,
    period_demand,
    plan_inventory,
    safety_stock,
    stockout_probability,
)
from shopml.config.forecast import ForecastConfig

Z80 = 1.2815515655446004  # z of 0.9: P10-P90 spans 2 * Z80 standard deviations
Z95 = 1.6448536269514722


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _forecasts(sku: str, mean: float, sigma: float, horizon: int = 14, median: float | None = None) -> pd.DataFrame:
    middle = mean if median is None else median
    return pd.DataFrame(
        {
            "sku": sku,
            "horizon_day": range(1, horizon + 1),
            "mean": mean,
            "p10": middle - Z80 * sigma,
            "p50": middle,
            "p90": middle + Z80 * sigma,
        }
    )


def test_daily_sigma_reads_the_interval_as_a_normal_spread() -> None:
    assert daily_sigma(np.array([10 - Z80 * 2]), np.array([10 + Z80 * 2]))[0] == pytest.approx(2.0)
    assert daily_sigma(np.array([5.0]), np.array([4.0]))[0] == 0.0


def test_period_demand_adds_days_and_extends_past_the_horizon() -> None:
    mean = np.array([[1.0, 2.0, 3.0]])
    variance = np.array([[1.0, 1.0, 4.0]])

    within_mean, within_var = period_demand(mean, variance, np.array([2]))
    beyond_mean, beyond_var = period_demand(mean, variance, np.array([5]))

    assert (within_mean[0], within_var[0]) == (3.0, 2.0)
    # 1+2+3, then two more days at the horizon's average day (2 units, variance 2).
    assert (beyond_mean[0], beyond_var[0]) == (10.0, 10.0)


def test_safety_stock_cover_and_stockout_probability() -> None:
    assert safety_stock(np.array([2.0]), 0.95)[0] == pytest.approx(2 * Z95)
    assert days_of_cover(np.array([30, 5]), np.array([3.0, 0.0]), cap=999.0).tolist() == [10.0, 999.0]
    probability = stockout_probability(
        np.array([10.0, 14.0, 5.0, 15.0]), np.array([10.0, 10.0, 10.0, 10.0]), np.array([2.0, 2.0, 0.0, 0.0])
    )
    assert probability == pytest.approx([0.5, 1 - _normal_cdf(2.0), 1.0, 0.0])


def test_status_precedence() -> None:
    config = ForecastConfig(at_risk_probability=0.5, overstock_days=90)
    status = inventory_status(
        stockout_prob=np.array([0.6, 0.2, 0.0, 0.0, 0.6]),
        position=np.array([10, 10, 500, 50, 10]),
        reorder_point=np.array([20, 20, 20, 20, 20]),
        cover=np.array([1.0, 1.0, 120.0, 30.0, 200.0]),
        config=config,
    )
    assert status.tolist() == ["at_risk", "reorder", "overstock", "ok", "at_risk"]


def test_plan_inventory_hand_computed() -> None:
    config = ForecastConfig(service_level=0.95, review_period_days=7, default_lead_time_days=7, overstock_days=90)
    forecasts = pd.concat([_forecasts(sku, 10.0, 2.0) for sku in ("A", "B", "C", "D")])
    snapshots = pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D", "E"],  # E has stock but no forecast: no plan row
            "on_hand": [40, 200, 1000, 10, 5],
            "on_order": [5, 0, 0, 0, 0],
            "lead_time_days": [4, 4, 4, None, 4],
        }
    )

    plan = plan_inventory(forecasts, snapshots, config).set_index("sku")

    assert list(plan.index) == ["A", "B", "C", "D"]
    a = plan.loc["A"]
    # Lead time 4 days of 10 +- 2 units: mean 40, sigma 4; position 45.
    assert a["expected_lead_time_demand"] == pytest.approx(40.0)
    assert a["safety_stock"] == pytest.approx(Z95 * 4.0)
    assert a["reorder_point"] == pytest.approx(40.0 + Z95 * 4.0)
    # Position 45 <= 46.58: order up to 11 days (lead 4 + review 7): 110 + z * sqrt(11 * 4).
    assert a["recommended_order_qty"] == math.ceil(110.0 + Z95 * math.sqrt(44.0) - 45.0) == 76
    assert a["stockout_probability"] == pytest.approx(1 - _normal_cdf(5.0 / 4.0))
    assert a["days_of_cover"] == pytest.approx(4.0)
    assert a["status"] == "reorder"
    b = plan.loc["B"]
    assert (b["recommended_order_qty"], b["days_of_cover"], b["status"]) == (0.0, 20.0, "ok")
    assert plan.loc["C", "status"] == "overstock" and plan.loc["C", "days_of_cover"] == pytest.approx(100.0)
    d = plan.loc["D"]
    # No lead time in the snapshot: the default 7 days, mean 70 > 10 on hand.
    assert d["lead_time_days"] == 7 and d["expected_lead_time_demand"] == pytest.approx(70.0)
    assert d["status"] == "at_risk" and d["stockout_probability"] == pytest.approx(1.0)


def test_plan_sizes_stock_on_the_mean_and_safety_stock_on_the_quantiles() -> None:
    """Lumpy demand: the median is zero but 2 units a day are expected; the plan must order for 2 a day."""
    forecasts = _forecasts("L", mean=2.0, sigma=1.0, median=Z80 * 1.0)  # P10 0, P50 1.28, P90 2.56
    snapshots = pd.DataFrame({"sku": ["L"], "on_hand": [0], "on_order": [0], "lead_time_days": [5]})

    plan = plan_inventory(forecasts, snapshots, ForecastConfig(service_level=0.95, review_period_days=7)).iloc[0]

    assert plan["expected_lead_time_demand"] == pytest.approx(10.0)
    assert plan["safety_stock"] == pytest.approx(Z95 * math.sqrt(5.0))
    assert plan["recommended_order_qty"] == math.ceil(24.0 + Z95 * math.sqrt(12.0))
