"""The lake module's delta-spark path: Spark's own Delta writer and delta-rs read and write each other's tables.

Needs delta-spark's jars (the docker image has them in /opt/spark/jars; elsewhere name a folder holding
them in SHOPML_TEST_DELTA_JARS). Machines that cannot reach Maven have none, so the test skips there,
saying so; every other test runs the delta-rs path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from shopml import accounting
from shopml.lake import Lake
from shopml.settings import load_settings

JAR_FOLDER = Path(os.environ.get("SHOPML_TEST_DELTA_JARS", "/opt/spark/jars"))
JARS = sorted(str(path) for path in JAR_FOLDER.glob("delta-*.jar")) if JAR_FOLDER.is_dir() else []

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not any("delta-spark" in jar for jar in JARS),
        reason=f"no delta-spark jars in {JAR_FOLDER} (set SHOPML_TEST_DELTA_JARS to a folder holding "
        "delta-spark_*.jar and delta-storage-*.jar; docker/fetch_jars.py fetches them where Maven is reachable)",
    ),
]

# Run in a fresh interpreter: the suite's shared Spark session has no Delta jars on its classpath.
SPARK_SIDE = """
import json, sys
from datetime import date
from sample_shop.generate import GeneratorConfig, generate
from shopml.lake import Lake
from shopml.settings import get_settings
from tests.shop import run_foundation

step, landing = sys.argv[1], sys.argv[2]
lake = Lake(get_settings())
assert lake.engine == "spark", lake.engine
config = GeneratorConfig(users=60, skus=20, categories=3, days=2, events_per_day=300, seed=11)
if step == "first":
    generate(config, landing)
    run_foundation(lake, config.end_date, config.start_date)
else:  # rerun the last day over tables delta-rs has written to since
    run_foundation(lake, config.end_date)
    replay = lake.read("silver.events").limit(5)
    lake.merge(replay, "silver.events", ["event_date", "event_id"], update=False)
print(json.dumps({"events": lake.read("silver.events").count(), "last": str(config.end_date)}))
"""


def _spark_side(step: str, root: Path) -> dict:
    env = os.environ | {
        "SHOPML_VAR_ROOT": str(root / "var"),
        "SHOPML_LANDING_ROOT": str(root / "landing"),
        "SHOPML_SPARK_JARS": ",".join(JARS),
        "SHOPML_DELTA_ENGINE": "spark",
        "SHOPML_SPARK_SHUFFLE_PARTITIONS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-c", SPARK_SIDE, step, str(root / "landing")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tables_written_by_spark_and_by_delta_rs_are_one_lake(tmp_path):
    first = _spark_side("first", tmp_path)
    lake = Lake(load_settings(var_root=tmp_path / "var", delta_engine="rs"))
    assert lake.read_arrow("silver.events", columns=["event_id"]).num_rows == first["events"]
    counted = lake.read_arrow("ops.row_accounting", filter=pc.field("dataset") == "events").to_pylist()
    assert sum(row["silver"] for row in counted) == first["events"]

    # delta-rs commits into the Spark-written table; Spark then replaces and merges over that commit.
    rows = accounting.merge_stage_counts(lake, "events", "rs-side", {row["landing_date"]: {} for row in counted})
    accounting.write_counts(lake, "events", rows)
    again = _spark_side("rerun", tmp_path)

    assert again["events"] == first["events"], "the rerun and the replayed merge added nothing"
    assert lake.read_arrow("silver.events", columns=["event_id"]).num_rows == first["events"]
    by_day = {str(r["landing_date"]): r for r in lake.read_arrow("ops.row_accounting").to_pylist()}
    assert by_day[again["last"]]["run_id"] != "rs-side", "Spark replaced the last day's row"
    assert {r["run_id"] for day, r in by_day.items() if day != again["last"]} == {"rs-side"}, "and kept the others"
