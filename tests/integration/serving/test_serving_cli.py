"""The documented CLI, run as a process against the embedded SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pyarrow as pa
import pytest

from shopml.lake import Lake
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import recommendations_table, user_lists_table


def cli(var_root, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPML_")}
    env["SHOPML_VAR_ROOT"] = str(var_root)
    return subprocess.run(
        [sys.executable, "-m", "serving", *args], capture_output=True, text=True, env=env, timeout=120
    )


def two_scored_nights(var_root) -> Lake:
    """A lake whose gold.recommendations holds the nights of 2026-01-02 and 2026-01-03."""
    lake = Lake(load_settings(var_root=var_root))
    for day in (date(2026, 1, 2), date(2026, 1, 3)):
        rows = recommendations_table({"u1": [f"sku-{day}"]}, day, f"run-{day}")
        lake.write_arrow(
            rows,
            "gold.recommendations",
            replace_where=f"scored_date = '{day}'" if lake.exists("gold.recommendations") else None,
        )
    return lake


@pytest.mark.slow
def test_publish_versions_rollback_and_gc_from_the_command_line(tmp_path):
    var_root = tmp_path / "var"
    lake = two_scored_nights(var_root)

    first = cli(var_root, "publish", "recommendations", "--run-id", "run-a", "--date", "2026-01-02")
    second = cli(var_root, "publish", "recommendations", "--run-id", "run-b", "--date", "2026-01-03")
    rolled = cli(var_root, "rollback", "recommendations")
    listed = cli(var_root, "versions", "recommendations")
    collected = cli(var_root, "gc")
    bad = cli(var_root, "rollback", "similar")
    skipped = cli(var_root, "publish", "buy_again", "--run-id", "run-a", "--date", "2026-01-02")

    assert first.returncode == 0, first.stderr
    assert json.loads(second.stdout)["previous_version"] == json.loads(first.stdout)["version"]
    assert json.loads(rolled.stdout)["current"] == json.loads(first.stdout)["version"]
    versions = json.loads(listed.stdout)
    assert versions["current"] == json.loads(first.stdout)["version"]
    assert [v["triggered_by"] for v in versions["versions"]] == ["cli", "cli"]
    statuses = {v["version"]: v["status"] for v in versions["versions"]}
    assert statuses == {
        json.loads(first.stdout)["version"]: "complete",
        json.loads(second.stdout)["version"]: "revoked",
    }
    # The version rolled back from is never served again: gc removes it first.
    assert json.loads(collected.stdout)["removed"]["recommendations"] == [json.loads(second.stdout)["version"]]
    assert bad.returncode == 1 and "nothing is published for similar" in bad.stderr
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout) == {
        "dataset": "buy_again",
        "skipped": "nothing to publish for buy_again: gold.recommendations has no list column "
        "(written before it had buy_again rows)",
    }
    audit = lake.read_arrow("ops.publish_audit").sort_by("published_at")
    assert audit["triggered_by"].to_pylist() == ["cli", "cli", "rollback:cli"]


def test_a_past_date_goes_back_into_serving_only_with_force(tmp_path):
    var_root = tmp_path / "var"
    lake = two_scored_nights(var_root)
    first = cli(var_root, "publish", "recommendations", "--run-id", "run-a", "--date", "2026-01-02")
    cli(var_root, "publish", "recommendations", "--run-id", "run-b", "--date", "2026-01-03")

    behind = cli(var_root, "publish", "recommendations", "--run-id", "run-c", "--date", "2026-01-02")
    forced = cli(var_root, "publish", "recommendations", "--run-id", "run-c", "--date", "2026-01-02", "--force")

    assert behind.returncode == 0, behind.stderr
    assert "serving holds the later scored date 2026-01-03" in json.loads(behind.stdout)["skipped"]
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["version"] == json.loads(first.stdout)["version"]
    assert (
        json.loads(cli(var_root, "versions", "recommendations").stdout)["current"]
        == json.loads(first.stdout)["version"]
    )
    audit = lake.read_arrow("ops.publish_audit").sort_by("published_at")
    assert audit["triggered_by"].to_pylist() == ["cli", "cli", "forced:cli"]


@pytest.mark.slow
def test_a_buy_again_list_is_published_and_rolled_back_from_the_command_line(tmp_path):
    var_root = tmp_path / "var"
    lake = Lake(load_settings(var_root=var_root))
    lake.write_arrow(
        pa.concat_tables(
            user_lists_table({"all": {"u1": ["a"]}, "buy_again": {"u1": [f"again-{day}"]}}, day, f"run-{day}")
            for day in (date(2026, 1, 2), date(2026, 1, 3))
        ),
        "gold.recommendations",
    )

    first = cli(var_root, "publish", "buy_again", "--run-id", "run-a", "--date", "2026-01-02")
    second = cli(var_root, "publish", "buy_again", "--run-id", "run-b", "--date", "2026-01-03")
    rolled = cli(var_root, "rollback", "buy_again")

    assert first.returncode == 0, first.stderr
    assert (json.loads(first.stdout)["dataset"], json.loads(first.stdout)["key_count"]) == ("buy_again", 1)
    assert json.loads(second.stdout)["previous_version"] == json.loads(first.stdout)["version"]
    assert json.loads(rolled.stdout) == {"dataset": "buy_again", "current": json.loads(first.stdout)["version"]}
