"""A small generated lake for the feature job and the analyst queries.

Silver tables are written from hand-made rows (the sample-data generator can
replace ``silver_rows``): 4 customers, anonymous traffic and 5 SKUs over
2024-02-20..2024-03-10, one catalogue and inventory snapshot per week, plus
quarantine and validation rows so every file in ``sql/`` has something to read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

FIRST_DAY = date(2024, 2, 20)
LAST_DAY = date(2024, 3, 10)
NEXT_DAY = LAST_DAY + timedelta(days=1)
SKUS = {
    "A": ("shoes", "10.00"),
    "B": ("shoes", "20.00"),
    "C": ("hats", "5.00"),
    "D": ("hats", "8.00"),
    "E": (None, "3.00"),
}

EVENTS_SCHEMA = (
    "event_id string, event_type string, user_id string, session_id string, sku string, quantity int, "
    "unit_price decimal(12,2), currency string, event_ts timestamp, event_date date, landing_date date, "
    "feed string, order_id string, channel string, user_agent string"
)


def make_event(event_id, event_type, user, session, sku, at, quantity=None, landed=None):
    """A silver.events row: purchases and returns carry quantity, list price and an order id."""
    price = Decimal(SKUS[sku][1]) if quantity else None
    order = f"o-{session}" if quantity else None
    return (
        event_id, event_type, user, session, sku, quantity, price, "EUR", at, at.date(),
        landed or at.date(), "nightly", order, "web", "Mozilla/5.0",
    )  # fmt: skip


def day_events(day: date, landed: date | None = None, prefix: str = "") -> list[tuple]:
    """A deterministic day of traffic: every customer browses two SKUs, some buy, anonymous visitors browse."""
    rows = []
    n = (day - FIRST_DAY).days
    skus = sorted(SKUS)
    for u in range(4):
        user, session = f"u{u}", f"{prefix}s{u}-{day.isoformat()}"
        first, second = skus[(n + u) % 5], skus[(n + 2 * u + 1) % 5]
        at = datetime(day.year, day.month, day.day, 8 + 3 * u, tzinfo=UTC)
        stamp = f"{prefix}{day.isoformat()}-{u}"
        rows += [
            make_event(f"v1-{stamp}", "view", user, session, first, at, landed=landed),
            make_event(f"v2-{stamp}", "view", user, session, second, at + timedelta(minutes=1), landed=landed),
        ]
        if (n + u) % 2 == 0:
            rows += [
                make_event(f"c-{stamp}", "add_to_cart", user, session, first, at + timedelta(minutes=2), landed=landed),
                make_event(
                    f"p-{stamp}", "purchase", user, session, first, at + timedelta(minutes=3), 1 + u % 2, landed
                ),
            ]
        if (n + u) % 7 == 3:
            rows.append(make_event(f"r-{stamp}", "return", user, session, second, at + timedelta(minutes=4), 1, landed))
    at = datetime(day.year, day.month, day.day, 21, tzinfo=UTC)
    rows.append(
        make_event(f"a-{prefix}{day.isoformat()}", "view", None, f"{prefix}anon-{day}", skus[n % 5], at, landed=landed)
    )
    return rows


def silver_rows() -> list[tuple]:
    days = (LAST_DAY - FIRST_DAY).days + 1
    return [row for i in range(days) for row in day_events(FIRST_DAY + timedelta(days=i))]


def write_silver(lake, event_rows: list[tuple], mode: str = "overwrite") -> None:
    """silver.events and silver.order_lines from event rows (order lines through the clean job's transform)."""
    from jobs.transforms.cleaning import to_order_lines

    events = lake.spark.createDataFrame(event_rows, EVENTS_SCHEMA)
    lake.write(events, "silver.events", mode=mode)
    lake.write(to_order_lines(events), "silver.order_lines", mode=mode)


def write_snapshots(lake) -> None:
    products, inventory = [], []
    snapshot = FIRST_DAY
    while snapshot <= LAST_DAY:
        week = (snapshot - FIRST_DAY).days // 7
        for i, (sku, (category, price)) in enumerate(sorted(SKUS.items())):
            discount = Decimal("0.80") if sku == "A" and week == 2 else Decimal("1")
            products.append(
                (snapshot, sku, f"Item {sku}", category, f"brand{i % 2}", Decimal(price) * discount, sku != "E")
            )
            if sku != "D":
                on_hand = [0, 4, 50, 500, 7][i]
                inventory.append((snapshot, sku, on_hand, 10, 5, datetime.combine(snapshot, datetime.min.time(), UTC)))
        snapshot += timedelta(days=7)
    lake.write(
        lake.spark.createDataFrame(
            products,
            "snapshot_date date, sku string, title string, category string, brand string, unit_price decimal(12,2), "
            "active boolean",
        ),
        "silver.products",
    )
    lake.write(
        lake.spark.createDataFrame(
            inventory,
            "snapshot_date date, sku string, on_hand int, on_order int, lead_time_days int, snapshot_ts timestamp",
        ),
        "silver.inventory_snapshots",
    )


def write_ops(lake) -> None:
    """A few quarantine and validation rows, shaped like shopml.accounting and shopml.quality write them."""
    now = datetime(2024, 3, 10, 23, tzinfo=UTC)
    quarantine = [
        ("events", LAST_DAY, "clean", reason, f"k{i}", "{}", "events.jsonl", "manual", now)
        for i, reason in enumerate(["malformed_json", "malformed_json", "bot_traffic", "invalid_type:quantity"])
    ]
    lake.write(
        lake.spark.createDataFrame(
            quarantine,
            "dataset string, landing_date date, stage string, reason string, record_key string, payload string, "
            "source_file string, run_id string, quarantined_at timestamp",
        ),
        "ops.quarantine",
    )
    results = [
        ("events", day, "manual", expectation, column, severity, success, 100, unexpected, "null", now)
        for day in (LAST_DAY - timedelta(days=1), LAST_DAY)
        for expectation, column, severity, success, unexpected in [
            ("expect_column_values_to_not_be_null", "event_id", "critical", True, 0),
            ("expect_column_values_to_be_in_set", "event_type", "warning", day == LAST_DAY, 2),
        ]
    ]
    lake.write(
        lake.spark.createDataFrame(
            results,
            "suite string, landing_date date, run_id string, expectation string, column string, severity string, "
            "success boolean, element_count bigint, unexpected_count bigint, observed_value string, "
            "validated_at timestamp",
        ),
        "ops.validation_results",
    )
    _write_customer_scores(lake, now)


def _write_customer_scores(lake, now: datetime) -> None:
    """Two nights of customer scores, as models/customer/pipeline.py writes them (for the CRM export query)."""
    import pyarrow as pa

    from shopml.catalog import GOLD_CUSTOMER_SCORES, spec

    rows = [
        {
            "user_id": user,
            "p_purchase_30d": 0.1 * i,
            "p_churn_90d": None if i == 0 else 0.2 * i,
            "expected_revenue_90d": 10.0 * i,
            "rfm_segment": f"R{i + 1}F1M1",
            "top_reasons": [f"recency_days={i} (+0.5{i})", "orders_90d=1 (-0.10)"],
            "scored_by": "purchase=model churn=model value=bgnbd",
            "model_version": "v1",
            "run_id": "manual",
            "generated_at": now,
            "scored_date": day,
        }
        for day in (LAST_DAY - timedelta(days=1), LAST_DAY)
        for i, user in enumerate(["u1", "u2", "u3"])
    ]
    lake.write_arrow(pa.Table.from_pylist(rows, schema=spec(GOLD_CUSTOMER_SCORES).arrow_schema()), GOLD_CUSTOMER_SCORES)


def gold_rows(lake, day: date) -> dict[str, list[str]]:
    """Every feature table's rows for ``day``, as sorted text, to compare builds."""
    import pyarrow.compute as pc

    from jobs.stages import FEATURE_TABLES

    return {
        table: sorted(map(str, lake.read_arrow(table, filter=pc.field("feature_date") == day).to_pylist()))
        for table in FEATURE_TABLES
    }
