"""The global XGBoost demand model, every SKU, CPU or CUDA on the same path: two boosters on one design matrix.

The quantile booster gives P10/P50/P90 (safety stock, stockout risk, intervals); the mean booster
gives expected daily demand (cycle stock, order quantities, the gate's WAPE and bias). The median
of lumpy demand is often zero, so a quantile alone under-states the units a planner must buy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from models.forecast.features import DEMAND_CLASSES, FEATURES
from shopml.config.forecast import DEFAULT_CONFIG, ForecastConfig

log = logging.getLogger(__name__)

# Calibration groups, by how often a SKU sells (what decides how many days are zero): smooth and erratic
# SKUs sell most days, intermittent and lumpy ones rarely; new SKUs have no class yet; all rows are the fallback.
CALIBRATION_GROUPS = ("regular", "regular", "intermittent", "lumpy", "new")
ALL_ROWS = "all"
BOOSTER_FILE = "booster.json"
MEAN_BOOSTER_FILE = "mean_booster.json"
SPEC_FILE = "forecaster.json"


def calibration_groups(frame: pd.DataFrame) -> np.ndarray:
    """Each row's calibration group (``CALIBRATION_GROUPS`` by demand class code; no class yet: new)."""
    codes = frame["demand_class"].to_numpy(dtype=float)
    names = np.asarray(CALIBRATION_GROUPS, dtype=object)
    return names[np.where(np.isnan(codes), len(DEMAND_CLASSES), np.nan_to_num(codes)).astype(np.int64)]


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
    """Trained quantile and mean boosters plus what rebuilds their inputs and outputs: quantiles, category
    levels, interval calibration offsets per calibration group (``ALL_ROWS`` for groups without their own)."""

    booster: xgb.Booster
    mean_booster: xgb.Booster
    quantiles: tuple[float, ...]
    categories: list[str]
    offsets: dict[str, tuple[float, ...]]

    def row_offsets(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibration offset of every row and quantile, shape (rows, quantiles)."""
        groups = calibration_groups(frame)
        out = np.empty((len(frame), len(self.quantiles)))
        for group in np.unique(groups):
            out[groups == group] = self.offsets.get(group, self.offsets[ALL_ROWS])
        return out

    def predict_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw booster output: quantiles of demand / scale, before calibration."""
        ratio = self.booster.inplace_predict(_design_matrix(frame, self.categories))
        return np.asarray(ratio).reshape(len(frame), len(self.quantiles))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Quantile forecasts in units, shape (rows, quantiles): calibrated ratio times the row's demand scale."""
        if frame.empty:
            return np.empty((0, len(self.quantiles)))
        ratio = self.predict_ratio(frame) + self.row_offsets(frame)
        return sort_quantiles(ratio * frame["scale"].to_numpy()[:, None])

    def predict_mean(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected daily demand in units, shape (rows,): the mean booster's ratio times the row's demand scale."""
        if frame.empty:
            return np.empty(0)
        ratio = np.asarray(self.mean_booster.inplace_predict(_design_matrix(frame, self.categories)))
        return np.maximum(ratio, 0.0) * frame["scale"].to_numpy()

    def save(self, folder: Path) -> None:
        self.booster.save_model(folder / BOOSTER_FILE)
        self.mean_booster.save_model(folder / MEAN_BOOSTER_FILE)
        spec = {
            "quantiles": list(self.quantiles),
            "categories": self.categories,
            "offsets": {group: list(values) for group, values in self.offsets.items()},
            "features": list(FEATURES),
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2))

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> QuantileForecaster:
        spec = json.loads((folder / SPEC_FILE).read_text())
        if spec["features"] != list(FEATURES):
            raise ValueError(f"model at {folder} was trained on other features than this code builds; retrain it")
        boosters = []
        for name in (BOOSTER_FILE, MEAN_BOOSTER_FILE):
            booster = xgb.Booster()
            booster.load_model(folder / name)
            booster.set_param({"device": device})
            boosters.append(booster)
        offsets = {group: tuple(values) for group, values in spec["offsets"].items()}
        return cls(*boosters, tuple(spec["quantiles"]), spec["categories"], offsets)


def upper_shift(residual: np.ndarray, zero: np.ndarray, quantile: float) -> float:
    """Shift of an upper quantile so that a share ``quantile`` of held-out actuals is at or below it *as
    published*, that is clipped at zero.

    A zero actual is under any published quantile, so on days that are mostly zero the plain
    residual quantile over-covers (0.945 instead of 0.9 on the real shop). Only the non-zero days
    need the shift: the share ``(quantile - zeros) / (1 - zeros)`` of them. When zeros alone reach
    the target (intermittent SKUs: 95% of days), no shift can bring coverage down to it, and the
    plain residual quantile is kept: a lower P90 would only lose quantile loss on the days that sell.
    """
    share = zero.mean()
    if share >= quantile or zero.all():
        return float(np.quantile(residual, quantile))
    return float(np.quantile(residual[~zero], (quantile - share) / (1 - share)))


def _calibration_offsets(
    model: QuantileForecaster, calibration: pd.DataFrame, min_rows: int
) -> dict[str, tuple[float, ...]]:
    """Shift of the outer quantiles (in demand/scale units) that makes held-out coverage nominal, per group.

    Boosted quantiles fit their training rows too tightly (overlapping origins make rows look alike),
    so raw P10-P90 intervals cover less than 80% out of sample. The q-quantile of held-out residuals
    is the shift that puts a share q of them below the forecast (split-conformal, per quantile); the
    upper quantile's shift accounts for the clip at zero (``upper_shift``). The median is left alone:
    it is fitted on the loss WAPE measures. Shifts are found per group of SKUs that sell about as
    often (Mondrian conformal, ``CALIBRATION_GROUPS``): one global shift over-widens rarely-selling
    SKUs' intervals to cover regular ones' misses. A group with fewer than ``min_rows`` held-out rows
    uses the shift of all rows.
    """
    units = calibration["units"].to_numpy()
    residual = units[:, None] / calibration["scale"].to_numpy()[:, None] - model.predict_ratio(calibration)
    middle = len(model.quantiles) // 2
    groups = calibration_groups(calibration)

    def shift(rows: np.ndarray) -> tuple[float, ...]:
        return tuple(
            0.0
            if i == middle
            else float(np.quantile(residual[rows, i], q))
            if i < middle
            else upper_shift(residual[rows, i], units[rows] == 0, q)
            for i, q in enumerate(model.quantiles)
        )

    offsets = {ALL_ROWS: shift(np.ones(len(calibration), dtype=bool))}
    for group in np.unique(groups):
        if (groups == group).sum() >= min_rows:
            offsets[str(group)] = shift(groups == group)
    return offsets


def _objective(config: ForecastConfig, mean: bool) -> dict:
    if not mean:
        return {"objective": "reg:quantileerror", "quantile_alpha": np.array(config.quantiles)}
    objective = {"objective": config.booster.mean_objective}
    if config.booster.mean_objective == "reg:tweedie":
        objective["tweedie_variance_power"] = config.booster.tweedie_variance_power
    return objective


def _fit_booster(
    frame: pd.DataFrame, categories: list[str], config: ForecastConfig, device: str, seed: int, mean: bool = False
):
    """One booster on ``units / scale`` weighted by ``scale``: the quantiles, or the mean when ``mean``."""
    scale = frame["scale"].to_numpy()
    params = {
        **_objective(config, mean),
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
    log.info(
        "fitted %s: %d rounds on %d rows (%s)", params["objective"], config.booster.n_estimators, len(frame), device
    )
    return booster


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def fit_quantile_model(
    frame: pd.DataFrame, config: ForecastConfig = DEFAULT_CONFIG, device: str = "cpu", seed: int = 0
) -> QuantileForecaster:
    """Fit the multi-quantile and the mean booster on ``units / scale`` weighted by ``scale``.

    Weighting by the scale makes the pinball loss the one on raw units and the mean's loss
    volume-weighted, as WAPE is. The last ``calibration_days`` of origins are held out from the
    quantile booster to calibrate its interval (their targets are after every fitted target, as in
    production); with too few held-out rows nothing is held out. The quantile booster learns from a
    sample of at most ``max_quantile_rows`` rows. The mean booster needs no
    calibration (its loss targets the mean), so it learns from every row, the latest weeks included.
    """
    categories = sorted(frame["category"].astype(str).unique())
    mean_booster = _fit_booster(frame, categories, config, device, seed, mean=True)
    split = frame["forecast_date"].max() - np.timedelta64(config.calibration_days, "D")
    calibration = frame[frame["origin_date"] >= split]
    fitted = frame[frame["forecast_date"] <= split]
    quantiles, no_offsets = tuple(config.quantiles), {ALL_ROWS: (0.0,) * len(config.quantiles)}
    if config.calibration_days == 0 or len(calibration) < config.min_calibration_rows or fitted.empty:
        log.warning("no interval calibration: %d held-out rows", len(calibration) if config.calibration_days else 0)
        booster = _fit_booster(_sample(frame, config.max_quantile_rows, seed), categories, config, device, seed)
        return QuantileForecaster(booster, mean_booster, quantiles, categories, no_offsets)
    booster = _fit_booster(_sample(fitted, config.max_quantile_rows, seed), categories, config, device, seed)
    model = QuantileForecaster(booster, mean_booster, quantiles, categories, no_offsets)
    offsets = _calibration_offsets(model, calibration, config.min_calibration_rows)
    log.info("interval calibration on %d held-out rows: offsets %s", len(calibration), offsets)
    return QuantileForecaster(model.booster, mean_booster, quantiles, categories, offsets)
