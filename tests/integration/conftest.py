"""Pipeline fixtures: generated landing data run through ingest → clean → validate in the shared Spark session."""

from __future__ import annotations

import pytest

from tests.shop import LandedLake, land_and_run


@pytest.fixture(scope="module")
def landed(tmp_path_factory, spark) -> LandedLake:
    """The small sample shop, every day processed as one backfill window."""
    return land_and_run(tmp_path_factory.mktemp("shop"), spark)
