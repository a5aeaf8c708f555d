"""Accuracy metrics and the promotion gate on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecast.backtest import decide_promotion
from models.forecast.config import ForecastConfig
from models.forecast.metrics import bias, compute_metrics, coverage, mase, metric_value, pinball, velocity_band, wape


def test_point_metrics() -> None:
    actual = np.array([10.0, 0.0, 30.0])
    forecast = np.array([12.0, 1.0, 24.0])
    assert wape(actual, forecast) == pytest.approx(9.0 / 40.0)
    assert bias(actual, forecast) == pytest.approx(-3.0 / 40.0)
    assert np.isnan(wape(np.zeros(2), np.ones(2)))


def test_pinball_and_coverage() -> None:
    actual = np.array([10.0, 10.0])
    # Under-forecast by 4 costs q * 4, over-forecast by 2 costs (1 - q) * 2.
    assert pinball(actual, np.array([6.0, 12.0]), 0.9) == pytest.approx((0.9 * 4 + 0.1 * 2) / 2)
    assert coverage(np.array([1.0, 5.0, 9.0, 5.0]), np.full(4, 2.0), np.full(4, 8.0)) == 0.5


def test_mase_averages_per_series_and_skips_flat_history() -> None:
    frame = pd.DataFrame(
        {
            "fold": [1, 1, 1, 1, 1],
            "sku": ["a", "a", "b", "b", "c"],
            "actual": [4.0, 6.0, 1.0, 1.0, 3.0],
            "p50": [5.0, 5.0, 3.0, 3.0, 0.0],
            "mase_scale": [2.0, 2.0, 1.0, 1.0, 0.0],
        }
    )
    # a: MAE 1 / 2 = 0.5; b: MAE 2 / 1 = 2; c: flat history, left out.
    assert mase(frame, "p50") == pytest.approx(1.25)


def test_velocity_bands() -> None:
    assert velocity_band(np.array([0.1, 0.5, 4.9, 5.0]), (0.5, 5.0)).tolist() == ["slow", "medium", "medium", "fast"]


def _evaluation() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fold": 1,
            "sku": ["a", "a", "b", "b"],
            "category": ["x", "x", "y", "y"],
            "velocity": ["fast", "fast", "slow", "slow"],
            "mase_scale": 1.0,
            "actual": [10.0, 10.0, 2.0, 0.0],
            "p10": [8.0, 9.0, 1.0, 0.0],
            "p50": [9.0, 10.0, 2.0, 1.0],
            "p90": [12.0, 11.0, 3.0, 2.0],
            "seasonal_naive": [5.0, 15.0, 0.0, 2.0],
        }
    )


def test_compute_metrics_by_segment() -> None:
    metrics = compute_metrics(_evaluation(), (0.1, 0.5, 0.9), ["seasonal_naive"])

    assert metric_value(metrics, "forecaster", "wape") == pytest.approx(2.0 / 22.0)
    assert metric_value(metrics, "seasonal_naive", "wape") == pytest.approx(14.0 / 22.0)
    assert metric_value(metrics, "forecaster", "wape", "category=x") == pytest.approx(1.0 / 20.0)
    assert metric_value(metrics, "seasonal_naive", "wape", "velocity=slow") == pytest.approx(4.0 / 2.0)
    assert metric_value(metrics, "forecaster", "coverage_p10_p90") == 1.0
    assert metric_value(metrics, "forecaster", "pinball_p90", "category=x") == pytest.approx((0.1 * 2 + 0.1 * 1) / 2)
    assert set(metrics["segment"]) == {"overall", "category=x", "category=y", "velocity=fast", "velocity=slow"}


def _gate_metrics(model_wape: float, coverage_value: float) -> pd.DataFrame:
    rows = [
        ("forecaster", "wape", model_wape),
        ("forecaster", "coverage_p10_p90", coverage_value),
        ("seasonal_naive", "wape", 0.8),
        ("moving_average", "wape", 0.7),
        ("exponential_smoothing", "wape", 0.6),
    ]
    return pd.DataFrame([{"candidate": c, "metric": m, "segment": "overall", "value": v} for c, m, v in rows])


def test_gate_promotes_a_candidate_that_beats_the_best_baseline_with_calibrated_intervals() -> None:
    promoted, reason = decide_promotion(_gate_metrics(0.5, 0.8), ForecastConfig())
    assert promoted and "exponential_smoothing 0.600" in reason


@pytest.mark.parametrize(
    ("model_wape", "coverage_value", "config", "expected"),
    [
        (0.65, 0.8, ForecastConfig(), "does not beat the best baseline"),
        (0.59, 0.8, ForecastConfig(min_wape_gain=0.05), "by more than 5%"),
        (0.5, 0.6, ForecastConfig(), "coverage outside the band"),
        (0.5, 0.95, ForecastConfig(coverage_band=(0.75, 0.85)), "band 0.75-0.85"),
    ],
)
def test_gate_refuses(model_wape: float, coverage_value: float, config: ForecastConfig, expected: str) -> None:
    promoted, reason = decide_promotion(_gate_metrics(model_wape, coverage_value), config)
    assert not promoted and expected in reason
