"""Panel and model frames on tiny hand-made series: censoring, shrinkage, weekday lookups, point in time."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from models.forecast.config import ForecastConfig
from models.forecast.features import (
    FEATURES,
    SKU_FEATURES,
    build_panel,
    build_scoring_frame,
    build_training_frame,
)

START = date(2024, 1, 1)  # a Monday
CONFIG = ForecastConfig(horizon=14, prior_days=3.0, min_history_days=14, short_history_fraction=0.0)


def _rows(
    sku: str, values: list[float], first_day: int = 0, stockout: tuple[int, ...] = (), category="c"
) -> list[dict]:
    return [
        {
            "feature_date": START + timedelta(days=first_day + i),
            "sku": sku,
            "category": category,
            "units": value,
            "unit_price": 10.0,
            "on_promotion": False,
            "is_stockout": first_day + i in stockout,
        }
        for i, value in enumerate(values)
    ]


def test_build_panel_is_point_in_time_and_censors_stockouts() -> None:
    rows = _rows("a", [1.0, 2.0, 0.0, 4.0], stockout=(2,)) + _rows("b", [5.0, 6.0], first_day=2, category=None)
    rows += _rows("a", [99.0], first_day=10)  # after the panel's end: never read
    frame = pd.DataFrame(rows).drop(index=4)  # b misses its first day
    panel = build_panel(frame, end=START + timedelta(days=3))

    assert panel.skus.tolist() == ["a", "b"] and panel.n_days == 4
    assert panel.categories.tolist() == ["c", "__unknown__"]
    assert panel.first_day.tolist() == [0, 3]
    np.testing.assert_array_equal(panel.in_stock[0], [1.0, 2.0, np.nan, 4.0])
    np.testing.assert_array_equal(panel.units[1], [np.nan, np.nan, np.nan, 6.0])


def test_scale_is_shrunk_towards_the_category_and_ignores_stockout_days() -> None:
    a = [4.0] * 28
    a[20] = 0.0  # a stockout: not a day of zero demand
    frame = pd.DataFrame(_rows("a", a, stockout=(20,)) + _rows("b", [1.0] * 28))
    panel = build_panel(frame, end=START + timedelta(days=27))

    scoring = build_scoring_frame(panel, START + timedelta(days=27), CONFIG)
    first = scoring[scoring["horizon_day"] == 1].set_index("sku")

    category_level = (27 * 4.0 + 28 * 1.0) / 55  # per in-stock SKU-day
    scale_a = (27 * 4.0 + 3 * category_level) / (27 + 3)
    assert first.loc["a", "scale"] == pytest.approx(scale_a)
    assert first.loc["b", "scale"] == pytest.approx((28 * 1.0 + 3 * category_level) / 31)
    assert first.loc["a", "sku_mean_28"] * scale_a == pytest.approx(4.0)
    assert first.loc["a", "sku_zero_share_28"] == 0.0
    assert first.loc["a", "stockout_share_28"] == pytest.approx(1 / 28)
    assert first.loc["a", "sku_std_28"] == 0.0
    assert first.loc["a", "category_level"] == pytest.approx(category_level / scale_a)


def test_weekday_features_look_back_from_the_origin() -> None:
    frame = pd.DataFrame(_rows("a", [float(d) for d in range(28)]))
    origin = START + timedelta(days=27)  # a Sunday
    scoring = build_scoring_frame(build_panel(frame, origin), origin, CONFIG).set_index("horizon_day")

    raw = scoring["sku_same_weekday_last"] * scoring["scale"]
    # h=1 is a Monday: last Monday is day 21; h=7 a Sunday: day 27 itself; h=8 a Monday again: day 21.
    assert raw.loc[[1, 7, 8]].tolist() == pytest.approx([21.0, 27.0, 21.0])
    mean_4 = scoring["sku_same_weekday_mean_4"] * scoring["scale"]
    assert mean_4.loc[1] == pytest.approx((21 + 14 + 7 + 0) / 4)
    assert scoring.loc[1, "target_weekday"] == 0 and scoring.loc[7, "target_weekday"] == 6
    assert scoring["forecast_date"].iloc[0] == pd.Timestamp(origin + timedelta(days=1))
    assert list(scoring.index) == list(range(1, 15))


def test_short_history_uses_category_level_features() -> None:
    frame = pd.DataFrame(_rows("old", [2.0] * 30) + _rows("new", [8.0, 8.0, 8.0], first_day=27))
    origin = START + timedelta(days=29)
    scoring = build_scoring_frame(build_panel(frame, origin), origin, CONFIG).set_index("sku")

    new = scoring.loc["new"]
    assert len(new) == CONFIG.horizon
    assert new[list(SKU_FEATURES)].isna().all().all()
    assert (new["history_days"] == 3).all()
    category_level = (28 * 2.0 + 3 * 8.0) / 31  # in-stock SKU-days of the last 28 days
    assert new["scale"].iloc[0] == pytest.approx((3 * 8.0 + 3 * category_level) / 6)
    assert scoring.loc["old", list(SKU_FEATURES)].notna().all().all()


def test_training_frame_targets_stay_before_the_cutoff_and_skip_censored_days() -> None:
    rng = np.random.default_rng(0)
    stockout = tuple(range(40, 45))
    frame = pd.DataFrame(
        _rows("a", rng.poisson(5, 80).astype(float).tolist(), stockout=stockout)
        + _rows("b", rng.poisson(2, 80).astype(float).tolist())
    )
    panel = build_panel(frame, START + timedelta(days=79))
    cutoff = START + timedelta(days=60)
    config = CONFIG.model_copy(update={"train_origin_step_days": 1})

    training = build_training_frame(panel, cutoff, config, seed=1)

    assert training["forecast_date"].max() == pd.Timestamp(cutoff)
    assert training["origin_date"].max() == pd.Timestamp(cutoff - timedelta(days=1))
    censored = {pd.Timestamp(START + timedelta(days=d)) for d in stockout}
    assert not training.loc[training["sku"] == "a", "forecast_date"].isin(censored).any()
    day = (training["forecast_date"] - pd.Timestamp(START)).dt.days.to_numpy()
    sku_row = np.where(training["sku"] == "a", 0, 1)
    np.testing.assert_array_equal(training["units"].to_numpy(), panel.units[sku_row, day])
    assert list(training.columns[3:-1]) == [*FEATURES, "scale"]


def test_training_frame_is_capped_and_shows_truncated_histories() -> None:
    frame = pd.DataFrame(_rows("a", [3.0] * 200) + _rows("b", [1.0] * 200))
    panel = build_panel(frame, START + timedelta(days=199))
    config = CONFIG.model_copy(
        update={"train_origin_step_days": 1, "max_train_rows": 1000, "short_history_fraction": 0.2}
    )

    training = build_training_frame(panel, START + timedelta(days=199), config, seed=1)

    assert 800 < len(training) < 1200
    short = training["history_days"] < config.min_history_days
    assert 0.1 < short.mean() < 0.3
    assert training.loc[short, list(SKU_FEATURES)].isna().all().all()


def test_scoring_unknown_sku_is_an_error() -> None:
    frame = pd.DataFrame(_rows("a", [1.0] * 10))
    origin = START + timedelta(days=9)
    with pytest.raises(ValueError, match="no history"):
        build_scoring_frame(build_panel(frame, origin), origin, CONFIG, skus=np.array(["a", "zzz"]))
