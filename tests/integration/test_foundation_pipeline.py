"""ingest → clean → validate on generated data: every planted defect caught, every row accounted for."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from jobs import ingest
from jobs.ingest import LandingError
from shopml.quality import ValidationFailed
from tests.shop import land_and_run, run_foundation


def _reasons_by_date(lake, dataset="events") -> dict:
    rows = lake.read("ops.quarantine").where(F.col("dataset") == dataset).groupBy("landing_date", "reason").count()
    counts: dict = {}
    for row in rows.collect():
        reason = row.reason.split(":")[0] if row.reason.startswith(("missing_field", "invalid_type")) else row.reason
        counts.setdefault(str(row.landing_date), Counter())[reason] += row["count"]
    return counts


def test_every_planted_defect_is_caught_with_its_reason(landed):
    reasons = _reasons_by_date(landed.lake)
    accounting = {
        str(r.landing_date): r for r in landed.lake.read("ops.row_accounting").where("dataset = 'events'").collect()
    }
    for day, planted in landed.manifest["days"].items():
        events = planted["events"]
        malformed = events["malformed"]
        found = reasons[day]
        very_late = sum(n for lateness, n in events["late_by_days"].items() if int(lateness) > 7)
        assert found["malformed_json"] == malformed["truncated"], day
        assert found["missing_field"] == malformed["missing_field"], day
        assert found["invalid_type"] == malformed["wrong_type"], day
        assert found["price_out_of_range"] == malformed["negative_price"], day
        assert found["unknown_sku"] == malformed["unknown_sku"], day
        assert found["unknown_event_type"] == malformed["unknown_event_type"], day
        assert found["non_product_line"] == events["non_product"], day
        assert found["bot_traffic"] == events["bot"], day
        assert found["event_ts_out_of_window"] == very_late, day
        assert accounting[day].duplicates == events["duplicate"] + events["replay"], day
        assert accounting[day].silver == events["valid"] + events["zero_price"] - very_late, day


def test_row_accounting_reconciles_for_every_date_and_dataset(landed):
    rows = landed.lake.read("ops.row_accounting").collect()
    assert {row.dataset for row in rows} == {"events", "products", "inventory"}
    for row in rows:
        quarantined = row.quarantined_clean + row.quarantined_validate
        assert row.landed == row.silver + quarantined + row.duplicates + row.bots, row
        assert row.landed == landed.manifest["days"][str(row.landing_date)][row.dataset]["lines"]


def test_nothing_is_lost_between_bronze_and_silver_plus_quarantine(landed):
    lake = landed.lake
    bronze = lake.read("bronze.events").count()
    silver = lake.read("silver.events").count()
    quarantined = lake.read("ops.quarantine").where("dataset = 'events'").count()
    duplicates = sum(r.duplicates for r in lake.read("ops.row_accounting").where("dataset = 'events'").collect())
    assert bronze == landed.manifest["totals"]["lines"]
    assert bronze == silver + quarantined + duplicates


def test_late_events_are_routed_to_their_true_date(landed):
    silver = landed.lake.read("silver.events")
    late = silver.where(F.col("event_date") < F.col("landing_date")).count()
    planted_late = sum(
        n
        for day in landed.manifest["days"].values()
        for lateness, n in day["events"]["late_by_days"].items()
        if int(lateness) <= 7
    )
    assert late == planted_late
    assert silver.where(F.col("event_date") != F.to_date("event_ts")).count() == 0


def test_silver_is_unique_and_order_lines_match_purchases_and_returns(landed):
    lake = landed.lake
    events = lake.read("silver.events")
    assert events.count() == events.select("event_id").distinct().count()
    orders = events.where(F.col("event_type").isin("purchase", "return")).count()
    lines = lake.read("silver.order_lines")
    assert lines.count() == orders
    assert lines.where("line_type = 'return' AND quantity >= 0").count() == 0
    assert lake.read("silver.products").select("snapshot_date").distinct().count() == 4


def test_quarantine_keeps_the_original_payload(landed):
    truncated = landed.lake.read("ops.quarantine").where("reason = 'malformed_json'").first()
    assert truncated.payload and truncated.source_file.endswith((".jsonl", ".jsonl.gz"))


def test_validation_results_and_data_docs_are_written(landed):
    results = landed.lake.read("ops.validation_results")
    assert {row.suite for row in results.select("suite").distinct().collect()} == {
        "events",
        "event_volume",
        "products",
        "inventory",
    }
    failed = {row.expectation for row in results.where("NOT success").collect()}
    assert "expect_column_values_to_be_in_set" in failed  # unknown event types and SKUs were planted
    assert (landed.lake.settings.var_root / "gx/gx/uncommitted/data_docs/local_site/index.html").exists()


def test_rerunning_a_date_is_idempotent(landed):
    lake = landed.lake

    def snapshot():
        return (
            sorted(lake.read("silver.events").select("event_id").toPandas()["event_id"]),
            lake.read("ops.quarantine").count(),
            sorted(tuple(r) for r in lake.read("ops.row_accounting").drop("run_id", "updated_at").collect()),
        )

    before = snapshot()
    run_foundation(lake, landed.last, run_id="rerun")
    assert snapshot() == before


def test_an_empty_day_stops_validation_naming_the_check_and_the_date(landed):
    lake = landed.lake
    empty_day = landed.last + timedelta(days=1)
    folder = lake.settings.landing / "events" / f"date={empty_day}"
    folder.mkdir(parents=True)
    (folder / "part-00000.jsonl").write_text("")
    silver_before = lake.read("silver.events").count()
    try:
        with pytest.raises(ValidationFailed, match=rf"empty_day on {empty_day}: 0 staged events"):
            run_foundation(lake, empty_day)
        assert lake.read("silver.events").count() == silver_before
    finally:
        shutil.rmtree(folder)


def test_a_missing_landing_folder_is_a_clear_error(landed):
    with pytest.raises(LandingError, match=r"no events landed for 2030-01-01: expected folder .*date=2030-01-01"):
        ingest.run(run_date=landed.last.replace(year=2030, month=1, day=1), lake=landed.lake)


def test_unsupported_files_in_landing_are_an_error_not_a_skip(landed, tmp_path):
    folder = landed.lake.settings.landing / "events" / f"date={landed.last}"
    stray = folder / "export.xlsx"
    stray.write_text("not a landing format")
    try:
        with pytest.raises(LandingError, match="unsupported file type"):
            ingest.run(run_date=landed.last, lake=landed.lake)
    finally:
        stray.unlink()


@pytest.mark.slow
def test_orders_only_shop_in_csv_with_no_inventory_feed(tmp_path, spark):
    shop = land_and_run(tmp_path, spark, days=2, orders_only=True, events_format="csv")
    lake = shop.lake
    types = {row.event_type for row in lake.read("silver.events").select("event_type").distinct().collect()}
    assert types <= {"purchase", "return"}
    assert not lake.exists("silver.inventory_snapshots")
    for row in lake.read("ops.row_accounting").collect():
        assert row.landed == row.silver + row.quarantined_clean + row.quarantined_validate + row.duplicates + row.bots
        assert row.landed == shop.manifest["days"][str(row.landing_date)][row.dataset]["lines"]
