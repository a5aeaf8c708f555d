"""Small generated shops run through the foundation jobs, shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from jobs import clean, ingest, validate
from sample_shop.generate import GeneratorConfig, generate
from shopml.lake import Lake
from shopml.settings import load_settings

# A real shop's export (see ../shared/data/README.md), beside the checkout and never copied into it.
REAL_SHOP = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail_II_2009_2010.csv.gz"
needs_real_shop = pytest.mark.skipif(
    not REAL_SHOP.exists(), reason=f"the real shop's export is not at {REAL_SHOP} (outside this repository's checkout)"
)

SMALL_SHOP = {"users": 150, "skus": 60, "categories": 6, "days": 4, "events_per_day": 1500, "seed": 7}


@dataclass
class LandedLake:
    lake: Lake
    manifest: dict
    first: date
    last: date


def run_foundation(lake: Lake, last: date, first: date | None = None, run_id: str = "test") -> dict:
    """ingest → clean → validate for a window, as the nightly DAG's Spark jobs do."""
    summaries = {}
    for name, job in (("ingest", ingest), ("clean", clean), ("validate", validate)):
        summaries[name] = job.run(run_date=last, run_id=run_id, from_date=first, lake=lake)
    return summaries


def land_and_run(root: Path, spark, **overrides) -> LandedLake:
    config = GeneratorConfig(**(SMALL_SHOP | overrides))
    manifest = generate(config, root / "landing")
    settings = load_settings(
        var_root=root / "var", landing_root=root / "landing", spark_shuffle_partitions=2, spark_master="local[2]"
    )
    lake = Lake(settings, spark)
    run_foundation(lake, config.end_date, config.start_date)
    return LandedLake(lake, manifest, config.start_date, config.end_date)


# On frames of a few rows, adaptive execution and code generation cost 3-5x the work itself.
TINY_DATA_CONF = {"spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false"}


@contextmanager
def tiny_data_conf(spark) -> Iterator[None]:
    """Spark tuned for tiny test frames for the block, the session's settings restored after."""
    saved = {key: spark.conf.get(key) for key in TINY_DATA_CONF}
    for key, value in TINY_DATA_CONF.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value)
