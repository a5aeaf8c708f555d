"""The nightly feature job on a small lake: what it writes, reruns, late data and bounded reads."""

from __future__ import annotations

from datetime import timedelta

import pyarrow.compute as pc

from jobs.features import CORRECTIONS_TABLE, _read_between
from jobs.stages import FEATURE_TABLES
from jobs.transforms.features import (
    build_item_cooccurrence,
    build_item_features,
    build_sku_daily_demand,
    build_user_item_interactions,
    summarise_activity,
)
from shopml.catalog import spec
from shopml.config.features import FeaturesConfig
from tests.integration.features.feature_lake import LAST_DAY, NEXT_DAY, gold_rows

PREVIOUS_DAY = LAST_DAY - timedelta(days=1)


def test_nightly_build_writes_one_partition_per_table(scenario):
    assert scenario.first["feature_dates"] == [LAST_DAY.isoformat()]
    assert scenario.first["corrected_dates"] == [] and scenario.first["late_events"] == 0
    for table in FEATURE_TABLES:
        written = scenario.first["rows"][table]
        assert written > 0, table
        assert len(scenario.first_rows[table]) == written, table


def test_rerun_replaces_the_day_without_duplicates_or_later_events(scenario):
    # D+1's events had landed before the rerun: they are after the end of D, so nothing changes
    assert scenario.rerun["corrected_dates"] == []
    assert scenario.rerun_rows == scenario.first_rows
    for table in FEATURE_TABLES:
        keys = scenario.lake.read(table).where(f"feature_date = '{LAST_DAY}'").select(*spec(table).keys)
        assert keys.count() == keys.distinct().count() == len(scenario.first_rows[table]), table


def test_late_events_rederive_every_day_they_change_and_are_recorded(scenario):
    nightly = scenario.nightly
    assert nightly["corrected_dates"] == [PREVIOUS_DAY.isoformat(), LAST_DAY.isoformat()]
    assert nightly["feature_dates"] == [PREVIOUS_DAY.isoformat(), LAST_DAY.isoformat(), NEXT_DAY.isoformat()]
    assert nightly["late_events"] == scenario.late_events
    corrections = scenario.lake.read_arrow(CORRECTIONS_TABLE).to_pylist()
    assert {(r["run_date"], r["feature_date"], r["table_name"], r["late_event_count"]) for r in corrections} == {
        (NEXT_DAY, day, table, scenario.late_events) for day in (PREVIOUS_DAY, LAST_DAY) for table in FEATURE_TABLES
    }
    assert {r["run_id"] for r in corrections} == {"nightly"}
    assert gold_rows(scenario.lake, LAST_DAY) != scenario.first_rows  # the late events are inside D's windows


def test_corrected_day_equals_a_fresh_build_on_everything_known(scenario):
    lake, config = scenario.lake, FeaturesConfig()
    products, inventory = lake.read("silver.products"), lake.read("silver.inventory_snapshots")
    act = summarise_activity(lake.read("silver.events"), lake.read("silver.order_lines"), LAST_DAY, LAST_DAY, config)
    fresh = {
        "gold.item_features": build_item_features(act, products, inventory, LAST_DAY, config),
        "gold.user_item_interactions": build_user_item_interactions(act, LAST_DAY, config),
        "gold.item_cooccurrence": build_item_cooccurrence(act, LAST_DAY, config),
        "gold.sku_daily_demand": build_sku_daily_demand(act, products, inventory, LAST_DAY, config),
    }
    stored = gold_rows(lake, LAST_DAY)
    for table, frame in fresh.items():
        assert sorted(map(str, frame.toArrow().to_pylist())) == stored[table], table


def test_event_reads_touch_only_the_partitions_in_range(scenario):
    frame = _read_between(scenario.lake, "silver.events", "event_date", PREVIOUS_DAY, LAST_DAY)
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [isnotnull(event_date" in plan
    assert {row["event_date"] for row in frame.select("event_date").distinct().collect()} == {PREVIOUS_DAY, LAST_DAY}
    files = scenario.lake.read_arrow(
        "silver.events", columns=["event_date"], filter=pc.field("event_date") < PREVIOUS_DAY
    )
    assert files.num_rows > 0  # older partitions exist and were skipped
