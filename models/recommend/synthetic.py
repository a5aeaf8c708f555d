"""A synthetic shop with planted taste groups, for the recommender's tests and benchmark.

Users belong to taste groups (one or two preferred categories) and keep returning to a
small personal consideration set, which they buy from more often than from anything
else; a few SKUs trend in the last two weeks. A model that learns tastes, repeat
interest and trends must beat global popularity here, and the size is a parameter so
the benchmark can run the same world at 50k users × 10k SKUs. The frames follow the
gold and silver contracts in docs/tables.md.

A share of the customers (``reorder_share``, none by default) re-order, as B2B buyers
of consumables do: each keeps a few staple SKUs from the consumable categories (the
first fifth of the categories) and buys each again on its own cycle, with jittered
timing and quantities, while browsing and buying like everyone else in between. There a
model has to learn when a staple is due, not only that it is bought again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from shopml.catalog import (
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    SILVER_ORDER_LINES,
)

if TYPE_CHECKING:
    from shopml.lake import Lake

log = logging.getLogger(__name__)

STRENGTH_WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}
STAPLE_COLUMNS = ("user_id", "sku", "cycle_days", "base_quantity", "first_day")


def _no_staples() -> pd.DataFrame:
    return pd.DataFrame(
        {column: pd.Series(dtype=object if column in ("user_id", "sku") else float) for column in STAPLE_COLUMNS}
    )


@dataclass(frozen=True)
class SyntheticShop:
    """Raw synthetic behaviour: every event and the catalogue, ending on ``run_date``.

    ``staples`` is the planted truth of the re-ordering customers: one row per (user_id, sku)
    staple with its cycle_days, base_quantity and first_day (day number from the first
    simulated day); empty when the shop has none.
    """

    events: pd.DataFrame
    catalogue: pd.DataFrame
    run_date: date
    staples: pd.DataFrame = field(default_factory=_no_staples)


def _sample_by_weight(rng: np.random.Generator, cumulative: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Draw one index per row from the slice [lo, hi) of a cumulative weight array."""
    base = np.where(lo > 0, cumulative[np.maximum(lo - 1, 0)], 0.0)
    target = base + rng.random(len(lo)) * (cumulative[hi - 1] - base)
    return np.minimum(np.searchsorted(cumulative, target, side="right"), hi - 1)


def simulate_shop(
    n_users: int = 600,
    n_items: int = 200,
    run_date: date = date(2024, 3, 31),
    n_days: int = 42,
    n_categories: int | None = None,
    events_per_day: float = 0.8,
    seed: int = 0,
    reorder_share: float = 0.0,
    reorder_cycle_days: tuple[float, float] = (7.0, 28.0),
    staples_per_user: tuple[int, int] = (2, 5),
) -> SyntheticShop:
    """Simulate ``n_days`` of views, carts and purchases ending on ``run_date``.

    Args:
        reorder_share: Share of users who also re-order staples (see the module docstring).
            Their staples come from a stream of their own, so the rest of the shop is the
            same at every share: 0 gives exactly the shop without re-ordering customers.
        reorder_cycle_days: Range of a staple's repurchase cycle: each SKU lasts its own
            number of days in it, and each customer uses it somewhat faster or slower.
        staples_per_user: Least and most staple SKUs of a re-ordering customer.
    """
    rng = np.random.default_rng(seed)
    n_cat = n_categories or max(4, n_items // 20)
    trending_from = n_days - 14

    category = rng.permutation(np.arange(n_items) % n_cat)
    order = np.argsort(category, kind="stable")
    cat_sorted = category[order]
    cat_start = np.searchsorted(cat_sorted, np.arange(n_cat), side="left")
    cat_end = np.searchsorted(cat_sorted, np.arange(n_cat), side="right")
    # Zipf popularity within each category, in category-sorted item order.
    within_rank = np.empty(n_items)
    for c in range(n_cat):
        within_rank[cat_start[c] : cat_end[c]] = rng.permutation(cat_end[c] - cat_start[c])
    weight = 1.0 / (within_rank + 1.0)
    trending = rng.random(n_items) < 0.05
    weight_late = weight * np.where(trending, 6.0, 1.0)
    cum_early, cum_late = np.cumsum(weight), np.cumsum(weight_late)

    skus = np.array([f"SKU{i:06d}" for i in range(n_items)])
    category_price = rng.normal(3.0, 0.5, n_cat)[cat_sorted]
    price = np.round(np.exp(category_price + rng.normal(0.0, 0.3, n_items)), 2)
    stock = rng.choice(["in_stock", "low", "out_of_stock", "unknown"], n_items, p=[0.85, 0.06, 0.04, 0.05])
    catalogue = pd.DataFrame(
        {
            "sku": skus[order],
            "category": [f"cat{c:03d}" for c in cat_sorted],
            "brand": [f"brand{c:03d}_{b}" for c, b in zip(cat_sorted, rng.integers(0, 3, n_items), strict=True)],
            "unit_price": price,
            "active": rng.random(n_items) > 0.02,
            "stock_status": stock,
            "on_hand": np.where(stock == "out_of_stock", 0, np.where(stock == "low", 2, 50)),
            "trending": trending,
        }
    )

    start = np.where(rng.random(n_users) < 0.75, 0, rng.integers(0, n_days, n_users))
    n_prefs = rng.integers(1, 3, n_users)
    prefs = rng.integers(0, n_cat, (n_users, 2))
    consider_cat = prefs[np.arange(n_users)[:, None], rng.integers(0, n_prefs[:, None], (n_users, 6))]
    consider = _sample_by_weight(rng, cum_early, cat_start[consider_cat.ravel()], cat_end[consider_cat.ravel()])
    consider = consider.reshape(n_users, 6)
    activity = np.exp(rng.normal(np.log(events_per_day), 0.6, n_users))
    n_events = rng.poisson(activity * (n_days - start))

    user = np.repeat(np.arange(n_users), n_events)
    day = start[user] + (rng.random(len(user)) * (n_days - start[user])).astype(int)
    source = rng.choice(3, len(user), p=[0.35, 0.55, 0.10])
    late = day >= trending_from
    item = np.empty(len(user), dtype=np.int64)
    from_set = source == 0
    item[from_set] = consider[user[from_set], rng.integers(0, 6, from_set.sum())]
    for is_late, cum in ((False, cum_early), (True, cum_late)):
        pick = (source == 1) & (late == is_late)
        cat = prefs[user[pick], (rng.random(pick.sum()) * n_prefs[user[pick]]).astype(int)]
        item[pick] = _sample_by_weight(rng, cum, cat_start[cat], cat_end[cat])
        pick = (source == 2) & (late == is_late)
        item[pick] = _sample_by_weight(rng, cum, np.zeros(pick.sum(), int), np.full(pick.sum(), n_items))
    carted = rng.random(len(user)) < 0.25
    bought = carted & (rng.random(len(user)) < np.where(from_set, 0.6, 0.3))
    # Durable goods: a user buys a SKU once; later "purchases" of it stay carts.
    bought_at = np.flatnonzero(bought)
    repeat = pd.DataFrame({"u": user[bought_at], "i": item[bought_at]}).duplicated().to_numpy()
    bought[bought_at[repeat]] = False

    seconds = rng.integers(0, 86_000, len(user))
    quantity = np.ones(len(user), dtype=np.int64)

    staples = _no_staples()
    if reorder_share > 0:
        # A stream of its own (seeded from ``seed``), so the shop's other behaviour stays as it was.
        staple_rng = np.random.default_rng([seed, 1])
        n_consumable = max(1, n_cat // 5)
        picked, orders = _simulate_staples(
            staple_rng,
            start,
            n_days,
            reorder_share,
            reorder_cycle_days,
            staples_per_user,
            (cat_start[:n_consumable], cat_end[:n_consumable]),
            cum_early,
        )
        staples = picked.assign(
            user_id=np.char.add("U", picked["user"].to_numpy().astype(str)),
            sku=catalogue["sku"].to_numpy()[picked["item"].to_numpy()],
        )[list(STAPLE_COLUMNS)]
        user = np.concatenate([user, orders["user"]])
        item = np.concatenate([item, orders["item"]])
        day = np.concatenate([day, orders["day"]])
        seconds = np.concatenate([seconds, staple_rng.integers(0, 86_000, len(orders["day"]))])
        quantity = np.concatenate([quantity, orders["quantity"]])
        carted = np.concatenate([carted, np.ones(len(orders["day"]), bool)])
        bought = np.concatenate([bought, np.ones(len(orders["day"]), bool)])

    origin = datetime.combine(run_date - timedelta(days=n_days - 1), datetime.min.time(), tzinfo=UTC)
    ts = pd.to_datetime(origin) + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    frames = []
    for kind, mask, offset in (("view", np.ones(len(user), bool), 0), ("cart", carted, 30), ("purchase", bought, 60)):
        frames.append(
            pd.DataFrame(
                {
                    "user_id": np.char.add("U", user[mask].astype(str)),
                    "sku": catalogue["sku"].to_numpy()[item[mask]],
                    "event_type": kind,
                    "event_ts": ts[mask] + pd.Timedelta(seconds=offset),
                    "quantity": np.where(kind == "view", 1, quantity[mask]),
                }
            )
        )
    events = pd.concat(frames, ignore_index=True).sort_values(["event_ts", "event_type"], ignore_index=True)
    events["event_date"] = events["event_ts"].dt.date
    log.info(
        "simulated %d events for %d users × %d SKUs (%d re-ordering customers)",
        len(events),
        n_users,
        n_items,
        staples["user_id"].nunique(),
    )
    return SyntheticShop(events, catalogue, run_date, staples)


def _simulate_staples(
    rng: np.random.Generator,
    start: np.ndarray,
    n_days: int,
    share: float,
    cycle_days: tuple[float, float],
    per_user: tuple[int, int],
    consumables: tuple[np.ndarray, np.ndarray],
    cumulative: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The re-ordering customers' staples and every order of them.

    Returns (staples: user, item, cycle_days, base_quantity, first_day; orders: user, item,
    day, quantity). Staples are drawn by popularity within the consumable categories
    (``consumables``: their item slices). A staple's cycle is its SKU's (uniform in
    ``cycle_days``) times the customer's pace (log-normal, the product clipped to the range),
    so one customer's staples fall due on different days and after different gaps, and the
    SKU's cycle carries over between customers. The first order falls within the first cycle after
    the customer arrives; each gap is the cycle with 10 % noise, each quantity the staple's
    base quantity with 25 % noise.
    """
    low, high = cycle_days
    customers = np.flatnonzero(rng.random(len(start)) < share)
    counts = rng.integers(per_user[0], per_user[1] + 1, len(customers))
    owner = np.repeat(customers, counts)
    category = rng.integers(0, len(consumables[0]), len(owner))
    item = _sample_by_weight(rng, cumulative, consumables[0][category], consumables[1][category])
    # What a SKU lasts (a box of toner outlasts a bag of coffee), times how fast the customer uses it.
    sku_cycle = rng.uniform(low, high, len(cumulative))
    pace = np.repeat(np.exp(rng.normal(0.0, 0.25, len(customers))), counts)
    cycle = np.clip(sku_cycle[item] * pace, low, high)
    base_quantity = 1 + rng.poisson(4.0, len(owner))
    first = start[owner] + rng.random(len(owner)) * cycle
    n_orders = int(np.ceil(n_days / low)) + 1
    gaps = cycle[:, None] * np.clip(1.0 + rng.normal(0.0, 0.1, (len(owner), n_orders - 1)), 0.5, None)
    at = first[:, None] + np.hstack([np.zeros((len(owner), 1)), np.cumsum(gaps, axis=1)])
    noise = np.exp(rng.normal(0.0, 0.25, at.shape))
    # A staple drawn twice for one customer is one staple.
    keep = ~pd.DataFrame({"user": owner, "item": item}).duplicated().to_numpy()
    staples = pd.DataFrame(
        {"user": owner, "item": item, "cycle_days": cycle, "base_quantity": base_quantity, "first_day": first}
    )[keep].reset_index(drop=True)
    rows, slots = np.nonzero((at < n_days) & keep[:, None])
    orders = {
        "user": owner[rows],
        "item": item[rows],
        "day": at[rows, slots].astype(np.int64),
        "quantity": np.maximum(1, np.rint(base_quantity[rows] * noise[rows, slots])).astype(np.int64),
    }
    return staples, orders


def _window_counts(events: pd.DataFrame, keys: list[str], kind: str, since: date) -> pd.Series:
    picked = events[(events["event_type"] == kind) & (events["event_date"] > since)]
    return picked.groupby(keys).size()


def build_interactions(events: pd.DataFrame, feature_date: date) -> pd.DataFrame:
    """``gold.user_item_interactions`` as of the end of ``feature_date``."""
    seen = events[events["event_date"] <= feature_date]
    counts = seen.pivot_table(index=["user_id", "sku"], columns="event_type", values="event_ts", aggfunc="count")
    counts = counts.reindex(columns=["view", "cart", "purchase"]).fillna(0).astype("int32")
    frame = pd.DataFrame(
        {
            "n_views": counts["view"],
            "n_carts": counts["cart"],
            "n_purchases": counts["purchase"],
            "last_interaction_ts": seen.groupby(["user_id", "sku"])["event_ts"].max(),
        }
    ).reset_index()
    frame["strength"] = sum(frame[f"n_{k}s"] * w for k, w in STRENGTH_WEIGHTS.items()).astype(float)
    frame["feature_date"] = feature_date
    return frame[
        ["feature_date", "user_id", "sku", "strength", "n_views", "n_carts", "n_purchases", "last_interaction_ts"]
    ]


def build_item_features(events: pd.DataFrame, catalogue: pd.DataFrame, feature_date: date) -> pd.DataFrame:
    """``gold.item_features`` as of the end of ``feature_date`` for the whole catalogue."""
    seen = events[events["event_date"] <= feature_date]
    frame = catalogue.drop(columns=["trending"]).copy()
    for days in (1, 7, 28):
        since = feature_date - timedelta(days=days)
        frame[f"views_{days}d"] = (
            frame["sku"].map(_window_counts(seen, ["sku"], "view", since)).fillna(0).astype("int32")
        )
        units = _window_counts(seen, ["sku"], "purchase", since)
        frame[f"units_sold_{days}d"] = frame["sku"].map(units).fillna(0).astype(float)
    rate_28 = frame["units_sold_28d"] / 28
    frame["trend_7_28"] = np.where(rate_28 > 0, (frame["units_sold_7d"] / 7) / rate_28.where(rate_28 > 0, 1), 0.0)
    frame["conversion_rate"] = np.where(
        frame["views_28d"] > 0, frame["units_sold_28d"] / frame["views_28d"].where(frame["views_28d"] > 0, 1), 0.0
    )
    frame["price_change_7d"] = 0.0
    frame["return_rate"] = 0.0
    frame["on_hand"] = frame["on_hand"].astype("Int32").where(frame["stock_status"] != "unknown")
    frame["feature_date"] = feature_date
    return frame


def build_user_features(events: pd.DataFrame, catalogue: pd.DataFrame, feature_date: date) -> pd.DataFrame:
    """``gold.user_features`` as of the end of ``feature_date`` for every user seen so far."""
    seen = events[events["event_date"] <= feature_date].merge(
        catalogue[["sku", "category", "unit_price"]], on="sku", how="left"
    )
    by_user = seen.groupby("user_id")
    frame = pd.DataFrame(
        {
            "recency_days": by_user["event_date"].max().map(lambda d: (feature_date - d).days),
            "days_since_first_seen": by_user["event_date"].min().map(lambda d: (feature_date - d).days),
        }
    )
    purchases = seen[seen["event_type"] == "purchase"]
    for days in (1, 7, 28, 90):
        recent = purchases[purchases["event_date"] > feature_date - timedelta(days=days)]
        frame[f"orders_{days}d"] = recent.groupby("user_id").size().reindex(frame.index, fill_value=0)
        frame[f"revenue_{days}d"] = recent.groupby("user_id")["unit_price"].sum().reindex(frame.index, fill_value=0.0)
    kinds = seen.pivot_table(index="user_id", columns="event_type", values="sku", aggfunc="count")
    kinds = kinds.reindex(index=frame.index, columns=["view", "cart", "purchase"]).fillna(0)
    frame["view_to_cart_rate"] = (kinds["cart"] / kinds["view"].where(kinds["view"] > 0)).fillna(0.0)
    frame["cart_to_purchase_rate"] = (kinds["purchase"] / kinds["cart"].where(kinds["cart"] > 0)).fillna(0.0)
    last_28 = seen[seen["event_date"] > feature_date - timedelta(days=28)]
    frame["sessions_28d"] = last_28.groupby("user_id")["event_date"].nunique().reindex(frame.index, fill_value=0)
    frame["return_rate"] = 0.0
    weights = seen["event_type"].map(STRENGTH_WEIGHTS)
    affinity = seen.assign(w=weights).groupby(["user_id", "category"])["w"].sum()
    affinity = affinity / affinity.groupby(level="user_id").transform("sum")
    frame["category_affinity"] = affinity.groupby(level="user_id").apply(
        lambda s: list(zip(s.index.get_level_values("category"), s.round(4).tolist(), strict=True))
    )
    frame["last_purchased_skus"] = (
        purchases.sort_values("event_ts").groupby("user_id")["sku"].apply(lambda s: s.tail(5)[::-1].tolist())
    )
    frame["last_purchased_skus"] = frame["last_purchased_skus"].apply(lambda v: v if isinstance(v, list) else [])
    frame["avg_unit_price"] = purchases.groupby("user_id")["unit_price"].mean().reindex(frame.index)
    frame["avg_unit_price"] = frame["avg_unit_price"].fillna(by_user["unit_price"].mean())
    for col in ("recency_days", "days_since_first_seen", "sessions_28d", *(f"orders_{d}d" for d in (1, 7, 28, 90))):
        frame[col] = frame[col].astype("int32")
    frame["feature_date"] = feature_date
    return frame.rename_axis("user_id").reset_index()


def build_cooccurrence(interactions: pd.DataFrame, feature_date: date, top_n: int = 20) -> pd.DataFrame:
    """``gold.item_cooccurrence``: cosine over users who interacted with both SKUs, top ``top_n`` per SKU."""
    from scipy import sparse

    users, user_idx = np.unique(interactions["user_id"].to_numpy(), return_inverse=True)
    skus, item_idx = np.unique(interactions["sku"].to_numpy(), return_inverse=True)
    shape = (len(users), len(skus))
    viewed = sparse.csr_matrix((np.ones(len(user_idx)), (user_idx, item_idx)), shape=shape)
    bought_mask = interactions["n_purchases"].to_numpy() > 0
    bought = sparse.csr_matrix(
        (np.ones(bought_mask.sum()), (user_idx[bought_mask], item_idx[bought_mask])), shape=shape
    )
    co_view = (viewed.T @ viewed).tocsr()
    co_view.setdiag(0)
    co_view.eliminate_zeros()
    co_buy = (bought.T @ bought).tocsr()
    norms = np.sqrt(np.asarray(viewed.sum(axis=0)).ravel())
    rows, cols, counts = [], [], []
    for i in range(len(skus)):
        lo, hi = co_view.indptr[i], co_view.indptr[i + 1]
        if hi == lo:
            continue
        sims = co_view.data[lo:hi] / (norms[i] * norms[co_view.indices[lo:hi]])
        keep = np.argsort(-sims, kind="stable")[:top_n]
        rows.append(np.full(len(keep), i))
        cols.append(co_view.indices[lo:hi][keep])
        counts.append(co_view.data[lo:hi][keep])
    row, col = np.concatenate(rows), np.concatenate(cols)
    frame = pd.DataFrame(
        {
            "feature_date": feature_date,
            "sku": skus[row],
            "other_sku": skus[col],
            "co_purchase_count": np.asarray(co_buy[row, col]).ravel().astype("int32"),
            "co_view_count": np.concatenate(counts).astype("int32"),
            "similarity": np.concatenate(counts) / (norms[row] * norms[col]),
        }
    )
    frame["rank"] = (frame.groupby("sku").cumcount() + 1).astype("int32")
    return frame


def build_order_lines(events: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """``silver.order_lines`` for every synthetic purchase (the event's quantity, else one unit, per line)."""
    bought = events[events["event_type"] == "purchase"].merge(catalogue[["sku", "unit_price"]], on="sku")
    ids = np.char.add("E", np.arange(len(bought)).astype(str))
    # Events without quantities (hand-made or stripped exports) are single units.
    quantity = bought["quantity"].to_numpy("int32") if "quantity" in bought else np.ones(len(bought), "int32")
    return pd.DataFrame(
        {
            "event_id": ids,
            "order_id": np.char.add("O", np.arange(len(bought)).astype(str)),
            "user_id": bought["user_id"].to_numpy(),
            "sku": bought["sku"].to_numpy(),
            "line_type": "purchase",
            "quantity": quantity,
            "unit_price": bought["unit_price"].to_numpy(),
            "revenue": np.round(bought["unit_price"].to_numpy() * quantity, 2),
            "currency": "EUR",
            "event_ts": bought["event_ts"].to_numpy(),
            "event_date": bought["event_date"].to_numpy(),
            "landing_date": bought["event_date"].to_numpy(),
        }
    )


_MONEY = {"unit_price": pa.decimal128(12, 2), "revenue": pa.decimal128(14, 2)}


def _order_lines_arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame.drop(columns=list(_MONEY)), preserve_index=False)
    for name, kind in _MONEY.items():
        values = [Decimal(str(v)).quantize(Decimal("0.01")) for v in frame[name]]
        table = table.append_column(name, pa.array(values, kind))
    return table


def _user_features_arrow(frame: pd.DataFrame) -> pa.Table:
    affinity = pa.array(frame["category_affinity"].tolist(), pa.map_(pa.string(), pa.float64()))
    table = pa.Table.from_pandas(frame.drop(columns=["category_affinity"]), preserve_index=False)
    return table.append_column("category_affinity", affinity)


def write_synthetic_lake(lake: Lake, shop: SyntheticShop, feature_dates: list[date]) -> None:
    """Write the gold feature tables for ``feature_dates`` and all order lines, as the feature jobs would."""
    lake.write_arrow(_order_lines_arrow(build_order_lines(shop.events, shop.catalogue)), SILVER_ORDER_LINES)
    for day in feature_dates:
        where = f"feature_date = '{day.isoformat()}'"
        interactions = build_interactions(shop.events, day)
        items = build_item_features(shop.events, shop.catalogue, day)
        users = build_user_features(shop.events, shop.catalogue, day)
        cooc = build_cooccurrence(interactions, day)
        lake.write_arrow(
            pa.Table.from_pandas(interactions, preserve_index=False), GOLD_USER_ITEM_INTERACTIONS, replace_where=where
        )
        lake.write_arrow(pa.Table.from_pandas(items, preserve_index=False), GOLD_ITEM_FEATURES, replace_where=where)
        lake.write_arrow(_user_features_arrow(users), GOLD_USER_FEATURES, replace_where=where)
        lake.write_arrow(pa.Table.from_pandas(cooc, preserve_index=False), GOLD_ITEM_COOCCURRENCE, replace_where=where)
