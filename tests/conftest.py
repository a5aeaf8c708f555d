"""Shared fixtures: one local Spark session for the whole run, and an isolated lake per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests never touch a developer's ./var or a deployment's settings.
for _key in [k for k in os.environ if k.startswith("SHOPML_")]:
    del os.environ[_key]
os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)


@pytest.fixture(autouse=True)
def _settings_from_each_tests_environment() -> Iterator[None]:
    """Forget the cached settings after every test: one read while a test's monkeypatched environment
    was set (SHOPML_TASK_RETRIES=0, say) would otherwise reach the next test of the worker."""
    yield
    from shopml.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One local[2] session for the whole suite: Spark's start-up dominates small tests."""
    from shopml.settings import load_settings
    from shopml.spark import get_spark

    settings = load_settings(
        var_root=tmp_path_factory.mktemp("spark-var"), spark_shuffle_partitions=2, spark_master="local[2]"
    )
    session = get_spark(settings, app_name="shopml-tests")
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path: Path):
    """Settings rooted in a fresh temporary ./var, with the embedded defaults otherwise."""
    from shopml.settings import load_settings

    return load_settings(var_root=tmp_path / "var", spark_shuffle_partitions=2, spark_master="local[2]")


@pytest.fixture
def lake(settings, spark):
    """A Lake over an empty temporary lake root, sharing the session Spark."""
    from shopml.lake import Lake

    return Lake(settings, spark)
