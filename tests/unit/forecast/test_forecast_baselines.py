"""Baselines on tiny hand-made panels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from models.forecast.baselines import croston, exponential_smoothing, moving_average, sba, seasonal_naive, tsb
from models.forecast.features import build_panel

START = date(2024, 1, 1)  # a Monday


def _panel(series: dict[str, list[float]], stockout: dict[str, list[int]] | None = None):
    rows = []
    for sku, values in series.items():
        for day, value in enumerate(values):
            if np.isnan(value):
                continue
            rows.append(
                {
                    "feature_date": START + timedelta(days=day),
                    "sku": sku,
                    "category": "c",
                    "units": value,
                    "unit_price": 1.0,
                    "on_promotion": False,
                    "is_stockout": day in (stockout or {}).get(sku, []),
                }
            )
    frame = pd.DataFrame(rows)
    return build_panel(frame, frame["feature_date"].max())


def test_seasonal_naive_repeats_the_last_week() -> None:
    panel = _panel({"a": [float(d) for d in range(14)]})
    forecast = seasonal_naive(panel, end=13, horizon=9)
    # Day 14 is the weekday of day 7, ..., day 22 that of day 8 (its last observed week).
    assert forecast[0].tolist() == [7, 8, 9, 10, 11, 12, 13, 7, 8]


def test_moving_average_over_observed_days() -> None:
    panel = _panel({"a": [2.0, np.nan, 4.0, 6.0], "b": [1.0, 1.0, 1.0, 5.0]})
    forecast = moving_average(panel, end=3, horizon=2, days=3)
    assert forecast.tolist() == [[5.0, 5.0], [pytest.approx(7 / 3), pytest.approx(7 / 3)]]


def test_exponential_smoothing_recursion_and_alpha_choice() -> None:
    panel = _panel({"a": [10.0, 20.0, 20.0], "b": [4.0, 4.0, 4.0]})
    single = exponential_smoothing(panel, end=2, horizon=1, alphas=(0.5,))
    # Level 10, then 10 + 0.5 * 10 = 15, then 15 + 0.5 * 5 = 17.5.
    assert single[:, 0].tolist() == [17.5, 4.0]
    # One-step SSE: alpha 0.1 -> 10^2 + 9^2 = 181, alpha 0.9 -> 10^2 + 1^2 = 101: 0.9 wins, level 19.9.
    chosen = exponential_smoothing(panel, end=2, horizon=1, alphas=(0.1, 0.9))
    assert chosen[0, 0] == pytest.approx(19.9)


def test_croston_and_sba_on_a_hand_computed_series() -> None:
    panel = _panel({"a": [0.0, 0.0, 3.0, 0.0, 5.0, 0.0], "never": [0.0] * 6, "late": [np.nan, np.nan, 0.0, 4.0, 0, 0]})
    # a starts at its history means: size (3 + 5) / 2 = 4, interval 6 days / 2 demands = 3. alpha 0.5:
    # demand 3 after 3 days: size 3.5, interval 3; demand 5 after 2 days: size 4.25, interval 2.5.
    forecast = croston(panel, end=5, horizon=2, alpha=0.5)
    assert forecast[0].tolist() == [pytest.approx(4.25 / 2.5)] * 2
    # SKUs in panel order: a, late, never. late's days before its first row are not days: size 4, interval
    # 4 observed days / 1 demand, then its demand after 2 observed days: interval 3.
    assert forecast[1, 0] == pytest.approx(4.0 / 3.0)
    assert forecast[2].tolist() == [0.0, 0.0]
    assert sba(panel, end=5, horizon=1, alpha=0.5)[0, 0] == pytest.approx((1 - 0.25) * 4.25 / 2.5)


def test_tsb_decays_with_every_day_without_demand() -> None:
    panel = _panel({"a": [0.0, 0.0, 3.0, 0.0, 5.0], "b": [2.0, 0.0, 0.0, 0.0, 0.0]})
    # a, alphas 0.5, from its means (size 4, probability 2/5): probability 0.2, 0.1, 0.55, 0.275, 0.6375;
    # size 3.5 then 4.25. b: probability 1/5 -> 0.6 -> 0.3 -> 0.15 -> 0.075 -> 0.0375; size 2.
    forecast = tsb(panel, end=4, horizon=3, alphas=(0.5, 0.5))
    assert forecast[:, 0].tolist() == [pytest.approx(0.6375 * 4.25), pytest.approx(0.0375 * 2)]
    assert (forecast[:, 0:1] == forecast).all()
    # Croston keeps b near its last demand: the difference TSB exists for (size 2, interval 5 -> 3).
    assert croston(panel, end=4, horizon=1, alpha=0.5)[1, 0] == pytest.approx(2.0 / 3.0)
