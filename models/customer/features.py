"""Point-in-time customer snapshots from order lines: what was known at the end of an as-of day, and what followed.

A snapshot as of day A sees orders dated A or earlier, within the ``LOOKBACK_DAYS`` before it; its
labels come from the orders dated A+1..A+h only. Training, evaluation and scoring all build their
frames with these functions, so a feature means the same at every step and no label leaks in.
The order history is what every shop has (a wholesaler's export has no views or categories).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

# Features look back one year: the customer's "first" order is the first within it.
LOOKBACK_DAYS = 365
LINE_COLUMNS = ("user_id", "order_id", "line_type", "revenue", "event_date")
FEATURES = (
    "recency_days",
    "tenure_days",
    "order_days_365d",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "revenue_30d",
    "revenue_90d",
    "revenue_365d",
    "avg_order_value",
    "mean_gap_days",
    "overdue_ratio",
    "returned_share",
)


def customer_orders(lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Known customers' orders (user_id, order_id, order_date, revenue) and returns (user_id, return_date, revenue).

    Anonymous lines have no customer to score and are left out.
    """
    known = lines[lines["user_id"].notna()]
    revenue = known["revenue"].astype(float)
    dates = pd.to_datetime(known["event_date"])
    purchases = known.assign(revenue=revenue, order_date=dates)[known["line_type"] == "purchase"]
    orders = purchases.groupby(["user_id", "order_id"], as_index=False).agg(
        order_date=("order_date", "min"), revenue=("revenue", "sum")
    )
    returned = known.assign(revenue=-revenue, return_date=dates)[known["line_type"] == "return"]
    return orders, returned.loc[:, ["user_id", "return_date", "revenue"]].reset_index(drop=True)


def snapshot(orders: pd.DataFrame, returns: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One row per customer with an order in the year up to ``as_of``: the ``FEATURES`` as of its end,
    and the BG/NBD summary (``frequency`` repeat order days, ``recency`` and ``age`` in days).
    """
    end = pd.Timestamp(as_of)
    seen = orders[(orders["order_date"] <= end) & (orders["order_date"] > end - pd.Timedelta(days=LOOKBACK_DAYS))]
    if seen.empty:
        return pd.DataFrame(columns=["user_id", *FEATURES, "frequency", "recency", "age", "monetary"])
    age_days = (end - seen["order_date"]).dt.days
    grouped = seen.assign(age_days=age_days).groupby("user_id")
    frame = grouped.agg(
        first=("order_date", "min"),
        last=("order_date", "max"),
        order_days_365d=("order_date", "nunique"),
        orders_365d=("order_id", "size"),
        revenue_365d=("revenue", "sum"),
    )
    for window in (30, 90):
        recent = seen[age_days < window].groupby("user_id")
        frame[f"orders_{window}d"] = recent.size().reindex(frame.index, fill_value=0)
        frame[f"revenue_{window}d"] = recent["revenue"].sum().reindex(frame.index, fill_value=0.0)
    frame["recency_days"] = (end - frame["last"]).dt.days
    frame["tenure_days"] = (end - frame["first"]).dt.days
    frame["avg_order_value"] = frame["revenue_365d"] / frame["orders_365d"]
    repeat_days = frame["order_days_365d"] - 1
    span = (frame["last"] - frame["first"]).dt.days
    frame["mean_gap_days"] = (span / repeat_days.replace(0, np.nan)).astype(float)
    frame["overdue_ratio"] = frame["recency_days"] / frame["mean_gap_days"]
    kept = returns[(returns["return_date"] <= end) & (returns["return_date"] > end - pd.Timedelta(days=LOOKBACK_DAYS))]
    returned = kept.groupby("user_id")["revenue"].sum().reindex(frame.index, fill_value=0.0)
    frame["returned_share"] = (returned / frame["revenue_365d"].where(frame["revenue_365d"] > 0)).clip(0, 1)
    frame["frequency"] = repeat_days
    frame["recency"] = span
    frame["age"] = frame["tenure_days"]
    # Gamma-Gamma's spend per repeat order day (the first order is not a repeat).
    frame["monetary"] = frame["revenue_365d"] / frame["order_days_365d"]
    frame = frame.reset_index().drop(columns=["first", "last"])
    return frame.astype({name: float for name in FEATURES})


def outcomes(orders: pd.DataFrame, customers: pd.Series, as_of: date, horizon_days: int) -> pd.DataFrame:
    """What each customer did in the ``horizon_days`` after ``as_of``: ``purchased`` and ``revenue``."""
    start, end = pd.Timestamp(as_of), pd.Timestamp(as_of + timedelta(days=horizon_days))
    after = orders[(orders["order_date"] > start) & (orders["order_date"] <= end)]
    revenue = after.groupby("user_id")["revenue"].sum().reindex(customers, fill_value=0.0)
    return pd.DataFrame(
        {
            "user_id": customers.to_numpy(),
            "purchased": customers.isin(after["user_id"]).to_numpy(),
            "revenue": revenue.to_numpy(),
        }
    )


def as_of_days(run_date: date, first_order: date, horizon_days: int, snapshots: int, step_days: int, min_history: int):
    """The evaluation as-of day and the training as-of days of a head, newest first.

    Evaluation looks at the horizon that ended on ``run_date``; training snapshots end their labels
    before the evaluation's as-of day, so the gate judges days the candidate never saw. A snapshot
    needs ``min_history`` days of orders before it. Returns (None, []) when no training day fits.
    """
    evaluation = run_date - timedelta(days=horizon_days)
    newest = evaluation - timedelta(days=horizon_days)
    earliest = first_order + timedelta(days=min_history)
    training = [newest - timedelta(days=k * step_days) for k in range(snapshots)]
    training = [day for day in training if day >= earliest]
    return (evaluation, training) if training else (None, [])
