"""Benchmark: one large landing day through ingest, clean and validate on the embedded default.

``python -m bench.bench_pipeline`` (2M events; ``--quick``: 100k). Reports
events/s per step and peak memory of the Spark JVM and of Python, and writes
``bench/results/pipeline.json``. Target: a 2M-event day through
ingest+clean+validate in under 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import jvm_peak_mib, write_result
from shopml.catalog import SILVER_EVENTS

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--quick", action="store_true", help="100k events, a smoke run")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    args = parser.parse_args(argv)
    events = 100_000 if args.quick else args.events

    from jobs import clean, ingest, validate
    from sample_shop.generate import GeneratorConfig, generate
    from shopml.lake import Lake
    from shopml.settings import load_settings
    from shopml.spark import get_spark

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    config = GeneratorConfig(users=50_000, skus=5_000, categories=40, days=1, events_per_day=events, seed=11)
    started = time.perf_counter()
    manifest = generate(config, work / "landing")
    generate_s = time.perf_counter() - started
    lines = manifest["totals"]["lines"]
    settings = load_settings(var_root=work / "var", landing_root=work / "landing")
    spark = get_spark(settings, app_name="bench-pipeline")
    lake = Lake(settings, spark)
    day: date = config.start_date
    timings = {}
    for name, job in (("ingest", ingest), ("clean", clean), ("validate", validate)):
        started = time.perf_counter()
        job.run(run_date=day, run_id="bench", lake=lake)
        timings[name] = time.perf_counter() - started
    total = sum(timings.values())
    result = {
        "machine": "2 cores, 24 GiB, no GPU",
        "landed_lines": lines,
        "generate_s": round(generate_s, 1),
        **{f"{name}_s": round(seconds, 1) for name, seconds in timings.items()},
        **{f"{name}_events_per_s": round(lines / seconds) for name, seconds in timings.items()},
        "ingest_clean_validate_s": round(total, 1),
        "target_s": 180,
        "spark_jvm_peak_mib": round(jvm_peak_mib(spark)),
        "python_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "silver_events": lake.read_arrow(SILVER_EVENTS, columns=[]).num_rows,
    }
    write_result("pipeline", result)
    spark.stop()
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    json.dump(main(), sys.stdout, indent=2)
