"""Failure behaviour: store down or full during a publish, a locked SQLite file, a publish killed midway."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date

import pyarrow as pa
import pytest
import redis

from serving.publish import PublishConflictError, publish_dataset, version_id
from serving.store import RedisStore, ServingStoreError, StoreUnavailableError, VersionInfo, open_store
from shopml.config.serving import ServingConfig
from shopml.lake import Lake
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import inventory_table, recommendations_table

D1, D2 = date(2026, 1, 2), date(2026, 1, 3)


def write_scored(lake: Lake, table: str, rows) -> None:
    day = rows["scored_date"][0].as_py()
    lake.write_arrow(rows, table, replace_where=f"scored_date = '{day}'" if lake.exists(table) else None)


def test_publish_to_a_stopped_redis_fails_with_a_clear_error(tmp_path, redis_servers, serving_config):
    server = redis_servers()
    settings = load_settings(var_root=tmp_path / "var", serving_url=server.url)
    write_scored(Lake(settings), "gold.recommendations", recommendations_table({"u1": ["a"]}, D1))
    server.stop()

    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"Redis serving store redis://127\.0\.0\.1:\d+/0 unreachable"):
        publish_dataset("recommendations", D1, "run-1", settings=settings, config=serving_config)
    assert time.monotonic() - started < 30


def test_redis_full_midway_keeps_the_previous_version_serving(tmp_path, redis_servers, serving_config):
    server = redis_servers("--maxmemory-policy", "noeviction")
    settings = load_settings(var_root=tmp_path / "var", serving_url=server.url)
    lake = Lake(settings)
    write_scored(lake, "gold.recommendations", recommendations_table({"u1": ["old"]}, D1))
    v1 = publish_dataset("recommendations", D1, "run-1", settings=settings, config=serving_config).version
    big = {f"u{i:05d}": [f"sku-{i}-{r}-" + "x" * 200 for r in range(20)] for i in range(3000)}
    write_scored(lake, "gold.recommendations", recommendations_table(big, D2, "run-2"))
    admin = redis.Redis.from_url(server.url)
    used = admin.info("memory")["used_memory"]
    admin.config_set("maxmemory", used + 2_000_000)
    config = serving_config.model_copy(update={"batch_size": 100})

    with pytest.raises(ServingStoreError, match=r"failed while writing 100 values .*maxmemory"):
        publish_dataset("recommendations", D2, "run-2", settings=settings, config=config)

    store = open_store(settings.serving, config)
    found = store.lookup("recommendations", "u1")
    assert found.version == v1 and json.loads(found.payload)["items"][0]["sku"] == "old"
    assert store.current_version("recommendations") == v1
    assert [v.version for v in store.list_versions("recommendations")] == [v1]
    admin.config_set("maxmemory", 0)
    result = publish_dataset("recommendations", D2, "run-2", settings=settings, config=config)
    assert (result.key_count, store.current_version("recommendations")) == (3000, result.version)
    store.close()
    admin.close()


def test_a_locked_sqlite_store_fails_the_publish_and_keeps_serving(tmp_path, serving_config):
    settings = load_settings(var_root=tmp_path / "var")
    lake = Lake(settings)
    write_scored(lake, "gold.recommendations", recommendations_table({"u1": ["old"]}, D1))
    v1 = publish_dataset("recommendations", D1, "run-1", settings=settings, config=serving_config).version
    write_scored(lake, "gold.recommendations", recommendations_table({"u1": ["new"]}, D2, "run-2"))

    blocker = sqlite3.connect(settings.var_root / "serving.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    config = serving_config.model_copy(update={"sqlite_busy_timeout_s": 0.2})
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            publish_dataset("recommendations", D2, "run-2", settings=settings, config=config)
        reader = open_store(settings.serving, config)
        assert reader.lookup("recommendations", "u1").version == v1
        reader.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store = open_store(settings.serving, config)
    assert store.current_version("recommendations") == v1
    store.close()


def test_an_unwritable_sqlite_path_fails_with_a_clear_error(tmp_path, serving_config):
    settings = load_settings(var_root=tmp_path / "var", serving_url="sqlite:////proc/shopml-no-such-dir/serving.db")
    with pytest.raises(
        StoreUnavailableError, match=r"SQLite serving store /proc/shopml-no-such-dir/serving\.db failed"
    ):
        publish_dataset("recommendations", D1, "run-1", settings=settings, config=serving_config)


_KILLED_PUBLISH = """
import sys
from datetime import date
from shopml.config.serving import ServingConfig
from serving.publish import publish_dataset
from shopml.settings import load_settings

var_root, url, prefix, day = sys.argv[1:]
config = ServingConfig(key_prefix=prefix, batch_size=1, lock_ttl_s=5.0)  # one key per write: slow enough to kill
publish_dataset("inventory", date.fromisoformat(day), "killed-run", load_settings(var_root=var_root, serving_url=url), config=config)
"""


@pytest.mark.slow
def test_the_next_run_removes_the_partial_version_of_a_killed_publish(
    serving_settings, serving_lake, serving_config, key_prefix
):
    skus = [f"s{i:05d}" for i in range(30_000)]
    write_scored(serving_lake, "gold.inventory_plan", inventory_table(skus[:10], D1))
    v1 = publish_dataset("inventory", D1, "run-1", settings=serving_settings, config=serving_config).version
    write_scored(serving_lake, "gold.inventory_plan", inventory_table(skus, D2, "killed-run"))
    killed = version_id(D2, "killed-run")
    store = open_store(serving_settings.serving, serving_config)

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_PUBLISH,
            str(serving_settings.var_root),
            serving_settings.serving,
            key_prefix,
            "2026-01-03",
        ],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while store.count_entries("inventory", killed) == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    returncode = child.wait()

    partial = store.count_entries("inventory", killed)
    assert 0 < partial < len(skus), (
        f"the publish was not caught midway: {partial} keys, exit {returncode}: {child.stderr.read().decode()[-2000:]}"
    )
    assert {v.version: v.status for v in store.list_versions("inventory")} == {v1: "complete", killed: "writing"}
    assert store.current_version("inventory") == v1
    assert json.loads(store.lookup("inventory", "s00003").payload)["on_hand"] == 3
    if isinstance(store, RedisStore):
        assert 0 < store._redis.ttl(store.key("inventory", "data", killed)) <= serving_config.orphan_ttl_s

    result = None
    deadline = time.monotonic() + 30
    while result is None:  # retried like an Airflow task until the lease lapses
        try:
            result = publish_dataset("inventory", D1, "run-1b", settings=serving_settings, config=serving_config)
        except PublishConflictError:
            assert time.monotonic() < deadline, "the killed publisher's lock never lapsed"
            time.sleep(0.2)

    assert killed in result.removed_versions
    assert killed not in {v.version for v in store.list_versions("inventory")}
    assert store.count_entries("inventory", killed) == 0
    store.close()


def test_a_retry_of_the_killed_run_id_rewrites_its_version_completely(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.inventory_plan", inventory_table(["s0", "s1", "s2"], D1))
    store = open_store(serving_settings.serving, serving_config)
    version = version_id(D1, "run-1")

    store.begin_version(VersionInfo("inventory", version, "writing", run_id="run-1"))
    store.write_batch("inventory", version, pa.table({"entity": ["s0"], "payload": [b'{"stale":true}']}))

    result = publish_dataset(
        "inventory", D1, "run-1", settings=serving_settings, config=ServingConfig(key_prefix=serving_config.key_prefix)
    )

    assert (result.version, result.key_count, result.reused) == (version, 3, False)
    assert json.loads(store.lookup("inventory", "s0").payload)["on_hand"] == 0
    store.close()
