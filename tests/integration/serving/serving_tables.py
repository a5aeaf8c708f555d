"""Tiny scored tables, shaped like docs/tables.md "Scored outputs", for the serving tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

GENERATED_AT = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)


def scored_columns(n: int, run_date: date, run_id: str, model_version: str, generated_at: datetime) -> dict:
    return {
        "model_version": [model_version] * n,
        "run_id": [run_id] * n,
        "generated_at": pa.array([generated_at] * n, pa.timestamp("us", tz="UTC")),
        "scored_date": pa.array([run_date] * n, pa.date32()),
    }


def recommendations_table(
    lists: dict[str, list[str]],
    run_date: date,
    run_id: str = "run-1",
    model_version: str = "rec-v1",
    generated_at: datetime = GENERATED_AT,
    fallback_users: frozenset[str] = frozenset({"__default__"}),
    reason: str = "trending",
) -> pa.Table:
    """Ranked lists as gold.recommendations rows as written before the list column; item at rank r scores 1/r."""
    rows = [(user, rank, sku) for user, skus in lists.items() for rank, sku in enumerate(skus, start=1)]
    n = len(rows)
    return pa.table(
        {
            "user_id": [u for u, _, _ in rows],
            "rank": pa.array([r for _, r, _ in rows], pa.int32()),
            "sku": [s for _, _, s in rows],
            "score": [1.0 / r for _, r, _ in rows],
            "reason": [reason] * n,
            "is_fallback": [u in fallback_users for u, _, _ in rows],
            **scored_columns(n, run_date, run_id, model_version, generated_at),
        }
    )


# What each list's rows give as their reason (buy-again reasons carry times bought and the last date).
LIST_REASONS = {"all": "trending", "buy_again": "bought_before:3x:2025-12-20", "discover": "retrieval"}


def user_lists_table(
    lists: dict[str, dict[str, list[str]]], run_date: date, run_id: str = "run-1", **kwargs
) -> pa.Table:
    """gold.recommendations rows with their list column: ``{list: {user: [sku, ...]}}``, ranked per user and list."""
    parts = []
    for name, by_user in lists.items():
        part = recommendations_table(by_user, run_date, run_id, reason=LIST_REASONS[name], **kwargs)
        parts.append(part.add_column(1, "list", pa.array([name] * part.num_rows, pa.string())))
    return pa.concat_tables(parts)


def similar_table(
    neighbours: dict[str, list[str]], run_date: date, run_id: str = "run-1", generated_at: datetime = GENERATED_AT
) -> pa.Table:
    """Similar SKUs per SKU; neighbour at rank r scores 1 - r/10."""
    rows = [(sku, rank, other) for sku, others in neighbours.items() for rank, other in enumerate(others, start=1)]
    n = len(rows)
    return pa.table(
        {
            "sku": [s for s, _, _ in rows],
            "rank": pa.array([r for _, r, _ in rows], pa.int32()),
            "similar_sku": [o for _, _, o in rows],
            "score": [1 - r / 10 for _, r, _ in rows],
            "reason": ["co_purchase"] * n,
            **scored_columns(n, run_date, run_id, "sim-v1", generated_at),
        }
    )


def forecasts_table(
    skus: list[str], run_date: date, horizon: int = 2, run_id: str = "run-1", generated_at: datetime = GENERATED_AT
) -> pa.Table:
    """Forecast for day h: mean = h + 0.75, p10 = h, p50 = h + 0.5, p90 = h + 1."""
    rows = [(sku, h) for sku in skus for h in range(1, horizon + 1)]
    n = len(rows)
    return pa.table(
        {
            "sku": [s for s, _ in rows],
            "forecast_date": pa.array([date.fromordinal(run_date.toordinal() + h) for _, h in rows], pa.date32()),
            "horizon_day": pa.array([h for _, h in rows], pa.int32()),
            "mean": [h + 0.75 for _, h in rows],
            "p10": [float(h) for _, h in rows],
            "p50": [h + 0.5 for _, h in rows],
            "p90": [h + 1.0 for _, h in rows],
            **scored_columns(n, run_date, run_id, "fc-v1", generated_at),
        }
    )


def inventory_table(
    skus: list[str], run_date: date, run_id: str = "run-1", generated_at: datetime = GENERATED_AT
) -> pa.Table:
    """Plan of SKU number i: on_hand = i, everything else fixed."""
    n = len(skus)
    return pa.table(
        {
            "sku": skus,
            "on_hand": pa.array(range(n), pa.int32()),
            "on_order": pa.array([5] * n, pa.int32()),
            "lead_time_days": pa.array([7] * n, pa.int32()),
            "expected_lead_time_demand": [14.0] * n,
            "safety_stock": [3.25] * n,
            "reorder_point": [17.25] * n,
            "recommended_order_qty": [12.0] * n,
            "days_of_cover": [2.5] * n,
            "stockout_probability": [0.125] * n,
            "status": ["reorder"] * n,
            **scored_columns(n, run_date, run_id, "inv-v1", generated_at),
        }
    )


def customer_scores_table(
    users: list[str], run_date: date, run_id: str = "run-1", generated_at: datetime = GENERATED_AT
) -> pa.Table:
    """Scores of user number i: p_purchase_30d = i / 10; the first user lapsed (no churn score)."""
    n = len(users)
    return pa.table(
        {
            "user_id": users,
            "p_purchase_30d": [i / 10 for i in range(n)],
            "p_churn_90d": [None, *([0.25] * (n - 1))],
            "expected_revenue_90d": [12.5] * n,
            "rfm_segment": ["R5F4M3"] * n,
            "top_reasons": pa.array([["recency_days=3 (-0.61)", 'note="quoted" (+0.10)']] * n, pa.list_(pa.string())),
            "scored_by": ["purchase=model churn=model value=bgnbd"] * n,
            **scored_columns(n, run_date, run_id, "cust-v1", generated_at),
        }
    )
