"""The global XGBoost quantile model: one booster, three quantiles, every SKU, CPU or CUDA on the same path."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from models.forecast.config import DEFAULT_CONFIG, ForecastConfig
from models.forecast.features import FEATURES

log = logging.getLogger(__name__)

BOOSTER_FILE = "booster.json"
SPEC_FILE = "forecaster.json"


def _design_matrix(frame: pd.DataFrame, categories: list[str]) -> pd.DataFrame:
    """Model inputs in a fixed column order; categories unseen in training become missing."""
    design = frame.loc[:, list(FEATURES)].copy()
    design["category"] = pd.Categorical(frame["category"], categories=categories)
    for name in FEATURES:
        if name != "category":
            design[name] = design[name].astype(np.float32)
    return design


def sort_quantiles(raw: np.ndarray) -> np.ndarray:
    """Non-negative, non-crossing quantiles: clip at zero and sort each row (the rearrangement fix).

    Non-finite values are kept so the output gate refuses them instead of publishing a silent zero.
    """
    return np.sort(np.maximum(raw, 0.0), axis=1)


@dataclass(frozen=True)
class QuantileForecaster:
    """A trained booster plus what rebuilds its inputs and outputs: quantiles, category levels, calibration."""

    booster: xgb.Booster
    quantiles: tuple[float, ...]
    categories: list[str]
    offsets: tuple[float, ...]

    def predict_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw booster output: quantiles of demand / scale, before calibration."""
        ratio = self.booster.inplace_predict(_design_matrix(frame, self.categories))
        return np.asarray(ratio).reshape(len(frame), len(self.quantiles))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Quantile forecasts in units, shape (rows, quantiles): calibrated ratio times the row's demand scale."""
        if frame.empty:
            return np.empty((0, len(self.quantiles)))
        ratio = self.predict_ratio(frame) + np.asarray(self.offsets)
        return sort_quantiles(ratio * frame["scale"].to_numpy()[:, None])

    def save(self, folder: Path) -> None:
        self.booster.save_model(folder / BOOSTER_FILE)
        spec = {
            "quantiles": list(self.quantiles),
            "categories": self.categories,
            "offsets": list(self.offsets),
            "features": list(FEATURES),
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2))

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> QuantileForecaster:
        spec = json.loads((folder / SPEC_FILE).read_text())
        if spec["features"] != list(FEATURES):
            raise ValueError(f"model at {folder} was trained on other features than this code builds; retrain it")
        booster = xgb.Booster()
        booster.load_model(folder / BOOSTER_FILE)
        booster.set_param({"device": device})
        return cls(booster, tuple(spec["quantiles"]), spec["categories"], tuple(spec["offsets"]))


def _calibration_offsets(model: QuantileForecaster, calibration: pd.DataFrame) -> tuple[float, ...]:
    """Shift of the outer quantiles (in demand/scale units) that makes held-out coverage nominal.

    Boosted quantiles fit their training rows too tightly (overlapping origins make rows look alike),
    so raw P10-P90 intervals cover less than 80% out of sample. The q-quantile of held-out residuals
    is the shift that puts a share q of them below the forecast (split-conformal, per quantile). The
    median is left alone: it is fitted on the loss WAPE measures.
    """
    residual = calibration["units"].to_numpy()[:, None] / calibration["scale"].to_numpy()[:, None]
    residual = residual - model.predict_ratio(calibration)
    middle = len(model.quantiles) // 2
    return tuple(0.0 if i == middle else float(np.quantile(residual[:, i], q)) for i, q in enumerate(model.quantiles))


def _fit_booster(frame: pd.DataFrame, categories: list[str], config: ForecastConfig, device: str, seed: int):
    scale = frame["scale"].to_numpy()
    params = {
        "objective": "reg:quantileerror",
        "quantile_alpha": np.array(config.quantiles),
        "tree_method": "hist",
        "device": device,
        "seed": seed,
        "learning_rate": config.booster.learning_rate,
        "max_depth": config.booster.max_depth,
        "min_child_weight": config.booster.min_child_weight,
        "subsample": config.booster.subsample,
        "colsample_bytree": config.booster.colsample_bytree,
        "reg_lambda": config.booster.reg_lambda,
        "max_bin": config.booster.max_bin,
        "max_cat_to_onehot": 1,
        "nthread": config.booster.n_jobs,
    }
    data = xgb.QuantileDMatrix(
        _design_matrix(frame, categories),
        label=frame["units"].to_numpy() / scale,
        weight=scale,
        enable_categorical=True,
        max_bin=config.booster.max_bin,
    )
    booster = xgb.train(params, data, num_boost_round=config.booster.n_estimators)
    log.info("fitted %d rounds on %d rows (%s)", config.booster.n_estimators, len(frame), device)
    return booster


def fit_quantile_model(
    frame: pd.DataFrame, config: ForecastConfig = DEFAULT_CONFIG, device: str = "cpu", seed: int = 0
) -> QuantileForecaster:
    """Fit one multi-quantile booster on ``units / scale`` weighted by ``scale`` (= pinball loss on raw units).

    The last ``calibration_days`` of origins are held out to calibrate the interval (their targets are
    after every fitted target, as in production); with too few held-out rows nothing is held out.
    """
    categories = sorted(frame["category"].astype(str).unique())
    split = frame["forecast_date"].max() - np.timedelta64(config.calibration_days, "D")
    calibration = frame[frame["origin_date"] >= split]
    fitted = frame[frame["forecast_date"] <= split]
    if config.calibration_days == 0 or len(calibration) < config.min_calibration_rows or fitted.empty:
        log.warning("no interval calibration: %d held-out rows", len(calibration) if config.calibration_days else 0)
        booster = _fit_booster(frame, categories, config, device, seed)
        return QuantileForecaster(booster, tuple(config.quantiles), categories, (0.0,) * len(config.quantiles))
    model = QuantileForecaster(
        _fit_booster(fitted, categories, config, device, seed),
        tuple(config.quantiles),
        categories,
        (0.0,) * len(config.quantiles),
    )
    offsets = _calibration_offsets(model, calibration)
    log.info("interval calibration on %d held-out rows: offsets %s", len(calibration), offsets)
    return QuantileForecaster(model.booster, model.quantiles, categories, offsets)
