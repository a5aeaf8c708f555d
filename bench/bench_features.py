"""Feature-build benchmark: one nightly build over 90 days x 200k events/day (~18M events) on 2 cores.

Silver tables are synthesised directly with Spark (seeded, ``spark.range``
based): customers with power-law activity and a favourite category (taste
groups), SKUs with power-law popularity inside categories, sessions of six
events around 1-3 products, daily catalogue and inventory snapshots with
weekly promotions. Then:

1. ``night_cold``: the nightly build for R with 90 days of history (first Spark use);
2. ``night_90``: the same night again (warm; also an idempotent rerun);
3. 90 older days are added, and ``night_180`` rebuilds R: the cost of a night must not grow with history;
4. ``night_late``: R+1 lands with 1% late events for R-2..R, so the build re-derives those 3 days too.

``python -m bench.bench_features [--quick]`` (quick: 10 days x 20k events, history 10 vs 20 days).
Prints the figures as JSON and writes ``bench/results/features.json``. Target: one nightly
build under 3 minutes on 2 cores (``local[2]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench import jvm_peak_mib, write_result
from shopml.catalog import SILVER_EVENTS, SILVER_INVENTORY_SNAPSHOTS, SILVER_ORDER_LINES, SILVER_PRODUCTS

log = logging.getLogger(__name__)

NIGHT = date(2024, 6, 1)
EVENTS_PER_SESSION = 6


@dataclass(frozen=True)
class Shop:
    users: int
    skus: int
    categories: int
    events_per_day: int
    seed: int

    @property
    def skus_per_category(self) -> int:
        return max(1, self.skus // self.categories)


def synth_events(spark, shop: Shop, first: date, days: int, salt: str, landed: date | None = None):
    """``days`` days of silver.events from ``first``, landed on their own date or all on ``landed`` (late)."""
    from pyspark.sql import functions as F

    n = days * shop.events_per_day
    ids = spark.range(n, numPartitions=max(2, n // 2_000_000))

    def uniform(column, part: int):
        return (F.abs(F.xxhash64(column, F.lit(shop.seed), F.lit(salt), F.lit(part))) % 1_000_003) / 1_000_003.0

    event = F.col("id")
    session = F.floor(event / EVENTS_PER_SESSION)
    day = F.floor(event / shop.events_per_day)
    user_rank = F.floor(F.pow(uniform(session, 1), 2.0) * shop.users)
    anonymous = uniform(session, 2) < 0.2
    favourite = user_rank % shop.categories
    # a session looks at 1-3 products (taste: 80% in the customer's favourite category, power-law popularity)
    item = session * 3 + F.floor(uniform(event, 11) * (1 + F.floor(uniform(session, 10) * 3)))
    category = F.when(uniform(item, 3) < 0.8, favourite).otherwise(F.floor(uniform(item, 4) * shop.categories))
    sku_index = category * shop.skus_per_category + F.floor(F.pow(uniform(item, 5), 3.0) * shop.skus_per_category)
    roll = uniform(event, 6)
    kind = (
        F.when(roll < 0.04, "purchase")
        .when(roll < 0.05, "return")
        .when(roll < 0.13, "add_to_cart")
        .when(roll < 0.14, "remove_from_cart")
        .otherwise("view")
    )
    seconds = F.unix_timestamp(F.lit(first).cast("timestamp")) + day * 86_400 + F.floor(uniform(session, 7) * 86_000)
    at = F.timestamp_seconds(seconds + (event % EVENTS_PER_SESSION) * 30)
    traded = kind.isin("purchase", "return")
    return ids.select(
        F.concat(F.lit(f"e{salt}-"), event.cast("string")).alias("event_id"),
        kind.alias("event_type"),
        F.when(~anonymous, F.concat(F.lit("u"), user_rank.cast("string"))).alias("user_id"),
        F.concat(F.lit(f"s{salt}-"), session.cast("string")).alias("session_id"),
        F.format_string("SKU%06d", sku_index.cast("int")).alias("sku"),
        F.when(traded, 1 + F.floor(uniform(event, 8) * 3)).cast("int").alias("quantity"),
        F.when(traded, 4.99 + (sku_index * 37) % 200).cast("decimal(12,2)").alias("unit_price"),
        F.lit("EUR").alias("currency"),
        at.alias("event_ts"),
        F.to_date(at).alias("event_date"),
        (F.lit(landed) if landed else F.to_date(at)).alias("landing_date"),
        F.lit("nightly").alias("feed"),
        F.when(traded, F.concat(F.lit(f"o{salt}-"), session.cast("string"))).alias("order_id"),
        F.lit("web").alias("channel"),
        F.lit("Mozilla/5.0").alias("user_agent"),
    )


def synth_snapshots(spark, shop: Shop, first: date, days: int):
    """Daily catalogue (one SKU in 20 on a 20% promotion each week) and inventory snapshots."""
    from pyspark.sql import functions as F

    skus = spark.range(shop.skus).withColumn(
        "snapshot_date", F.explode(F.sequence(F.lit(first), F.lit(first + timedelta(days=days - 1))))
    )
    sku = F.format_string("SKU%06d", F.col("id").cast("int"))
    week = F.floor(F.datediff("snapshot_date", F.lit(first)) / 7)
    promoted = F.abs(F.xxhash64("id", week, F.lit(shop.seed))) % 20 == 0
    price = (4.99 + (F.col("id") * 37) % 200) * F.when(promoted, 0.8).otherwise(1.0)
    products = skus.select(
        "snapshot_date",
        sku.alias("sku"),
        F.concat(F.lit("Item "), sku).alias("title"),
        F.concat(F.lit("cat"), F.floor(F.col("id") / shop.skus_per_category).cast("string")).alias("category"),
        F.concat(F.lit("brand"), (F.col("id") % 97).cast("string")).alias("brand"),
        price.cast("decimal(12,2)").alias("unit_price"),
        (F.col("id") % 50 != 0).alias("active"),
    )
    stock = F.abs(F.xxhash64("id", "snapshot_date", F.lit(shop.seed))) % 120 - 10
    inventory = skus.select(
        "snapshot_date",
        sku.alias("sku"),
        stock.cast("int").alias("on_hand"),
        (F.col("id") % 30).cast("int").alias("on_order"),
        (3 + F.col("id") % 12).cast("int").alias("lead_time_days"),
        F.col("snapshot_date").cast("timestamp").alias("snapshot_ts"),
    )
    return products, inventory


def land_events(lake, events, mode: str = "append") -> int:
    """silver.events and silver.order_lines, as validate publishes them."""
    from jobs.transforms.cleaning import to_order_lines

    rows = lake.write(events, SILVER_EVENTS, mode=mode)
    lake.write(to_order_lines(events), SILVER_ORDER_LINES, mode=mode)
    return rows


def _events_between(lake, first: date, last: date) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    day = pc.field("event_date")
    where = (day >= pa.scalar(first, pa.date32())) & (day <= pa.scalar(last, pa.date32()))
    return lake.read_arrow(SILVER_EVENTS, columns=["event_date"], filter=where).num_rows


class _Clock:
    """Wall time and the Spark JVM's CPU time (user + system) of each step: on a shared machine the CPU
    seconds show the work itself, and CPU/2 is what a step needs at best on two dedicated cores."""

    def __init__(self, spark) -> None:
        self.stat = Path(f"/proc/{spark._jvm.java.lang.ProcessHandle.current().pid()}/stat")
        self.cpu: dict[str, float] = {}

    def _cpu_s(self) -> float:
        fields = self.stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def time(self, label: str, func):
        started, cpu = time.perf_counter(), self._cpu_s()
        value = func()
        seconds = time.perf_counter() - started
        self.cpu[label] = round(self._cpu_s() - cpu, 1)
        log.info("%s: %.1f s wall, %.1f s JVM CPU", label, seconds, self.cpu[label])
        return value, seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 days x 20k events, a smoke run")
    parser.add_argument("--days", type=int, help="days of history (default 90, quick 10)")
    parser.add_argument("--events-per-day", type=int, help="default 200000, quick 20000")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir, removed at the end)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("py4j", "shopml.lake"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from jobs import features
    from shopml.config.features import HISTORY_DAYS
    from shopml.lake import Lake
    from shopml.settings import load_settings
    from shopml.spark import get_spark

    days = args.days or (10 if args.quick else 90)
    per_day = args.events_per_day or (20_000 if args.quick else 200_000)
    shop = Shop(
        users=max(1_000, per_day // 2),
        skus=max(500, per_day // 10),
        categories=40,
        events_per_day=per_day,
        seed=args.seed,
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-features-"))
    settings = load_settings(var_root=work / "var", spark_master="local[2]")
    spark = get_spark(settings, app_name="bench-features")
    lake = Lake(settings, spark)
    clock = _Clock(spark)
    history_start = NIGHT - timedelta(days=days)
    try:
        # days of history before the night, plus the night's own landing (on time)
        written, setup_s = clock.time(
            "synthesise 90-day lake",
            lambda: land_events(lake, synth_events(spark, shop, history_start, days + 1, "h"), mode="overwrite"),
        )
        products, inventory = synth_snapshots(spark, shop, history_start - timedelta(days=days), 2 * days + 2)
        lake.write(products, SILVER_PRODUCTS)
        lake.write(inventory, SILVER_INVENTORY_SNAPSHOTS)

        window_events = _events_between(lake, NIGHT - timedelta(days=HISTORY_DAYS - 1), NIGHT)
        cold, cold_s = clock.time("night (cold)", lambda: features.run(NIGHT, run_id="bench-cold", lake=lake))
        warm, warm_s = clock.time("night (90 days)", lambda: features.run(NIGHT, run_id="bench-90", lake=lake))
        _, older_s = clock.time(
            "add older history",
            lambda: land_events(lake, synth_events(spark, shop, history_start - timedelta(days=days), days, "o")),
        )
        longer, longer_s = clock.time("night (180 days)", lambda: features.run(NIGHT, run_id="bench-180", lake=lake))
        next_night = NIGHT + timedelta(days=1)
        land_events(lake, synth_events(spark, shop, next_night, 1, "n"))
        late_shop = Shop(shop.users, shop.skus, shop.categories, per_day // 100, shop.seed + 1)
        land_events(lake, synth_events(spark, late_shop, NIGHT - timedelta(days=2), 3, "l", landed=next_night))
        late, late_s = clock.time(
            "night with late data", lambda: features.run(next_night, run_id="bench-late", lake=lake)
        )

        rows_out = warm["rows"]
        result = {
            "machine": "2 cores (local[2]), 24 GiB, no GPU",
            "history_days": days,
            "events_per_day": per_day,
            "users": shop.users,
            "skus": shop.skus,
            "events_written": written,
            "synthesise_and_write_s": round(setup_s, 1),
            "night_cold_s": round(cold_s, 1),
            "night_90_days_s": round(warm_s, 1),
            "night_180_days_s": round(longer_s, 1),
            "night_180_vs_90": round(longer_s / warm_s, 2),
            "night_with_late_data_s": round(late_s, 1),
            "jvm_cpu_s": {label: cpu for label, cpu in clock.cpu.items() if label.startswith("night")},
            "late_corrected_dates": late["corrected_dates"],
            "events_in_window": window_events,
            "events_per_s": round(window_events / warm_s),
            "rows_written": rows_out,
            "rows_written_per_s": round(sum(rows_out.values()) / warm_s),
            "add_older_history_s": round(older_s, 1),
            "target_s": 180,
            "spark_jvm_peak_mib": round(jvm_peak_mib(spark)),
            "python_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        if days >= HISTORY_DAYS:
            assert cold["rows"] == warm["rows"] == longer["rows"], "a night must not depend on history beyond 90 days"
    finally:
        spark.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    write_result("features", result)
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
