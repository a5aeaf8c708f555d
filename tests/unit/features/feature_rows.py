"""Tiny hand-made silver rows for the feature families; expected values in the tests are computed by hand.

As-of day D = 2024-03-10 (a Sunday). Catalogue: A shoes/b1 10.00 (12.50 a week
before), B shoes/b2 20.00, C hats 5.00, D uncategorised and inactive 8.00.
Inventory on D: A 0 on hand, B 3, C 100 (lead time 7); D has no row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

AS_OF = date(2024, 3, 10)

EVENTS_SCHEMA = (
    "event_id string, event_type string, user_id string, session_id string, sku string, quantity int, "
    "unit_price decimal(12,2), currency string, event_ts timestamp, event_date date, landing_date date, "
    "feed string, order_id string, channel string, user_agent string"
)
PRODUCTS_SCHEMA = (
    "snapshot_date date, sku string, title string, category string, brand string, unit_price decimal(12,2), "
    "active boolean"
)
INVENTORY_SCHEMA = (
    "snapshot_date date, sku string, on_hand int, on_order int, lead_time_days int, snapshot_ts timestamp"
)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(event_id, event_type, user, session, sku, at, quantity=None, price=None, order=None, landed=None):
    """One silver.events row; event_date is the UTC date of ``at``, landing_date defaults to it."""
    moment = ts(at)
    return (
        event_id,
        event_type,
        user,
        session,
        sku,
        quantity,
        Decimal(price) if price is not None else None,
        "EUR",
        moment,
        moment.date(),
        landed or moment.date(),
        "nightly",
        order,
        "web",
        "Mozilla/5.0",
    )


BASE_EVENTS = [
    event("e01", "view", "u1", "s1", "A", "2024-03-10T09:00:00"),
    event("e02", "add_to_cart", "u1", "s1", "A", "2024-03-10T09:01:00"),
    event("e03", "purchase", "u1", "s1", "A", "2024-03-10T09:02:00", 2, "10.00", "o1"),
    event("e04", "view", "u1", "s2", "B", "2024-03-05T10:00:00"),
    event("e05", "view", "u1", "s2", "C", "2024-03-05T10:01:00"),
    event("e06", "return", "u1", "s2b", "A", "2024-03-06T12:00:00", 1, "10.00", "o1"),
    event("e07", "purchase", "u1", "s3", "C", "2024-02-20T08:00:00", 1, "5.00", "o2"),
    event("e08", "view", "u1", "s4", "A", "2024-01-01T08:00:00"),
    event("e09", "view", "u1", "s5", "B", "2023-12-01T08:00:00"),
    event("e10", "view", "u2", "s6", "A", "2024-03-09T18:00:00"),
    event("e11", "view", "u2", "s6", "B", "2024-03-09T18:01:00"),
    event("e12", "add_to_cart", "u2", "s6", "B", "2024-03-09T18:02:00"),
    event("e13", "purchase", "u2", "s6", "B", "2024-03-09T18:03:00", 1, "17.00", "o3"),
    event("e14", "view", None, "s7", "A", "2024-03-10T20:00:00"),
    event("e15", "view", None, "s7", "C", "2024-03-10T20:01:00"),
]


def product_rows():
    rows = []
    for snapshot, price_a in ((date(2024, 3, 3), "12.50"), (date(2024, 3, 10), "10.00")):
        rows += [
            (snapshot, "A", "Runner", "shoes", "b1", Decimal(price_a), True),
            (snapshot, "B", "Boot", "shoes", "b2", Decimal("20.00"), True),
            (snapshot, "C", "Cap", "hats", None, Decimal("5.00"), True),
        ]
    rows.append((date(2024, 3, 10), "D", "Spare", None, None, Decimal("8.00"), False))
    return rows


INVENTORY_ROWS = [
    (AS_OF, "A", 0, 10, 5, ts("2024-03-10T23:00:00")),
    (AS_OF, "B", 3, 0, 5, ts("2024-03-10T23:00:00")),
    (AS_OF, "C", 100, 0, 7, ts("2024-03-10T23:00:00")),
]
