"""Panel and model frames on tiny hand-made series: censoring, shrinkage, weekday lookups, point in time,
demand classes and holidays."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models.forecast.calendar import holiday_days, holiday_features
from models.forecast.features import (
    DEMAND_CLASSES,
    FEATURES,
    SKU_FEATURES,
    build_panel,
    build_scoring_frame,
    build_training_frame,
    classify_demand,
    demand_class_codes,
)
from shopml.config.forecast import ForecastConfig

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


def test_syntetos_boylan_cut_offs() -> None:
    codes = classify_demand(np.array([1.0, 1.0, 1.32, 3.0, 1.31]), np.array([0.1, 0.49, 0.1, 2.0, 0.48]))
    assert [DEMAND_CLASSES[c] for c in codes] == ["smooth", "erratic", "intermittent", "lumpy", "smooth"]


def test_each_demand_class_from_a_series() -> None:
    series = {
        "smooth": [5.0, 6.0, 5.0, 4.0, 5.0, 6.0] * 5,  # every day, similar sizes
        "erratic": [1.0, 20.0] * 15,  # every day, sizes 1 and 20: CV^2 = 9.5^2 / 10.5^2 = 0.82
        "intermittent": [0.0, 0.0, 5.0] * 10,  # a sale every third day (ADI 3), always 5
        "lumpy": [0.0, 0.0, 1.0, 0.0, 0.0, 20.0] * 5,  # ADI 3, CV^2 0.82
        "never": [0.0] * 30,  # no sale: infinite ADI, no size variation
    }
    rows = [row for sku, values in series.items() for row in _rows(sku, values)]
    panel = build_panel(pd.DataFrame(rows), START + timedelta(days=29))

    codes = demand_class_codes(panel, end=29, days=182, cutoffs=(1.32, 0.49))

    classes = dict(zip(panel.skus, (DEMAND_CLASSES[c] for c in codes), strict=True))
    assert classes == {
        "smooth": "smooth",
        "erratic": "erratic",
        "intermittent": "intermittent",
        "lumpy": "lumpy",
        "never": "intermittent",
    }
    scoring = build_scoring_frame(panel, START + timedelta(days=29), CONFIG).groupby("sku")["demand_class"].first()
    assert scoring.to_dict() == {sku: float(DEMAND_CLASSES.index(name)) for sku, name in classes.items()}


def test_holiday_features_of_target_days() -> None:
    christmas = np.datetime64("2024-12-25", "D").astype(np.int64)
    gb = holiday_days("GB", 2024, 2025)
    assert christmas in gb and christmas + 1 in gb  # Christmas and Boxing Day
    is_holiday, days_to = holiday_features(np.array([christmas - 3, christmas, christmas + 2]), gb, cap=30)
    assert is_holiday.tolist() == [0.0, 1.0, 0.0]
    # 2024-12-27's next GB holiday is New Year's Day, 5 days on.
    assert days_to.tolist() == [3.0, 0.0, 5.0]
    none, far = holiday_features(np.array([christmas]), holiday_days("", 2024, 2025), cap=30)
    assert none.tolist() == [0.0] and far.tolist() == [30.0]


def test_scoring_frame_marks_holidays_on_the_target_day() -> None:
    origin = date(2024, 12, 20)
    frame = pd.DataFrame(_rows("a", [1.0] * 30, first_day=(origin - START).days - 29))
    scoring = build_scoring_frame(build_panel(frame, origin), origin, CONFIG).set_index("horizon_day")

    assert scoring.index[scoring["target_is_holiday"] == 1].tolist() == [5, 6, 12]  # 25th, 26th, 1 January
    assert scoring.loc[1, "target_days_to_holiday"] == 4.0
    off = build_scoring_frame(build_panel(frame, origin), origin, CONFIG.model_copy(update={"holiday_calendar": ""}))
    assert (off["target_is_holiday"] == 0).all()


def test_unknown_holiday_calendar_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="unknown holiday calendar 'GB-XYZ'"):
        ForecastConfig(holiday_calendar="GB-XYZ")
    assert ForecastConfig(holiday_calendar="GB-ENG").holiday_calendar == "GB-ENG"
