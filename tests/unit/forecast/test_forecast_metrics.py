"""Accuracy metrics and the promotion gate on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecast.backtest import decide_promotion
from models.forecast.metrics import (
    bias,
    compute_metrics,
    coverage,
    mase,
    metric_value,
    pinball,
    velocity_band,
    wape,
    weighted_quantile_loss,
)
from shopml.config.forecast import ForecastConfig


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


def test_weighted_quantile_loss_as_in_gluonts() -> None:
    actual = np.array([10.0, 0.0, 30.0])
    forecasts = np.array([[8.0, 10.0, 14.0], [0.0, 1.0, 3.0], [20.0, 25.0, 40.0]])
    # Summed pinball per quantile: q=0.1: 0.2 + 0 + 1 = 1.2; q=0.5: 0 + 0.5 + 2.5 = 3; q=0.9: 0.4 + 0.3 + 1 = 1.7.
    expected = np.mean([2 * 1.2 / 40, 2 * 3.0 / 40, 2 * 1.7 / 40])
    assert weighted_quantile_loss(actual, forecasts, (0.1, 0.5, 0.9)) == pytest.approx(expected)
    # A point forecast at every quantile scores its WAPE (symmetric quantiles).
    point = np.array([12.0, 1.0, 24.0])
    repeated = np.repeat(point[:, None], 3, axis=1)
    assert weighted_quantile_loss(actual, repeated, (0.1, 0.5, 0.9)) == pytest.approx(wape(actual, point))
    assert np.isnan(weighted_quantile_loss(np.zeros(2), np.ones((2, 3)), (0.1, 0.5, 0.9)))


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
            "demand_class": ["smooth", "smooth", "lumpy", "lumpy"],
            "mase_scale": 1.0,
            "actual": [10.0, 10.0, 2.0, 0.0],
            "mean": [10.0, 11.0, 2.0, 1.0],
            "p10": [8.0, 9.0, 1.0, 0.0],
            "p50": [9.0, 10.0, 2.0, 1.0],
            "p90": [12.0, 11.0, 3.0, 2.0],
            "seasonal_naive": [5.0, 15.0, 0.0, 2.0],
        }
    )


def test_compute_metrics_by_segment() -> None:
    metrics = compute_metrics(_evaluation(), (0.1, 0.5, 0.9), ["seasonal_naive"])

    # Point metrics score the mean; the P50's own are kept beside them.
    assert metric_value(metrics, "model", "wape") == pytest.approx(2.0 / 22.0)
    assert metric_value(metrics, "model", "bias") == pytest.approx(2.0 / 22.0)
    assert metric_value(metrics, "model", "wape_p50") == pytest.approx(2.0 / 22.0)
    assert metric_value(metrics, "model", "bias_p50") == pytest.approx(0.0)
    assert metric_value(metrics, "seasonal_naive", "wape") == pytest.approx(14.0 / 22.0)
    assert metric_value(metrics, "model", "wape", "category=x") == pytest.approx(1.0 / 20.0)
    assert metric_value(metrics, "seasonal_naive", "wape", "velocity=slow") == pytest.approx(4.0 / 2.0)
    assert metric_value(metrics, "seasonal_naive", "wape", "demand_class=lumpy") == pytest.approx(4.0 / 2.0)
    assert metric_value(metrics, "model", "coverage_p10_p90") == 1.0
    assert metric_value(metrics, "model", "pinball_p90", "category=x") == pytest.approx((0.1 * 2 + 0.1 * 1) / 2)
    # A point baseline's wQL is its WAPE.
    assert metric_value(metrics, "seasonal_naive", "wql") == pytest.approx(14.0 / 22.0)
    assert set(metrics["segment"]) == {
        "overall",
        *("category=x", "category=y", "velocity=fast", "velocity=slow"),
        *("demand_class=lumpy", "demand_class=smooth"),
    }


def test_a_baseline_with_quantiles_gets_their_wql_and_coverage() -> None:
    evaluation = _evaluation().assign(
        moving_average=[10.0, 10.0, 1.0, 1.0],
        moving_average_p10=[0.0, 0.0, 0.0, 0.0],
        moving_average_p50=[10.0, 10.0, 1.0, 1.0],
        moving_average_p90=[20.0, 20.0, 2.0, 2.0],
    )
    metrics = compute_metrics(evaluation, (0.1, 0.5, 0.9), ["seasonal_naive", "moving_average"])

    assert metric_value(metrics, "moving_average", "coverage_p10_p90") == 1.0
    # Summed pinball: q=0.1: (1 + 1 + 0.2 + 0) = 2.2; q=0.5: 0.5 + 0.5 = 1; q=0.9: 1 + 1 + 0 + 0.2 = 2.2.
    wql = np.mean([2 * 2.2 / 22, 2 * 1.0 / 22, 2 * 2.2 / 22])
    assert metric_value(metrics, "moving_average", "wql") == pytest.approx(wql)
    with pytest.raises(KeyError):
        metric_value(metrics, "seasonal_naive", "coverage_p10_p90")


BASELINE_WAPE = {
    "seasonal_naive": 0.8,
    "moving_average": 0.7,
    "exponential_smoothing": 0.6,
    "croston": 0.65,
    "sba": 0.66,
    "tsb": 0.62,
}


def _gate_metrics(
    model_wape: float = 0.5, coverage_value: float = 0.8, model_bias: float = -0.02, model_wql: float = 0.4
) -> pd.DataFrame:
    rows = [
        ("model", "wape", model_wape),
        ("model", "wql", model_wql),
        ("model", "bias", model_bias),
        ("model", "coverage_p10_p90", coverage_value),
        *((name, "wape", value) for name, value in BASELINE_WAPE.items()),
        *((name, "wql", value) for name, value in BASELINE_WAPE.items() if name != "moving_average"),
        ("moving_average", "wql", 0.45),  # the fallback's quantiles
    ]
    return pd.DataFrame([{"candidate": c, "metric": m, "segment": "overall", "value": v} for c, m, v in rows])


def test_gate_promotes_a_candidate_that_beats_the_best_baseline_with_calibrated_intervals() -> None:
    promoted, reason = decide_promotion(_gate_metrics(), ForecastConfig())
    assert promoted and "exponential_smoothing 0.600" in reason and "moving_average 0.450" in reason
    assert "bias -0.02 (within ±0.10)" in reason


@pytest.mark.parametrize(
    ("metrics", "config", "expected"),
    [
        (_gate_metrics(model_wape=0.65), ForecastConfig(), "does not beat the best baseline"),
        (_gate_metrics(model_wape=0.59), ForecastConfig(min_wape_gain=0.05), "by more than 5%"),
        (_gate_metrics(coverage_value=0.6), ForecastConfig(), "coverage outside the band"),
        (_gate_metrics(coverage_value=0.95), ForecastConfig(coverage_band=(0.75, 0.85)), "band 0.75-0.85"),
        (_gate_metrics(model_wql=0.46), ForecastConfig(), "wQL 0.460 vs best baseline moving_average 0.450"),
        (_gate_metrics(model_bias=-0.61), ForecastConfig(), "bias -0.61 outside ±0.10"),
        (_gate_metrics(model_bias=0.12), ForecastConfig(), "bias +0.12 outside ±0.10"),
        (_gate_metrics(model_bias=0.12), ForecastConfig(max_abs_bias=0.15), None),
    ],
)
def test_gate_refuses(metrics: pd.DataFrame, config: ForecastConfig, expected: str | None) -> None:
    promoted, reason = decide_promotion(metrics, config)
    if expected is None:
        assert promoted, reason
    else:
        assert not promoted and expected in reason


def test_gate_refuses_a_candidate_that_wins_only_on_the_wape_of_its_median() -> None:
    """The real shop's case: a P50 far below demand wins WAPE, but its mean, wQL and bias give it away."""
    metrics = _gate_metrics(model_wape=0.95, model_bias=-0.61, model_wql=0.7, coverage_value=0.93)
    median = pd.DataFrame([{"candidate": "model", "metric": "wape_p50", "segment": "overall", "value": 0.5}])
    promoted, reason = decide_promotion(pd.concat([metrics, median]), ForecastConfig())

    assert not promoted
    for failing in ("WAPE of the mean 0.950", "wQL 0.700", "bias -0.61 outside ±0.10", "coverage 0.930"):
        assert failing in reason
