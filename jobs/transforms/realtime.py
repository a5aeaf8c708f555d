"""Near-real-time features from the stream's micro-batches: pure pandas, no reads or writes.

The nightly features describe the shop as of the end of their feature day. Between two nightly runs
the 5-minute refresh brings them up to now without retraining:

* interactions: the stream's views, carts and purchases since the feature day are added to the
  user-item interactions the ranker reads (counts, strength, recency), so what a user just looked at
  seeds and ranks their next list;
* last-hour activity per user and trending SKUs (last-hour interactions against the SKU's usual rate);
* on-hand estimate: the latest inventory snapshot minus the units purchased since its ``snapshot_ts``;
  SKUs at or below zero are out of stock for every list;
* purchase history: the stream's purchases since the feature day added to each customer's history, so a
  SKU just bought is suppressed by the repeat rule at once, not only after the next nightly run;
* which users and SKUs the new events affect, and the served payloads for them (one per user and list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from models.recommend.repeat import PurchaseHistory, summarise_purchases

INTERACTION_TYPES = {"view": "n_views", "add_to_cart": "n_carts", "purchase": "n_purchases"}
HOURS_PER_WEEK = 7 * 24


def _counts_by(events: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Views, carts and purchases per ``keys``, with the last event time."""
    flags = pd.DataFrame(
        {column: (events["event_type"] == kind).astype(np.int64) for kind, column in INTERACTION_TYPES.items()},
        index=events.index,
    )
    grouped = pd.concat([events[[*keys, "event_ts"]], flags], axis=1).groupby(keys, as_index=False)
    return grouped.agg(
        n_views=("n_views", "sum"),
        n_carts=("n_carts", "sum"),
        n_purchases=("n_purchases", "sum"),
        last_event_ts=("event_ts", "max"),
    )


def user_activity(events: pd.DataFrame, since: datetime) -> pd.DataFrame:
    """Per signed-in user: views, carts and purchases at or after ``since`` (the last hour), and the latest event."""
    recent = events[(events["event_ts"] >= since) & events["user_id"].notna()]
    return _counts_by(recent, ["user_id"]).sort_values("user_id", ignore_index=True)


def trending_skus(events: pd.DataFrame, items: pd.DataFrame, since: datetime, hours: float, top_n: int) -> pd.DataFrame:
    """SKUs viewed much more in the window than usual: window views per hour over the last week's views per hour.

    The weekly rate is add-one smoothed (a SKU nobody viewed last week needs a few views, not one, to trend).
    ``items`` has sku and views_7d. Returns sku, n_views, n_carts, n_purchases, trend (highest first).
    """
    recent = events[events["event_ts"] >= since]
    activity = _counts_by(recent, ["sku"]).merge(items[["sku", "views_7d"]], on="sku", how="left")
    weekly = (activity["views_7d"].fillna(0).to_numpy(dtype=float) + 1.0) / HOURS_PER_WEEK
    activity["trend"] = activity["n_views"].to_numpy(dtype=float) / hours / weekly
    ranked = activity.sort_values(["trend", "sku"], ascending=[False, True], ignore_index=True)
    return ranked.head(top_n)[["sku", "n_views", "n_carts", "n_purchases", "trend"]]


def add_recent_interactions(
    interactions: pd.DataFrame, events: pd.DataFrame, weights: Mapping[str, float], feature_day_end: datetime
) -> pd.DataFrame:
    """The feature day's user-item interactions plus the stream's events since then.

    New events weigh as the feature day's own (decay age 0) and their time is clipped to just before the
    end of the feature day: the model learnt recency relative to that day, and "just now" is the most
    recent it knows. Anonymous events carry no user and are left out.
    """
    columns = ["user_id", "sku", "strength", "n_views", "n_carts", "n_purchases", "last_interaction_ts"]
    known = interactions[columns]
    signed_in = events[events["user_id"].notna()]
    if signed_in.empty:
        return known.reset_index(drop=True)
    points = signed_in["event_type"].map(dict(weights)).fillna(0.0).astype(float)
    added = _counts_by(signed_in, ["user_id", "sku"]).merge(
        signed_in.assign(points=points).groupby(["user_id", "sku"], as_index=False)["points"].sum(),
        on=["user_id", "sku"],
    )
    merged = known.merge(added, on=["user_id", "sku"], how="outer")
    latest = pd.Timestamp(feature_day_end) - pd.Timedelta(microseconds=1)
    last = pd.concat(
        [
            pd.to_datetime(merged["last_interaction_ts"], utc=True),
            pd.to_datetime(merged["last_event_ts"], utc=True).clip(upper=latest),
        ],
        axis=1,
    ).max(axis=1)
    result = pd.DataFrame(
        {
            "user_id": merged["user_id"],
            "sku": merged["sku"],
            "strength": np.maximum(merged["strength"].fillna(0.0) + merged["points"].fillna(0.0), 0.0),
            **{
                column: (merged[f"{column}_x"].fillna(0) + merged[f"{column}_y"].fillna(0)).astype(np.int64)
                for column in ("n_views", "n_carts", "n_purchases")
            },
            "last_interaction_ts": last,
        }
    )
    return result.sort_values(["user_id", "sku"], ignore_index=True)


def add_recent_purchases(
    history: PurchaseHistory, events: pd.DataFrame, as_of: date, half_life_days: float
) -> PurchaseHistory:
    """The purchase history brought up to ``as_of`` with the stream's purchases, all after the history's day.

    A pair bought again gets the new day (orders, units, last day, last units and cycle updated, recency
    weights decayed to ``as_of``); a first purchase adds the pair. The SKUs' and customers' repeat habits
    stay those learnt up to the history's day. Anonymous purchases carry no customer and are left out.
    """
    bought = events[(events["event_type"] == "purchase") & events["user_id"].notna()]
    lines = pd.DataFrame(
        {
            "user_id": bought["user_id"].to_numpy(dtype=object),
            "sku": bought["sku"].to_numpy(dtype=object),
            "quantity": pd.to_numeric(bought["quantity"]).fillna(1).to_numpy(dtype=float),
            "event_date": pd.to_datetime(bought["event_ts"], utc=True).dt.date.to_numpy(dtype=object),
        }
    )
    recent = summarise_purchases(lines, as_of, half_life_days)
    old, new = history.pairs, recent.pairs
    merged = old.merge(new, on=["user_id", "sku"], how="outer", suffixes=("_old", "_new"))
    decay = 0.5 ** ((recent.as_of_day - history.as_of_day) / half_life_days)

    def total(column: str) -> pd.Series:
        return merged[f"{column}_old"].fillna(0) + merged[f"{column}_new"].fillna(0)

    pairs = pd.DataFrame(
        {
            "user_id": merged["user_id"],
            "sku": merged["sku"],
            "orders": total("orders").astype(np.int64),
            "units": total("units"),
            "first_day": merged["first_day_old"].fillna(merged["first_day_new"]).astype(np.int64),
            "last_day": merged["last_day_new"].fillna(merged["last_day_old"]).astype(np.int64),
            "recency_weighted": merged["recency_weighted_old"].fillna(0) * decay
            + merged["recency_weighted_new"].fillna(0),
            "last_units": merged["last_units_new"].fillna(merged["last_units_old"]),
        }
    )
    repeated = pairs["orders"] > 1
    pairs["cycle_days"] = np.where(
        repeated, (pairs["last_day"] - pairs["first_day"]) / (pairs["orders"] - 1).clip(lower=1), np.nan
    )
    baskets = pd.concat([history.baskets, recent.baskets], ignore_index=True)
    return replace(history, as_of=as_of, pairs=pairs, baskets=baskets)


def estimate_on_hand(snapshots: pd.DataFrame, purchases: pd.DataFrame) -> pd.DataFrame:
    """Stock now: each SKU's latest snapshot minus the units purchased after its ``snapshot_ts``, floored at 0.

    Returns are not added back (they are restocked only after inspection, which the next snapshot shows).
    ``snapshots``: one row per SKU with on_hand, on_order, lead_time_days, snapshot_ts;
    ``purchases``: sku, quantity, event_ts. Adds ``units_sold_since`` (0 when none).
    """
    lines = purchases[["sku", "quantity", "event_ts"]].merge(snapshots[["sku", "snapshot_ts"]], on="sku")
    after = lines[pd.to_datetime(lines["event_ts"], utc=True) > pd.to_datetime(lines["snapshot_ts"], utc=True)]
    sold = after.groupby("sku")["quantity"].sum()
    result = snapshots.copy()
    result["units_sold_since"] = result["sku"].map(sold).fillna(0).astype(np.int64)
    result["on_hand"] = np.maximum(result["on_hand"].fillna(0).astype(np.int64) - result["units_sold_since"], 0)
    return result.reset_index(drop=True)


def mark_sold_out(items: pd.DataFrame, stock: pd.DataFrame) -> pd.DataFrame:
    """Item features with SKUs whose estimated stock is gone set to ``out_of_stock`` (and on_hand updated).

    Other statuses stay as the feature day computed them: stock only falls between snapshots.
    """
    on_hand = items["sku"].map(stock.set_index("sku")["on_hand"])
    sold_out = on_hand.notna() & (on_hand <= 0)
    updated = items.copy()
    updated["stock_status"] = np.where(sold_out, "out_of_stock", updated["stock_status"])
    if "on_hand" in updated:
        updated["on_hand"] = on_hand.where(on_hand.notna(), updated["on_hand"])
    return updated


def sold_out_skus(stock: pd.DataFrame) -> set[str]:
    return set(stock.loc[stock["on_hand"] <= 0, "sku"])


def active_users(events: pd.DataFrame) -> set[str]:
    """Signed-in users with any event: their lists are re-ranked."""
    return set(events["user_id"].dropna())


def purchased_skus(events: pd.DataFrame) -> set[str]:
    """SKUs bought in the events: their stock and stockout risk change."""
    return set(events.loc[events["event_type"] == "purchase", "sku"])


def holders(lists: pd.DataFrame, skus: Iterable[str]) -> set[str]:
    """Users whose list (user_id, sku rows) shows any of ``skus``."""
    return set(lists.loc[lists["sku"].isin(set(skus)), "user_id"])


def recommendation_payloads(lists: pd.DataFrame, digits: int, users: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Ranked rows (user_id, rank, sku, score, reason, is_fallback) of one list as served values, one per user.

    Scores are rounded to ``digits`` decimals, as the nightly publish rounds them. Each of ``users`` without
    rows gets an empty list: re-ranked, they no longer have this list (no buy-again list once nothing they
    bought may be shown), and the value served before must not stay.
    """
    ordered = lists.sort_values(["user_id", "rank"], kind="stable")
    payloads: dict[str, dict[str, Any]] = {str(user): {"is_fallback": False, "items": []} for user in users}
    for user_id, rows in ordered.groupby("user_id", sort=False):
        items = [
            {"sku": sku, "score": _number(score, digits), "reason": reason}
            for sku, score, reason in zip(rows["sku"], rows["score"], rows["reason"], strict=True)
        ]
        payloads[str(user_id)] = {"is_fallback": bool(rows["is_fallback"].any()), "items": items}
    return payloads


def inventory_payloads(plan: pd.DataFrame, fields: Iterable[str], digits: int) -> dict[str, dict[str, Any]]:
    """Plan rows as served values keyed by SKU, with exactly the served ``fields`` (floats rounded to ``digits``)."""
    fields = list(fields)
    return {
        str(row["sku"]): {name: _number(row[name], digits) for name in fields}
        for row in plan[["sku", *fields]].to_dict("records")
    }


def _number(value: Any, digits: int) -> Any:
    """A served scalar as the nightly encoding writes it: plain Python, floats rounded, NaN and infinity null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, digits) if np.isfinite(value) else None
    return None if value is pd.NA or value is None else value
