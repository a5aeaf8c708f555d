"""The customer scores' metrics, baselines and gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.customer.evaluation import (
    HEADS,
    calibration_error,
    gini,
    head_metrics,
    lift_table,
    passes_gate,
    rfm_segment,
)

PURCHASE, CHURN, VALUE = HEADS


def test_calibration_error_is_zero_for_rates_that_come_true_and_large_for_overconfidence():
    rng = np.random.default_rng(0)
    predicted = rng.uniform(0, 1, 200_000)
    outcomes = (rng.uniform(0, 1, predicted.size) < predicted).astype(float)
    assert calibration_error(outcomes, predicted) < 0.01
    overconfident = np.where(predicted > 0.5, 1.0, 0.0)
    assert calibration_error(outcomes, overconfident) > 0.2


def test_gini_and_lift_of_a_value_ranking():
    actual = np.array([0, 0, 0, 10, 90.0])
    assert gini(actual, actual) == pytest.approx(1.0)
    assert gini(actual, -actual) < 0
    lift = lift_table(actual, actual, bins=5)
    assert lift["lift"].iloc[0] == pytest.approx(90 / 100 * 5)
    metrics = head_metrics(VALUE, actual, np.array([1, 1, 1, 1, 1.0]))
    assert metrics["total_ratio"] == pytest.approx(5 / 100) and metrics["mae"] == pytest.approx(20.2)


def test_a_head_serves_only_when_it_beats_every_baseline_and_is_calibrated():
    metrics = {
        "model": {"roc_auc": 0.80, "calibration_error": 0.02},
        "bgnbd": {"roc_auc": 0.78},
        "rfm": {"roc_auc": float("nan")},
    }
    assert passes_gate(PURCHASE, metrics, 0.05) == (True, "purchase: roc_auc 0.800 beats bgnbd 0.780")
    ok, why = passes_gate(PURCHASE, {**metrics, "bgnbd": {"roc_auc": 0.81}}, 0.05)
    assert not ok and "does not beat bgnbd 0.810" in why
    ok, why = passes_gate(CHURN, {**metrics, "model": {"roc_auc": 0.8, "calibration_error": 0.09}}, 0.05)
    assert not ok and why == "churn: calibration error 0.090 > 0.05"


def test_churn_covers_only_customers_active_in_the_last_90_days():
    frame = pd.DataFrame({"orders_90d": [0.0, 2.0]})
    assert CHURN.population(frame).tolist() == [False, True]
    assert PURCHASE.population(frame).tolist() == [True, True]
    outcome = pd.DataFrame({"purchased": [True, False], "revenue": [5.0, -3.0]})
    assert CHURN.label(outcome).tolist() == [0.0, 1.0]
    assert VALUE.label(outcome).tolist() == [5.0, 0.0]  # net refunds are no negative value


def test_rfm_segments_put_the_best_customers_in_555():
    frame = pd.DataFrame(
        {
            "recency_days": np.arange(100.0),
            "order_days_365d": np.arange(100.0)[::-1],
            "revenue_365d": np.arange(100.0)[::-1] * 10,
        }
    )
    segments = rfm_segment(frame)
    assert segments[0] == "R5F5M5" and segments[-1] == "R1F1M1"
