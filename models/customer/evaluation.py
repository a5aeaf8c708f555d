"""The three heads, their baselines and their metrics: what a customer-score candidate is judged against.

Baselines a CRM team would use without a model: a recency rule (the observed rate of the
customer's recency band), RFM quintile scoring (the observed rate of the R+F+M score) and the
buy-till-you-die models (BG/NBD, with Gamma-Gamma for value). The rules learn their rates on the
training snapshots; BG/NBD fits the evaluation day's own history, which needs no labels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models.customer.btyd import BetaGeo, FitError, GammaGamma
from shopml.config.customer import CHURN_HORIZON_DAYS, PURCHASE_HORIZON_DAYS, VALUE_HORIZON_DAYS

RECENCY_BANDS = (0, 7, 14, 30, 60, 90, 180, 365)
CALIBRATION_BINS = 10
BASELINES = ("recency_rule", "rfm", "bgnbd")


@dataclass(frozen=True)
class Head:
    """One score: its gold column, label horizon, who it covers and what it predicts."""

    name: str
    column: str
    horizon_days: int
    kind: Literal["classifier", "regression"]
    primary: str

    def population(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn is defined for customers active in the last 90 days; the others cover every customer."""
        if self.name == "churn":
            return frame["orders_90d"].to_numpy() > 0
        return np.ones(len(frame), dtype=bool)

    def label(self, outcome: pd.DataFrame) -> np.ndarray:
        if self.name == "purchase":
            return outcome["purchased"].to_numpy(dtype=float)
        if self.name == "churn":
            return (~outcome["purchased"]).to_numpy(dtype=float)
        return outcome["revenue"].to_numpy(dtype=float).clip(0)


HEADS = (
    Head("purchase", "p_purchase_30d", PURCHASE_HORIZON_DAYS, "classifier", "roc_auc"),
    Head("churn", "p_churn_90d", CHURN_HORIZON_DAYS, "classifier", "roc_auc"),
    Head("value", "expected_revenue_90d", VALUE_HORIZON_DAYS, "regression", "gini"),
)


# ---- RFM ------------------------------------------------------------------------------------------


def _quintile(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values.to_numpy(float), side="right") + 1


def rfm_edges(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Quintile edges of recency, frequency and monetary value (365-day revenue) in ``frame``."""
    quantiles = [0.2, 0.4, 0.6, 0.8]
    return {
        column: np.unique(np.quantile(frame[column].to_numpy(float), quantiles))
        for column in ("recency_days", "order_days_365d", "revenue_365d")
    }


def rfm_scores(frame: pd.DataFrame, edges: dict[str, np.ndarray]) -> pd.DataFrame:
    """R, F and M from 1 to 5 (5 best: most recent, most frequent, highest spend)."""
    return pd.DataFrame(
        {
            "r": 6 - _quintile(frame["recency_days"], edges["recency_days"]),
            "f": _quintile(frame["order_days_365d"], edges["order_days_365d"]),
            "m": _quintile(frame["revenue_365d"], edges["revenue_365d"]),
        },
        index=frame.index,
    ).clip(1, 5)


def rfm_segment(frame: pd.DataFrame) -> np.ndarray:
    """``R5F4M3``-style codes, quintiles taken over the customers scored together."""
    scores = rfm_scores(frame, rfm_edges(frame)) if len(frame) else pd.DataFrame(columns=["r", "f", "m"])
    return ("R" + scores["r"].astype(str) + "F" + scores["f"].astype(str) + "M" + scores["m"].astype(str)).to_numpy()


# ---- baselines ------------------------------------------------------------------------------------


def _rate_by(train_keys: np.ndarray, train_labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each key's mean training label, shrunk toward the overall mean (keys unseen in training get it)."""
    overall = float(np.mean(train_labels)) if len(train_labels) else 0.0
    table = pd.DataFrame({"key": train_keys, "label": train_labels}).groupby("key")["label"].agg(["sum", "count"])
    shrunk = (table["sum"] + 5 * overall) / (table["count"] + 5)
    return pd.Series(keys).map(shrunk).fillna(overall).to_numpy(float)


def _recency_band(frame: pd.DataFrame) -> np.ndarray:
    return np.searchsorted(RECENCY_BANDS, frame["recency_days"].to_numpy(float), side="right")


def baseline_predictions(
    head: Head, train: pd.DataFrame, train_labels: np.ndarray, frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Every baseline's prediction for ``frame`` (a baseline that cannot be fitted is left out)."""
    edges = rfm_edges(train)
    rfm = rfm_scores(frame, edges).sum(axis=1).to_numpy()
    predictions = {"rfm": _rate_by(rfm_scores(train, edges).sum(axis=1).to_numpy(), train_labels, rfm)}
    if head.kind == "classifier":
        predictions["recency_rule"] = _rate_by(_recency_band(train), train_labels, _recency_band(frame))
    else:
        # A run rate: the last 90 days' spend, again.
        predictions["recency_rule"] = frame["revenue_90d"].to_numpy(float) * head.horizon_days / 90
    with contextlib.suppress(FitError):
        predictions["bgnbd"] = btyd_prediction(head, BetaGeo.fit(frame), frame)
    return predictions


def btyd_prediction(head: Head, model: BetaGeo, frame: pd.DataFrame) -> np.ndarray:
    """A head's score from BG/NBD (value: expected orders times Gamma-Gamma's spend per order)."""
    if head.name == "purchase":
        return model.p_purchase(frame, head.horizon_days)
    if head.name == "churn":
        return 1.0 - model.p_purchase(frame, head.horizon_days)
    spend = GammaGamma.fit(frame).expected_spend(frame)
    return model.expected_purchases(frame, head.horizon_days) * spend


# ---- metrics --------------------------------------------------------------------------------------


def calibration_table(labels: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Equal-count bins of the predicted probability: mean predicted, observed rate, customers."""
    order = np.argsort(predicted, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(groups) + 1),
            "predicted": [float(predicted[g].mean()) for g in groups],
            "observed": [float(labels[g].mean()) for g in groups],
            "customers": [len(g) for g in groups],
        }
    )


def calibration_error(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Expected calibration error: the customer-weighted gap between predicted and observed rates."""
    table = calibration_table(labels, predicted)
    return float(np.average((table["predicted"] - table["observed"]).abs(), weights=table["customers"]))


def gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Normalised Gini: how well ``predicted`` orders customers by ``actual`` value (1 perfect, 0 random)."""

    def raw(order_by: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(actual)), -order_by))
        cumulative = np.cumsum(actual[order]) / actual.sum()
        return float(cumulative.sum() / len(actual) - (len(actual) + 1) / (2 * len(actual)))

    return raw(predicted) / raw(actual) if actual.sum() > 0 else float("nan")


def lift_table(actual: np.ndarray, predicted: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles by predicted value (1 = highest): the share of the actual value each captured, over 1/bins."""
    order = np.lexsort((np.arange(len(actual)), -predicted))
    groups = np.array_split(order, min(bins, len(order)))
    total = actual.sum() or 1.0
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(groups) + 1),
            "lift": [float(actual[g].sum() / total * len(groups)) for g in groups],
        }
    )


def _safe(metric: Callable[[np.ndarray, np.ndarray], float], labels: np.ndarray, predicted: np.ndarray) -> float:
    """A ranking metric, NaN when the labels hold one class only."""
    return float(metric(labels, predicted)) if len(np.unique(labels)) > 1 else float("nan")


def head_metrics(head: Head, labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    if head.kind == "classifier":
        return {
            "roc_auc": _safe(roc_auc_score, labels, predicted),
            "pr_auc": _safe(average_precision_score, labels, predicted),
            "brier": float(brier_score_loss(labels, np.clip(predicted, 0, 1))),
            "calibration_error": calibration_error(labels, predicted),
            "base_rate": float(labels.mean()),
        }
    top = lift_table(labels, predicted)
    return {
        "mae": float(np.mean(np.abs(labels - predicted))),
        "gini": gini(labels, predicted),
        "top_decile_lift": float(top["lift"].iloc[0]),
        "total_ratio": float(predicted.sum() / labels.sum()) if labels.sum() > 0 else float("nan"),
    }


def passes_gate(head: Head, metrics: dict[str, dict[str, float]], max_calibration_error: float) -> tuple[bool, str]:
    """The candidate (``metrics["model"]``) must beat every baseline on the head's primary metric, and a
    classifier's calibration error must be within the bound."""
    mine = metrics["model"][head.primary]
    baselines = {name: values[head.primary] for name, values in metrics.items() if name != "model"}
    best_name = max(baselines, key=lambda name: -np.inf if np.isnan(baselines[name]) else baselines[name])
    best = baselines[best_name]
    if not np.isfinite(mine) or mine <= best:
        return False, f"{head.name}: {head.primary} {mine:.3f} does not beat {best_name} {best:.3f}"
    if head.kind == "classifier" and metrics["model"]["calibration_error"] > max_calibration_error:
        error = metrics["model"]["calibration_error"]
        return False, f"{head.name}: calibration error {error:.3f} > {max_calibration_error}"
    return True, f"{head.name}: {head.primary} {mine:.3f} beats {best_name} {best:.3f}"
