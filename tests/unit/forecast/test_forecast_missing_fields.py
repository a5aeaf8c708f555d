"""Demand from shops whose exports lack fields: the forecaster fits, forecasts and passes its output gate.

Cases: no categories (short histories then lean on the catalogue-wide pattern), null and zero
prices, and no inventory feed (null stockout flags, no snapshots). Brands, views and carts are
not read by the forecaster at all (``DEMAND_COLUMNS``), so they cannot be missing for it.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from models.forecast.backtest import decide_promotion, run_backtest
from models.forecast.features import (
    DEMAND_COLUMNS,
    SKU_FEATURES,
    UNKNOWN_CATEGORY,
    DemandPanel,
    build_panel,
    build_scoring_frame,
    build_training_frame,
)
from models.forecast.inventory import PLAN_COLUMNS, plan_inventory
from models.forecast.model import fit_quantile_model
from models.forecast.pipeline import active_skus, check_forecasts, forecast_rows
from models.forecast.synthetic import generate_demand
from shopml.config.forecast import BoosterConfig, ForecastConfig

START = date(2024, 1, 1)
N_DAYS = 120
RUN_DATE = START + timedelta(days=N_DAYS - 1)
CONFIG = ForecastConfig(booster=BoosterConfig(n_estimators=30, n_jobs=1), backtest_folds=1)
NEW_SKU = "SKU-NEW"


def _demand(**columns) -> pd.DataFrame:
    """Synthetic demand of 24 SKUs plus one launched three days before the run date, with columns overridden."""
    frame, _ = generate_demand(n_skus=24, n_days=N_DAYS, start=START, seed=3)
    new = frame[frame["sku"] == "SKU-00001"].tail(3).assign(sku=NEW_SKU)
    frame = pd.concat([frame, new], ignore_index=True)
    for name, value in columns.items():
        frame[name] = value(frame) if callable(value) else value
    return frame


def _forecast(demand: pd.DataFrame) -> tuple[DemandPanel, pd.DataFrame, pd.DataFrame]:
    """train_forecaster then score_forecasts, in memory: (panel, scoring frame, forecasts as published)."""
    panel = build_panel(demand, RUN_DATE, CONFIG.history_days)
    model = fit_quantile_model(build_training_frame(panel, RUN_DATE, CONFIG, seed=0), CONFIG, "cpu", seed=0)
    skus = active_skus(demand, RUN_DATE, CONFIG.active_lookback_days)
    frame = build_scoring_frame(panel, RUN_DATE, CONFIG, skus=skus)
    forecasts = forecast_rows(
        frame["sku"].to_numpy(),
        frame["forecast_date"].to_numpy(),
        frame["horizon_day"].to_numpy(),
        model.predict_mean(frame),
        model.predict(frame),
    )
    # The output gate: finite, non-negative, non-crossing, every active SKU with all horizon days.
    check_forecasts(forecasts, skus, CONFIG.horizon)
    assert len(skus) == 25 and len(forecasts) == 25 * CONFIG.horizon
    return panel, frame, forecasts


def _global_level(panel: DemandPanel, days: int = 28) -> float:
    end = panel.index_of(RUN_DATE)
    window = panel.in_stock[:, end + 1 - days : end + 1]
    return float(np.nansum(window) / (~np.isnan(window)).sum())


def test_all_categories_null_fall_back_to_the_global_pattern():
    demand = _demand(category=None)
    panel, frame, forecasts = _forecast(demand)

    assert set(panel.categories) == {UNKNOWN_CATEGORY}
    new = frame[frame["sku"] == NEW_SKU]
    assert new[list(SKU_FEATURES)].isna().all().all()  # too short a history for its own features
    level = _global_level(panel)
    np.testing.assert_allclose(new["category_level"] * new["scale"], level)
    assert new["scale"].iloc[0] == pytest.approx((demand.loc[demand["sku"] == NEW_SKU, "units"].sum() + 3 * level) / 6)
    p50 = forecasts.loc[forecasts["sku"] == NEW_SKU, "p50"]
    assert (p50 > 0).all() and p50.mean() < 5 * level

    evaluation, metrics, _ = run_backtest(panel, RUN_DATE, CONFIG, "cpu", seed=0)
    assert not evaluation.empty and np.isfinite(metrics["value"]).all()
    assert set(metrics["segment"]) >= {"overall", f"category={UNKNOWN_CATEGORY}"}
    _, verdict = decide_promotion(metrics, CONFIG)
    assert "WAPE" in verdict


def _rows(sku: str, values: list[float], category: str | None, first_day: int = 0) -> list[dict]:
    return [
        {
            "feature_date": START + timedelta(days=first_day + i),
            "sku": sku,
            "category": category,
            "units": value,
            "unit_price": 10.0,
            "on_promotion": False,
            "is_stockout": False,
        }
        for i, value in enumerate(values)
    ]


def test_a_sku_without_category_reads_the_catalogue_wide_level_not_other_uncategorised_skus():
    frame = pd.DataFrame(
        _rows("c-old", [2.0] * 30, "c")
        + _rows("d-old", [10.0] * 30, "d")
        + _rows("x-old", [50.0] * 30, None)
        + _rows("x-new", [8.0] * 3, None, first_day=27)
    )
    origin = START + timedelta(days=29)
    config = CONFIG.model_copy(update={"short_history_fraction": 0.0})
    scoring = build_scoring_frame(build_panel(frame, origin), origin, config).set_index("sku")

    everyone = (28 * 2.0 + 28 * 10.0 + 28 * 50.0 + 3 * 8.0) / (28 * 3 + 3)
    new = scoring.loc["x-new"]
    assert new["scale"].iloc[0] == pytest.approx((3 * 8.0 + 3 * everyone) / 6)
    assert (new["category_level"] * new["scale"]).to_numpy() == pytest.approx(everyone)
    # A categorised SKU keeps its own category's level.
    c_old = scoring.loc["c-old"]
    assert (c_old["category_level"] * c_old["scale"]).to_numpy() == pytest.approx(2.0)


def test_null_and_zero_prices():
    # Odd SKUs have no price at all; even ones a zero price on every third day, which the demand job
    # flags as a promotion (a zero paid price is always "discounted").
    sku_number = lambda f: f["sku"].str.extract(r"(\d+)$")[0].fillna("1").astype(int)  # noqa: E731
    zero_day = lambda f: pd.to_datetime(f["feature_date"]).dt.day % 3 == 0  # noqa: E731
    demand = _demand(
        unit_price=lambda f: np.where(sku_number(f) % 2 == 1, np.nan, np.where(zero_day(f), 0.0, f["unit_price"])),
        on_promotion=lambda f: np.where(zero_day(f) & (sku_number(f) % 2 == 0), True, f["on_promotion"]),
    )
    panel, frame, forecasts = _forecast(demand)

    assert not (panel.price <= 0).any()  # zero is unknown, not free
    zero = np.isnan(panel.price) & ~np.isnan(panel.units)
    assert zero.any() and not panel.promo[zero].any()
    unpriced = frame["sku"].isin([s for s in panel.skus if s.endswith(("1", "3", "5", "7", "9"))])
    assert frame.loc[unpriced, "price_ratio_91"].isna().all()
    assert frame.loc[~unpriced & (frame["sku"] != NEW_SKU), "price_ratio_91"].notna().any()
    assert (forecasts.groupby("sku")["p50"].mean() > 0).mean() > 0.9


def test_no_inventory_feed():
    demand = _demand(is_stockout=None)
    assert demand["is_stockout"].isna().all()
    panel, frame, forecasts = _forecast(demand)

    assert not panel.stockout.any()
    np.testing.assert_array_equal(panel.in_stock, panel.units)  # nothing censored
    assert (frame[["stockout_now", "stockout_share_28"]].fillna(0) == 0).all().all()
    # No snapshots: the plan is empty (score_forecasts then publishes forecasts only), never a crash.
    snapshots = pd.DataFrame(columns=["sku", "on_hand", "on_order", "lead_time_days"])
    plan = plan_inventory(forecasts, snapshots, CONFIG)
    assert plan.empty and list(plan.columns) == list(PLAN_COLUMNS)
    # A feed covering only some SKUs plans those and leaves the rest out.
    some = pd.DataFrame({"sku": ["SKU-00002"], "on_hand": [5], "on_order": [None], "lead_time_days": [None]})
    partial = plan_inventory(forecasts, some, CONFIG)
    assert partial["sku"].tolist() == ["SKU-00002"]
    assert np.isfinite(partial[list(PLAN_COLUMNS[4:-1])].to_numpy(dtype=float)).all()


def test_demand_columns_do_not_include_brand_views_or_carts():
    assert not {"brand", "views", "carts", "n_views", "n_carts"} & set(DEMAND_COLUMNS)
