"""Benchmark: the 5-minute incremental refresh, its run time per batch size and end-to-end freshness.

``python -m bench.bench_incremental`` (runs of 1k, 10k and 100k new events on a shop of 20k users,
freshness over 20 runs; ``--quick``: 1k and 10k events on the tiny test shop, 3 freshness runs).
Writes ``bench/results/incremental.json``.

* ``spark_startup_s``: a fresh Python process starting the micro-batch Spark session (what every DAG
  task pays, since each run is a new process), next to ``import_s`` (the job's imports: torch, xgboost…).
* ``run_s``: one ``jobs.incremental.refresh.run`` in a warm session for a micro-batch of N generated events;
  ``cold_run_s`` adds the start-up and imports. Target: 10k events under 60 s on 2 cores.
* freshness: a purchase lands in a batch file at t0; the run is started; the API is polled until the
  bought SKU (the user's highest one that few buyers re-buy, so the repeat rule takes it off) left the
  user's list at t1. ``processing_s`` = t1 - t0 (measured, warm, plus start-up for
  ``processing_cold_s``). A file lands at a uniformly random phase of the 5-minute schedule, so the
  freshness a shopper sees is the wait for the next tick plus the cold processing time: reported as
  p50/p95 over evenly spread phases. Target: p95 under the period + 60 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench import write_result
from shopml.catalog import GOLD_RECOMMENDATIONS

log = logging.getLogger(__name__)

PERIOD_S = 300
MEDIUM_SHOP = {"users": 20_000, "skus": 2_000, "categories": 20, "days": 6, "events_per_day": 60_000, "seed": 5}
STARTUP_PROBE = """
import time
started = time.perf_counter()
import jobs.incremental.refresh
imported = time.perf_counter()
from jobs.incremental.refresh import micro_batch_settings
from shopml.config.incremental import IncrementalConfig
from shopml.settings import load_settings
from shopml.spark import get_spark
spark = get_spark(micro_batch_settings(load_settings(var_root={var!r}), IncrementalConfig()))
spark.range(1).count()
print(imported - started, time.perf_counter() - imported)
"""


def _startup(var: Path) -> tuple[float, float]:
    """(import seconds, Spark start-up seconds) of a fresh process, as a DAG task pays them."""
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE.format(var=str(var))], capture_output=True, text=True, check=True
    )
    imported, started = out.stdout.split()[-2:]
    return float(imported), float(started)


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def _run_sizes(shop, sizes: list[int], start: datetime) -> list[dict]:
    from jobs.incremental.refresh import run
    from sample_shop.generate import generate_stream_batch

    results = []
    for index, size in enumerate(sizes):
        ts = start + timedelta(minutes=5 * index)
        generate_stream_batch(shop.generator, shop.settings.landing, ts, size, 0)
        started = time.perf_counter()
        summary = run(ts + timedelta(seconds=30), f"bench-{size}", lake=shop.lake)
        seconds = time.perf_counter() - started
        results.append(
            {
                "events": size,
                "run_s": round(seconds, 2),
                "merge_s": summary["merge_s"],
                "merged": summary["batch"]["merged"],
                "users_reranked": summary.get("users_reranked"),
                "keys_overlaid": summary["overlaid"],
            }
        )
        log.info("%s events: %.1fs %s", size, seconds, results[-1])
    return results


def _freshness(shop, runs: int, start: datetime) -> list[float]:
    """Seconds from a purchase's file landing to the API no longer listing the bought SKU."""
    from fastapi.testclient import TestClient

    from jobs.incremental.refresh import run
    from models.recommend import pipeline as recommend
    from serving.api import create_app
    from tests.integration.incremental.serving_shop import event, write_batch

    lists = shop.lake.read_pandas(GOLD_RECOMMENDATIONS)
    users = sorted(lists.loc[~lists["is_fallback"], "user_id"].unique())
    # Only a SKU that few of its buyers buy again leaves the buyer's list at once (the repeat rule); one
    # that many re-buy may stay, ranked by the model, and would never be seen to leave.
    config = shop.settings.recommend
    share = recommend.load_feature_set(shop.lake, shop.scored_date, config).history.skus["repeat_share"]
    rebought = set(share[share > config.filters.repeat_min_share].index)
    seconds = []
    with TestClient(create_app(shop.settings), base_url="http://localhost") as api:
        for index in range(runs):
            user = users[index % len(users)]
            shown = [item["sku"] for item in api.get(f"/v1/recommendations/{user}").json()["items"]]
            sku = next(sku for sku in shown if sku not in rebought)
            ts = start + timedelta(minutes=5 * index)
            landed = time.perf_counter()
            write_batch(shop, ts, [event(f"fresh-{index}", "purchase", sku, ts - timedelta(seconds=30), user)], 1)
            run(ts + timedelta(seconds=30), f"fresh-{index}", lake=shop.lake)
            while sku in [item["sku"] for item in api.get(f"/v1/recommendations/{user}").json()["items"]]:
                time.sleep(0.05)
            seconds.append(time.perf_counter() - landed)
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shop, 1k and 10k events, 3 freshness runs")
    parser.add_argument("--runs", type=int, help="freshness samples (default 20; --quick 3)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 20)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]

    from jobs.incremental.refresh import micro_batch_settings
    from shopml.config.incremental import IncrementalConfig
    from shopml.settings import load_settings
    from shopml.spark import get_spark
    from tests.integration.incremental.serving_shop import TINY_SHOP, build_serving_shop

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    import_s, startup_s = _startup(work / "probe")
    spark = get_spark(micro_batch_settings(load_settings(var_root=work / "spark"), IncrementalConfig()), "bench-inc")
    started = time.perf_counter()
    shop = build_serving_shop(work / "shop", spark, **({} if args.quick else MEDIUM_SHOP))
    setup_s = time.perf_counter() - started
    day = datetime.combine(shop.scored_date + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    # The first run pays the session's one-off costs (JIT, GX context): measured apart, not in the figures.
    warm_up = _run_sizes(shop, [100], day + timedelta(hours=1))[0]["run_s"]
    sizes_result = _run_sizes(shop, sizes, day + timedelta(hours=2))
    processing = _freshness(shop, runs, day + timedelta(hours=8))
    cold = [seconds + import_s + startup_s for seconds in processing]
    # Evenly spread landing phases in the period: the wait for the next tick is period - phase.
    waits = [PERIOD_S * (1 - (i + 0.5) / len(cold)) for i in range(len(cold))]
    freshness = [wait + seconds for wait, seconds in zip(waits, cold, strict=True)]
    ten_k = next((r["run_s"] for r in sizes_result if r["events"] == 10_000), None)
    result = {
        "machine": "2 cores, 24 GiB, no GPU",
        "quick": args.quick,
        "shop": TINY_SHOP if args.quick else MEDIUM_SHOP,
        "setup_s": round(setup_s, 1),
        "import_s": round(import_s, 2),
        "spark_startup_s": round(startup_s, 2),
        "warm_up_run_s": warm_up,
        "runs": [r | {"cold_run_s": round(r["run_s"] + import_s + startup_s, 2)} for r in sizes_result],
        "freshness_runs": runs,
        "processing_s": _percentiles(processing),
        "processing_cold_s": _percentiles(cold),
        "freshness_s": _percentiles(freshness),
        "freshness_worst_case_s": round(PERIOD_S + max(cold), 1),
        "targets": {
            "run_10k_s": 60,
            "run_10k_met": None if ten_k is None else ten_k + import_s + startup_s < 60,
            "freshness_p95_s": PERIOD_S + 60,
            "freshness_p95_met": float(np.percentile(freshness, 95)) < PERIOD_S + 60,
        },
    }
    write_result("incremental", result)
    spark.stop()
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    json.dump(main(), sys.stdout, indent=2)
