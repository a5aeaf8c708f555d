"""The forecast output gate and the small pure helpers of the pipeline."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from models.forecast.pipeline import ForecastOutputError, active_skus, check_forecasts, latest_snapshots


def _forecasts(skus: list[str], horizon: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": np.repeat(skus, horizon),
            "horizon_day": np.tile(np.arange(1, horizon + 1), len(skus)),
            "mean": 2.5,
            "p10": 1.0,
            "p50": 2.0,
            "p90": 3.0,
        }
    )


def test_valid_forecasts_pass() -> None:
    check_forecasts(_forecasts(["a", "b"]), np.array(["a", "b"]), horizon=3)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("p50", np.nan, "1 row(s) with non-finite forecasts, e.g. ['b']"),
        ("p90", np.inf, "non-finite"),
        ("mean", np.nan, "1 row(s) with non-finite forecasts"),
        ("p10", -0.5, "1 row(s) with negative forecasts"),
        ("mean", -0.1, "1 row(s) with negative forecasts"),
        ("p90", 1.5, "1 row(s) with crossed quantiles, e.g. ['b']"),
    ],
)
def test_bad_values_are_refused(column: str, value: float, message: str) -> None:
    forecasts = _forecasts(["a", "b"])
    forecasts.loc[4, column] = value
    with pytest.raises(ForecastOutputError, match=re.escape(message)):
        check_forecasts(forecasts, np.array(["a", "b"]), horizon=3)


def test_a_mean_above_the_interval_passes() -> None:
    """Lumpy demand: P10 = P50 = P90 = 0 on most days, yet units are expected on average."""
    forecasts = _forecasts(["a"]).assign(p10=0.0, p50=0.0, p90=0.0, mean=0.4)
    check_forecasts(forecasts, np.array(["a"]), horizon=3)


def test_every_active_sku_needs_the_whole_horizon() -> None:
    forecasts = _forecasts(["a", "b"]).drop(index=5)
    with pytest.raises(ForecastOutputError, match=r"2 active SKU\(s\) without all 3 forecast days, e.g. \['b', 'c'\]"):
        check_forecasts(forecasts, np.array(["a", "b", "c"]), horizon=3)


def test_active_skus_have_a_recent_row() -> None:
    demand = pd.DataFrame(
        {
            "feature_date": [date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 10), date(2024, 1, 11)],
            "sku": ["old", "recent", "recent", "future"],
        }
    )
    assert active_skus(demand, date(2024, 1, 10), lookback_days=7).tolist() == ["recent"]


def test_latest_snapshot_per_sku() -> None:
    snapshots = pd.DataFrame(
        {
            "snapshot_date": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 2), date(2024, 1, 1)],
            "sku": ["a", "a", "a", "b"],
            "on_hand": [1, 2, 3, 4],
            "snapshot_ts": [
                datetime(2024, 1, 1, tzinfo=UTC),
                datetime(2024, 1, 2, 8, tzinfo=UTC),
                datetime(2024, 1, 2, 20, tzinfo=UTC),
                datetime(2024, 1, 1, tzinfo=UTC),
            ],
        }
    )
    assert latest_snapshots(snapshots).set_index("sku")["on_hand"].to_dict() == {"a": 3, "b": 4}
