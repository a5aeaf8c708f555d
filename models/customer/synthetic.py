"""Seeded customers with planted behaviour, as silver.order_lines rows, for the customer scores' tests.

Planted, with known shares: loyal customers (frequent, never leave), regulars (a steady rate, a small
chance to leave after each order: BG/NBD's own story), churners (frequent until a random day, then
never again) and one-time buyers. Spend per order is gamma distributed around each customer's mean.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from shopml.catalog import SILVER_ORDER_LINES, spec

# Share, orders per day while active, chance to leave after an order.
SEGMENTS = {
    "loyal": (0.15, 1 / 10, 0.0),
    "regular": (0.45, 1 / 25, 0.05),
    "churner": (0.25, 1 / 12, None),
    "one_time": (0.15, 0.0, 1.0),
}


def generate_customers(
    n_customers: int = 1500, n_days: int = 240, start: date = date(2025, 1, 1), seed: int = 0
) -> tuple[pa.Table, pd.DataFrame]:
    """Order lines in the ``silver.order_lines`` schema, and each customer's planted segment and churn day."""
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    segment = rng.choice(names, size=n_customers, p=[SEGMENTS[name][0] for name in names])
    # Customers arrive all along, and churners leave one to five months after their first order.
    first = rng.integers(0, n_days, size=n_customers)
    churn_day = np.where(segment == "churner", first + rng.integers(30, 150, size=n_customers), n_days)
    spend = rng.gamma(4.0, 15.0, size=n_customers)
    rows = []
    for i in range(n_customers):
        _, rate, leave = SEGMENTS[segment[i]]
        day = int(first[i])
        while day < min(n_days, churn_day[i]):
            rows.append((i, day, rng.gamma(6.0, spend[i] / 6.0)))
            if rate == 0 or (leave and rng.random() < leave):
                break
            day += 1 + int(rng.exponential(1 / rate))
    customer, day, revenue = (np.array(column) for column in zip(*rows, strict=True))
    event_date = [start + timedelta(days=int(d)) for d in day]
    n = len(rows)
    lines = pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(n)],
            "order_id": [f"o{k}" for k in range(n)],
            "user_id": [f"c{c:05d}" for c in customer],
            "sku": "SKU-1",
            "line_type": "purchase",
            "quantity": np.ones(n, dtype=np.int32),
            "unit_price": [Decimal(f"{r:.2f}") for r in revenue],
            "revenue": [Decimal(f"{r:.2f}") for r in revenue],
            "currency": "GBP",
            "event_ts": [datetime.combine(d, datetime.min.time(), tzinfo=UTC) for d in event_date],
            "event_date": event_date,
            "landing_date": event_date,
            "feed": "nightly",
        }
    )
    schema = spec(SILVER_ORDER_LINES).arrow_schema()
    lines = lines.reindex(columns=schema.names)
    truth = pd.DataFrame(
        {"user_id": [f"c{c:05d}" for c in range(n_customers)], "segment": segment, "churn_day": churn_day}
    )
    return pa.Table.from_pandas(lines, schema=schema, preserve_index=False), truth
