"""Customer snapshots see only what was known at the end of the as-of day; labels only what followed."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from models.customer.features import as_of_days, customer_orders, outcomes, snapshot

AS_OF = date(2025, 3, 31)


def _lines(rows: list[tuple[str, str, str, float, date]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "order_id", "line_type", "revenue", "event_date"])


@pytest.fixture
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    return customer_orders(
        _lines(
            [
                ("a", "o1", "purchase", 10.0, date(2025, 1, 1)),
                ("a", "o1", "purchase", 5.0, date(2025, 1, 1)),  # a second line of the same order
                ("a", "o2", "purchase", 30.0, date(2025, 3, 1)),
                ("a", "r1", "return", -9.0, date(2025, 3, 5)),
                ("a", "o3", "purchase", 99.0, date(2025, 4, 10)),  # after the as-of day
                ("b", "o4", "purchase", 20.0, date(2025, 3, 31)),  # on the as-of day: known
                ("c", "o5", "purchase", 50.0, date(2024, 1, 1)),  # more than a year before
                (None, "o6", "purchase", 70.0, date(2025, 3, 1)),  # anonymous
            ]
        )
    )


def test_a_snapshot_holds_the_year_to_the_end_of_the_as_of_day(history):
    orders, returns = history
    frame = snapshot(orders, returns, AS_OF).set_index("user_id")
    assert sorted(frame.index) == ["a", "b"]
    a = frame.loc["a"]
    assert a["orders_365d"] == 2 and a["revenue_365d"] == 45.0 and a["order_days_365d"] == 2
    assert a["recency_days"] == 30 and a["tenure_days"] == 89
    assert a["orders_30d"] == 0 and a["orders_90d"] == 2 and a["revenue_90d"] == 45.0
    assert a["mean_gap_days"] == 59 and a["overdue_ratio"] == pytest.approx(30 / 59)
    assert a["returned_share"] == pytest.approx(9 / 45)
    assert (a["frequency"], a["recency"], a["age"]) == (1, 59, 89)
    b = frame.loc["b"]
    assert b["recency_days"] == 0 and b["orders_30d"] == 1 and b["frequency"] == 0
    assert pd.isna(b["mean_gap_days"])


def test_later_orders_never_change_a_snapshot(history):
    orders, returns = history
    later = pd.DataFrame(
        {
            "user_id": ["a", "z"],
            "order_id": ["x1", "x2"],
            "order_date": pd.to_datetime(["2025-04-01"] * 2),
            "revenue": 1.0,
        }
    )
    with_later = snapshot(pd.concat([orders, later], ignore_index=True), returns, AS_OF)
    pd.testing.assert_frame_equal(with_later, snapshot(orders, returns, AS_OF))


def test_outcomes_count_only_the_horizon_after_the_as_of_day(history):
    orders, _ = history
    customers = pd.Series(["a", "b"])
    assert outcomes(orders, customers, AS_OF, 30).to_dict("list") == {
        "user_id": ["a", "b"],
        "purchased": [True, False],
        "revenue": [99.0, 0.0],
    }
    assert not outcomes(orders, customers, AS_OF, 9)["purchased"].any()


def test_training_labels_end_before_the_evaluation_and_short_histories_train_nothing():
    run = date(2025, 12, 31)
    evaluation, training = as_of_days(run, date(2025, 1, 1), 30, snapshots=3, step_days=7, min_history=28)
    assert evaluation == run - timedelta(days=30)
    assert training == [evaluation - timedelta(days=30 + 7 * k) for k in range(3)]
    assert all(day + timedelta(days=30) <= evaluation for day in training)
    # 88 days of orders: the newest training day would come before 28 days of history.
    assert as_of_days(run, run - timedelta(days=87), 30, 3, 7, 28) == (None, [])
    assert as_of_days(run, run - timedelta(days=88), 30, 3, 7, 28)[1] == [run - timedelta(days=60)]
