"""Baselines on tiny hand-made panels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from models.forecast.baselines import exponential_smoothing, moving_average, seasonal_naive
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
