"""The customer boosters, CPU or CUDA on the same path: one XGBoost model per head, and why each score is what it is.

Classifiers use the logistic loss (probabilities a CRM can read as rates); the value head uses
Tweedie (most customers spend nothing in the next 90 days, a few spend a lot). ``reasons`` turns a
booster's per-row feature contributions (SHAP values, ``pred_contribs``) into readable text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from models.customer.evaluation import Head
from models.customer.features import FEATURES
from shopml.config.customer import CustomerBoosterConfig


def design_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, list(FEATURES)].astype(np.float32)


def fit_head(
    head: Head, frame: pd.DataFrame, labels: np.ndarray, config: CustomerBoosterConfig, device: str, seed: int
) -> xgb.Booster:
    params = {
        "objective": "binary:logistic" if head.kind == "classifier" else "reg:tweedie",
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "tree_method": "hist",
        "device": device,
        "seed": seed,
        "nthread": config.n_jobs or None,
    }
    if head.kind == "regression":
        params["tweedie_variance_power"] = 1.5
    matrix = xgb.DMatrix(design_matrix(frame), label=labels)
    return xgb.train({k: v for k, v in params.items() if v is not None}, matrix, num_boost_round=config.n_estimators)


@dataclass(frozen=True)
class CustomerModel:
    """The trained heads of one version (a head without enough labelled history is absent)."""

    boosters: dict[str, xgb.Booster]

    def predict(self, head: Head, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.boosters[head.name].inplace_predict(design_matrix(frame)), dtype=float)

    def reasons(self, head: str, frame: pd.DataFrame, top: int) -> list[list[str]]:
        """Per customer, the ``top`` features that moved the head's score most: ``name=value (+0.42)``,
        the contribution in the booster's margin units (log-odds for a classifier)."""
        design = design_matrix(frame)
        contributions = self.boosters[head].predict(xgb.DMatrix(design), pred_contribs=True)[:, :-1]
        order = np.argsort(-np.abs(contributions), axis=1)[:, :top]
        values = design.to_numpy()
        return [
            [f"{FEATURES[j]}={values[i, j]:.4g} ({contributions[i, j]:+.2f})" for j in order[i]]
            for i in range(len(frame))
        ]

    def save(self, path: Path) -> None:
        for name, booster in self.boosters.items():
            booster.save_model(path / f"{name}.json")

    @classmethod
    def load(cls, path: Path, heads: list[str], device: str) -> CustomerModel:
        boosters = {}
        for name in heads:
            booster = xgb.Booster()
            booster.load_model(path / f"{name}.json")
            booster.set_param({"device": device})
            boosters[name] = booster
        return cls(boosters)
