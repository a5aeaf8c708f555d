"""The feature scenario: three nights of the feature job on one small lake (see feature_lake.py)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.integration.features.feature_lake import (
    LAST_DAY,
    NEXT_DAY,
    day_events,
    gold_rows,
    silver_rows,
    write_ops,
    write_silver,
    write_snapshots,
)
from tests.shop import tiny_data_conf


@pytest.fixture(scope="package")
def scenario(spark, tmp_path_factory):
    """Three nights of the feature job on one lake, the states between them kept for the tests.

    1. ``first``: the nightly build for D = 2024-03-10;
    2. D+1's on-time events land, then ``rerun`` rebuilds D (must not change: they are after the end of D);
    3. late events for D-1 land with D+1, and ``nightly`` builds D+1, re-deriving D-1 and D.
    """
    from jobs.features import run
    from shopml.lake import Lake
    from shopml.settings import load_settings

    settings = load_settings(
        var_root=tmp_path_factory.mktemp("features-var"), spark_shuffle_partitions=2, spark_master="local[2]"
    )
    lake = Lake(settings, spark)
    write_silver(lake, silver_rows())
    write_snapshots(lake)
    write_ops(lake)
    first = run(LAST_DAY, run_id="first", lake=lake)
    first_rows = gold_rows(lake, LAST_DAY)
    write_silver(lake, day_events(NEXT_DAY), mode="append")
    rerun = run(LAST_DAY, run_id="rerun", lake=lake)
    rerun_rows = gold_rows(lake, LAST_DAY)
    late = day_events(LAST_DAY - timedelta(days=1), landed=NEXT_DAY, prefix="late")
    write_silver(lake, late, mode="append")
    nightly = run(NEXT_DAY, run_id="nightly", lake=lake)
    return SimpleNamespace(
        lake=lake,
        settings=settings,
        first=first,
        first_rows=first_rows,
        rerun=rerun,
        rerun_rows=rerun_rows,
        late_events=len(late),
        nightly=nightly,
    )


@pytest.fixture(scope="package", autouse=True)
def tiny_data_spark(spark):
    """On frames of a few rows, adaptive execution and code generation cost 3-5x the work itself."""
    with tiny_data_conf(spark):
        yield
