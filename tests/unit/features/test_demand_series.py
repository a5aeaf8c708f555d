"""sku_daily_demand from one SKU × day series equals the per-date build it replaced, on a small generated shop.

The reference below is the earlier algorithm, kept here only to compare with:
each feature date joined to its own 29-day grid of every SKU, lags and rolling
statistics aggregated per (date, SKU). The shop has closed days, returns,
zero-priced lines, a SKU that starts selling mid-window, an inactive SKU that
sells now and then, SKUs missing from the catalogue (one sold just once), a
line without a SKU, a catalogue gap longer than the snapshot lookback, and
feature dates before the first event.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from jobs.transforms.features import (
    DEMAND_LAGS,
    PROMO_REFERENCE_DAYS,
    ROLLING_DAYS,
    SKU_KEYS,
    _catalogue,
    _expand,
    _feature_dates,
    _known_price,
    _ratio,
    _stock,
    build_sku_daily_demand,
    conform,
    summarise_activity,
)
from shopml.config.features import FeaturesConfig
from tests.unit.features.feature_rows import INVENTORY_SCHEMA, event, ts

CONFIG = FeaturesConfig()
FIRST_EVENT = date(2024, 1, 5)
LAST = date(2024, 3, 31)
DATES = [FIRST_EVENT - timedelta(days=3) + timedelta(days=i) for i in range((LAST - FIRST_EVENT).days + 4)]
CLOSED = {date(2024, 2, 1) + timedelta(days=i) for i in range(4)} | {date(2024, 3, 15)}
ONE_SALE = date(2024, 1, 20)
LIST_PRICES = {"A": "10.00", "B": "20.00", "C": "5.00", "D": "8.00", "F": "4.00"}


def _shop_events() -> list[tuple]:
    """Seeded daily traffic: views from FIRST_EVENT, sales (some discounted or at 0) and returns after them."""
    rng = random.Random(11)
    sellers = {
        "A": (FIRST_EVENT + timedelta(days=2), 0.6),
        "B": (date(2024, 2, 20), 0.7),  # starts selling mid-window
        "D": (FIRST_EVENT, 0.08),  # inactive in the catalogue: listed only while sold in the last 28 days
        "E": (date(2024, 3, 2), 0.1),  # not in the catalogue at all
        "F": (FIRST_EVENT + timedelta(days=10), 0.4),
        None: (date(2024, 3, 20), 0.2),  # a line without a SKU (missing_sku is only a warning)
    }
    rows = [
        event("v0", "view", "u0", "s0", "C", f"{FIRST_EVENT}T07:00:00"),
        event("g1", "purchase", "u0", "sg", "G", f"{ONE_SALE}T10:00:00", 1, "6.00", "og"),  # sold once, unlisted
    ]
    day, n = FIRST_EVENT, 0
    while day <= LAST:
        if day not in CLOSED:
            for sku, (since, chance) in sellers.items():
                if day < since or rng.random() > chance:
                    continue
                n += 1
                user, order = f"u{rng.randrange(6)}", f"o{n}"
                at = f"{day}T{8 + rng.randrange(12):02d}:00:00"
                price = LIST_PRICES.get(sku, "3.00")
                if rng.random() < 0.15:
                    price = "0.00"  # free sample: units count, price unknown
                elif rng.random() < 0.2:
                    price = str(Decimal(price) * Decimal("0.8"))
                rows.append(event(f"p{n}", "purchase", user, f"s{n}", sku, at, rng.randint(1, 4), price, order))
                if rng.random() < 0.1:
                    rows.append(event(f"r{n}", "return", user, f"s{n}", sku, at, 1, price, order))
            rows.append(event(f"v{day}", "view", None, f"sv{day}", "C", f"{day}T21:00:00"))
        day += timedelta(days=1)
    return rows


def _shop_products() -> list[tuple]:
    """Weekly catalogue snapshots (Mondays) with a promotion on A and no snapshots for three weeks in February."""
    rows = []
    snapshot = date(2023, 12, 4)
    while snapshot <= LAST:
        gap = date(2024, 2, 5) <= snapshot <= date(2024, 2, 19)
        week = (snapshot - date(2023, 12, 4)).days // 7
        for sku, price in LIST_PRICES.items():
            if gap or (sku == "B" and snapshot < date(2024, 2, 12)):
                continue
            listed = Decimal(price) * (Decimal("0.85") if sku == "A" and week % 5 == 3 else 1)
            if sku == "F" and week == 8:
                listed = Decimal("0.00")  # catalogue placeholder: unknown
            rows.append((snapshot, sku, f"Item {sku}", "gifts" if sku < "D" else None, "b", listed, sku != "D"))
        snapshot += timedelta(days=7)
    return rows


def _shop_inventory() -> list[tuple]:
    rows = []
    for i, snapshot in enumerate(DATES[::5]):
        rows.append((snapshot, "A", (i % 3) * 4, 0, 5, ts(f"{snapshot}T23:00:00")))
        rows.append((snapshot, "B", 0 if i % 4 == 0 else 9, 0, 5, ts(f"{snapshot}T23:00:00")))
    return rows


def reference_sku_daily_demand(activity, products, inventory, days, config):
    """The per-date build (every date × SKU × its 29 days) that ``build_sku_daily_demand`` replaced."""
    from pyspark.sql import functions as F

    dates = _feature_dates(activity.sku_days.sparkSession, days)
    span = max(*DEMAND_LAGS, *ROLLING_DAYS)
    daily = _expand(activity.sku_days, dates, span + 1)
    sold = daily.where(F.col("units_purchased") > 0).select(*SKU_KEYS).distinct()
    catalogue = _catalogue(products, dates, config)
    skus = catalogue.where(F.col("active")).select(*SKU_KEYS).unionByName(sold).distinct()
    history_start = activity.sku_days.agg(F.min("event_date").alias("_history_start"))
    day = F.col("feature_date")
    grid = skus.withColumn("event_date", F.explode(F.sequence(F.date_sub(day, span), day))).crossJoin(
        F.broadcast(history_start)
    )
    units = F.when(F.col("event_date") >= F.col("_history_start"), F.coalesce(F.col("units_purchased"), F.lit(0.0)))
    series = grid.join(
        daily.select(*SKU_KEYS, "event_date", "units_purchased", "priced_units", "paid_amount"),
        [*SKU_KEYS, "event_date"],
        "left",
    ).withColumn("_units", units)

    def on(offset):
        return F.col("event_date") == F.date_sub(day, offset)

    def before(n):
        return F.col("event_date").between(F.date_sub(day, n), F.date_sub(day, 1))

    per_sku = series.groupBy(*SKU_KEYS).agg(
        F.max(F.when(on(0), F.col("_units"))).alias("units"),
        F.max(F.when(on(0), F.col("paid_amount"))).alias("_paid"),
        F.max(F.when(on(0), F.col("priced_units"))).alias("_priced_units"),
        *[F.max(F.when(on(lag), F.col("_units"))).alias(f"lag_{lag}") for lag in DEMAND_LAGS],
        *[F.avg(F.when(before(n), F.col("_units"))).alias(f"rolling_mean_{n}") for n in ROLLING_DAYS],
        *[F.stddev_samp(F.when(before(n), F.col("_units"))).alias(f"rolling_std_{n}") for n in ROLLING_DAYS],
    )
    reference = (
        _expand(products, dates, PROMO_REFERENCE_DAYS, "snapshot_date")
        .groupBy(*SKU_KEYS)
        .agg(F.max(_known_price(F.col("unit_price"))).alias("_reference_price"))
    )
    demand = per_sku.join(catalogue, SKU_KEYS, "left").join(reference, SKU_KEYS, "left")
    stock = _stock(inventory, dates, config)
    if stock is None:
        demand = demand.withColumn("on_hand", F.lit(None).cast("int"))
    else:
        demand = demand.join(stock.select(*SKU_KEYS, "on_hand"), SKU_KEYS, "left")
    price = F.coalesce(_ratio(F.col("_paid"), F.col("_priced_units")), F.col("list_price"))
    promoted = price <= F.col("_reference_price") * (1 - config.promo_min_discount)
    weekday = (F.dayofweek(day) + 5) % 7 + 1
    result = demand.select(
        "feature_date",
        "sku",
        "category",
        "units",
        price.alias("unit_price"),
        F.coalesce(promoted, F.lit(False)).alias("on_promotion"),
        F.coalesce(F.col("on_hand") <= 0, F.lit(False)).alias("is_stockout"),
        weekday.alias("day_of_week"),
        F.dayofmonth(day).alias("day_of_month"),
        F.month(day).alias("month"),
        F.weekofyear(day).alias("week_of_year"),
        (weekday >= 6).alias("is_weekend"),
        *[f"lag_{lag}" for lag in DEMAND_LAGS],
        *[f"rolling_mean_{n}" for n in ROLLING_DAYS],
        *[f"rolling_std_{n}" for n in ROLLING_DAYS],
    )
    return conform(result, "gold.sku_daily_demand")


@pytest.fixture(scope="module")
def shop(frames, spark):
    data = frames(_shop_events(), _shop_products())
    data["inventory"] = spark.createDataFrame(_shop_inventory(), INVENTORY_SCHEMA)
    activity = summarise_activity(data["events"], data["order_lines"], DATES[0], LAST, CONFIG).persist()
    yield activity, data
    activity.unpersist()


def _rows(frame) -> dict[tuple, dict]:
    rows = [row.asDict() for row in frame.collect()]
    keyed = {(row["feature_date"], row["sku"]): row for row in rows}
    assert len(keyed) == len(rows), "duplicate (feature_date, sku) rows"
    return keyed


def _assert_same(built: dict[tuple, dict], expected: dict[tuple, dict]) -> None:
    assert sorted(built, key=str) == sorted(expected, key=str)
    for key, row in expected.items():
        for column, value in row.items():
            got = built[key][column]
            if isinstance(value, float) and isinstance(got, float):
                assert math.isclose(got, value, rel_tol=0, abs_tol=2e-9), (key, column, got, value)
            else:
                assert got == value, (key, column, got, value)


@pytest.mark.parametrize("with_inventory", [True, False], ids=["inventory", "no-inventory"])
def test_one_series_over_every_date_equals_the_per_date_build(shop, with_inventory):
    activity, data = shop
    inventory = data["inventory"] if with_inventory else None
    built = _rows(build_sku_daily_demand(activity, data["products"], inventory, DATES, CONFIG))
    _assert_same(built, _rows(reference_sku_daily_demand(activity, data["products"], inventory, DATES, CONFIG)))
    # the shop exercises what the comparison is for
    assert built[DATES[0], "A"]["units"] is None and built[FIRST_EVENT, "A"]["units"] == 0.0
    assert built[FIRST_EVENT + timedelta(days=1), "A"]["lag_1"] == 0.0 and built[FIRST_EVENT, "A"]["lag_1"] is None
    first_b = min(day for day, sku in built if sku == "B")  # B starts selling mid-window
    assert first_b > date(2024, 2, 19) and built[first_b, "B"]["units"] > 0 and built[first_b, "B"]["lag_1"] == 0.0
    assert {sku for _, sku in built} == {"A", "B", "C", "D", "E", "F", "G", None}
    assert sorted(day for day, sku in built if sku == "G") == [ONE_SALE + timedelta(days=i) for i in range(29)]
    assert (date(2024, 2, 12), "C") in built and (date(2024, 2, 15), "C") not in built  # catalogue gap
    assert any(row["on_promotion"] for row in built.values())
    assert any(row["is_stockout"] for row in built.values()) == with_inventory
    assert any(row["rolling_std_28"] for row in built.values())


def test_any_subset_of_dates_gives_the_same_rows(shop):
    """Dates apart from each other, or split into passes, read the same series as one build over them all."""
    activity, data = shop
    products, inventory = data["products"], data["inventory"]
    everything = _rows(build_sku_daily_demand(activity, products, inventory, DATES, CONFIG))
    sparse = DATES[::9]
    built = _rows(build_sku_daily_demand(activity, products, inventory, sparse, CONFIG))
    _assert_same(built, {key: row for key, row in everything.items() if key[0] in sparse})
    _assert_same(built, _rows(reference_sku_daily_demand(activity, products, inventory, sparse, CONFIG)))
    one_day = date(2024, 3, 20)
    built = _rows(build_sku_daily_demand(activity, products, inventory, one_day, CONFIG))
    _assert_same(built, {key: row for key, row in everything.items() if key[0] == one_day})
