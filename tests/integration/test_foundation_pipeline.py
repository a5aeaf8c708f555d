"""ingest → clean → validate on generated data: every planted defect caught, every row accounted for."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs import clean, ingest, validate
from jobs.ingest import LandingError
from jobs.privacy import erase_customer
from serving.publish import publish_dataset
from shopml import accounting
from shopml.accounting import RowAccountingError
from shopml.catalog import TABLES, spec
from shopml.lake import Lake
from shopml.notify import alerts_path
from shopml.quality import ValidationFailed
from shopml.settings import load_settings
from tests.integration.serving.serving_tables import user_lists_table
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


def test_every_table_written_has_the_columns_and_types_the_catalog_declares(landed):
    written = [name for name in TABLES if landed.lake.exists(name)]
    assert len(written) >= 12
    for name in written:
        on_disk = {field.name: field.type for field in landed.lake.arrow_dataset(name).schema}
        assert on_disk == {field.name: field.type for field in spec(name).arrow_schema()}, name


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


def _jsonl(rows: list) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def _planted_rows(day) -> dict[str, list]:
    """Rows the generator never plants: each products and inventory reason and a quantity out of range."""
    ts = f"{day}T12:00:00Z"
    product = {"title": "t", "category": "toys", "brand": "b", "unit_price": 5.0, "active": True}
    event = {"event_type": "purchase", "user_id": "u-x", "session_id": "s-x", "sku": "NEW-1", "quantity": 1}
    event |= {"unit_price": "5.00", "currency": "EUR", "event_ts": f"{day}T12:00:00+00:00"}
    return {
        "products": [
            *({**product, "sku": f"NEW-{n}"} for n in (1, 2, 3)),
            {**product, "sku": "BAD-PRICE", "unit_price": -3.0},
            {**product, "sku": "BAD-ACTIVE", "active": "maybe"},
            {**product, "title": "no sku"},
            '{"sku": "CUT',
        ],
        "inventory": [
            {"sku": "NEW-1", "on_hand": -5, "on_order": 0, "lead_time_days": 3, "snapshot_ts": ts},
            {"sku": "NEW-2", "on_hand": 5, "on_order": -1, "lead_time_days": 3, "snapshot_ts": ts},
            {"sku": "NEW-3", "on_hand": 5, "on_order": 0, "lead_time_days": 400, "snapshot_ts": ts},
            {"sku": "GHOST-1", "on_hand": 5, "on_order": 0, "lead_time_days": 3, "snapshot_ts": ts},
            {"on_hand": 5, "snapshot_ts": ts},
        ],
        "events": [{**event, "event_id": "too-many", "quantity": 20_000}, {**event, "event_id": "csv-1"}],
    }


def test_bad_files_and_rows_are_rejected_or_quarantined_with_their_reason_and_the_night_goes_on(landed):
    """Files: a symlink, an unsupported type, a cut-off gzip and a CSV whose header lacks a required column
    are quarantined by name; marker files and a sub-folder are skipped and counted. Lines: bytes that are
    not UTF-8, a conflicting resend, every products and inventory reason, a quantity out of range; a CSV
    with its columns in another order is read by name. The accounting stays exact."""
    lake, day = landed.lake, landed.last
    folder = lake.settings.landing / "events" / f"date={day}"
    good = json.loads(next(folder.glob("*.jsonl")).read_text().splitlines()[0])
    rows = _planted_rows(day)
    columns = ["unit_price", "event_ts", "sku", "event_id", "quantity", "event_type", "currency", "user_id"]
    planted = {
        folder / "export.xlsx": b"not a landing format",
        folder / "cut.jsonl.gz": gzip.compress(json.dumps(good).encode() * 50)[:-12],
        folder / "latin1.jsonl": json.dumps({**good, "event_id": "caf\u00e9-1"}, ensure_ascii=False).encode("latin-1"),
        # The day's first event again under its id, with another quantity: which one is true?
        folder / "conflict.jsonl": json.dumps({**good, "quantity": (good.get("quantity") or 1) + 5}).encode(),
        folder / "_SUCCESS": b"",
        folder / "planted.jsonl": _jsonl(rows["events"][:1]).encode(),
        folder / "reordered.csv": (
            ",".join(columns) + "\n" + ",".join(str(rows["events"][1][c]) for c in columns)
        ).encode(),
        folder / "no-sku.csv": b"event_id,event_type,event_ts\ncsv-2,view,2026-01-01T00:00:00Z\n",
    }
    for dataset in ("products", "inventory"):
        planted[lake.settings.landing / dataset / f"date={day}" / "planted.jsonl"] = _jsonl(rows[dataset]).encode()
    for path, content in planted.items():
        path.write_bytes(content)
    (folder / "passwd.jsonl").symlink_to("/etc/passwd")
    (folder / "nested").mkdir()
    try:
        summary = run_foundation(lake, day)["ingest"]
        quarantine = lake.read_arrow("ops.quarantine", filter=pc.field("landing_date") == day).to_pylist()
        accounting = {
            r["dataset"]: r for r in lake.read_arrow("ops.row_accounting").to_pylist() if r["landing_date"] == day
        }
        silver_events = set(lake.read_arrow("silver.events", columns=["event_id"])["event_id"].to_pylist())
    finally:
        for path in [*planted, folder / "passwd.jsonl"]:
            path.unlink()
        (folder / "nested").rmdir()
        run_foundation(lake, day)

    rejected = {(r["record_key"], r["reason"]) for r in quarantine if r["stage"] == "ingest"}
    assert rejected == {
        ("export.xlsx", "rejected_file:unsupported_type"),
        ("cut.jsonl.gz", "rejected_file:unreadable"),
        ("passwd.jsonl", "rejected_file:symlink"),
        ("no-sku.csv", "rejected_file:csv_header"),
    }
    assert len(summary["rejected_files"]["events"]) == 4 and len(summary["skipped_entries"]["events"]) == 2
    assert "lacks sku" in next(r["payload"] for r in quarantine if r["record_key"] == "no-sku.csv")
    assert [r["reason"] for r in quarantine if r["source_file"].endswith("latin1.jsonl")] == ["encoding_error"]
    conflicts = [r for r in quarantine if r["reason"] == "conflicting_duplicate"]
    assert [r["record_key"] for r in conflicts] == [good["event_id"]]
    found = {
        (r["dataset"], r["record_key"], r["reason"]) for r in quarantine if r["source_file"].endswith("planted.jsonl")
    }
    assert found == {
        ("products", "BAD-PRICE", "price_out_of_range"),
        ("products", "BAD-ACTIVE", "invalid_type:active"),
        ("products", None, "missing_field:sku"),
        ("products", None, "malformed_json"),
        ("inventory", "NEW-1", "negative_stock"),
        ("inventory", "NEW-2", "negative_on_order"),
        ("inventory", "NEW-3", "lead_time_out_of_range"),
        ("inventory", "GHOST-1", "unknown_sku"),
        ("inventory", None, "missing_field:sku"),
        ("events", "too-many", "quantity_out_of_range"),
    }
    assert "csv-1" in silver_events, "a CSV with its columns in another order is read by name"
    assert accounting["events"]["landed"] == landed.manifest["days"][str(day)]["events"]["lines"] + 4
    for dataset, row in accounting.items():
        accounted = row["silver"] + row["quarantined_clean"] + row["quarantined_validate"] + row["duplicates"]
        assert row["landed"] == accounted + row["bots"], (dataset, row)
    after = lake.read_arrow("ops.quarantine").to_pylist()
    assert not [r for r in after if r["stage"] == "ingest"], "a rerun without the bad files clears their rows"


def test_rows_lost_between_stages_stop_validate_before_silver_changes(landed):
    """A day whose accounting does not reconcile fails with the counts, and nothing reaches silver."""
    lake, day = landed.lake, landed.last
    ingest.run(run_date=day, lake=lake)
    clean.run(run_date=day, lake=lake)
    landed_lines = accounting.read_counts(lake, "events", [day])[day]["landed"]
    accounting.record_stage_counts(lake, "events", "tamper", {day: {"landed": landed_lines + 1}})
    silver_versions = {table: lake.version(table) for table in ("silver.events", "silver.order_lines")}
    try:
        with pytest.raises(RowAccountingError, match=rf"events {day}: landed {landed_lines + 1} rows but accounted"):
            validate.run(run_date=day, lake=lake)
        assert {table: lake.version(table) for table in silver_versions} == silver_versions
    finally:  # ingest and clean rewrote the day as it was: put the count back and publish it again
        accounting.record_stage_counts(lake, "events", "restore", {day: {"landed": landed_lines}})
        validate.run(run_date=day, lake=lake)


def _repeat_one_event(staged):
    return staged.unionByName(staged.limit(1))


def _lose_one_event_id(staged):
    first = staged.limit(1)
    return staged.exceptAll(first).unionByName(first.withColumn("event_id", F.lit(None).cast("string")))


@pytest.mark.parametrize(
    ("tamper", "expectation"),
    [
        (_repeat_one_event, "expect_column_values_to_be_unique"),
        (_lose_one_event_id, "expect_column_values_to_not_be_null"),
    ],
)
def test_a_broken_event_id_stops_validate_with_a_critical_alert_and_nothing_published(landed, tamper, expectation):
    """A critical expectation on event_id (unique, not null) fails: the run stops naming it, a critical
    alert goes out, and silver keeps what it had."""
    lake, day = landed.lake, landed.last
    where = f"landing_date = '{day}'"
    staged = lake.read("staging.events").where(F.col("landing_date") == F.lit(day)).localCheckpoint()
    lake.write(tamper(staged).localCheckpoint(), "staging.events", replace_where=where)
    silver_versions = {table: lake.version(table) for table in ("silver.events", "silver.order_lines")}
    try:
        with pytest.raises(ValidationFailed, match=expectation) as failure:
            validate.run(run_date=day, lake=lake)
        assert "Nothing was published to silver" in str(failure.value)
        assert {table: lake.version(table) for table in silver_versions} == silver_versions
        alerts = [json.loads(line) for line in alerts_path(lake.settings).read_text().splitlines()]
        breaches = [a for a in alerts if a["event"] == "validation_breach" and a["severity"] == "critical"]
        assert breaches and expectation in breaches[-1]["summary"]
    finally:  # validate changed nothing: putting staging back restores the day
        lake.write(staged, "staging.events", replace_where=where)


@pytest.mark.parametrize(("dataset", "change"), [("events", "drop"), ("products", "add"), ("inventory", "drop")])
def test_a_staged_table_of_another_shape_fails_the_critical_schema_expectation(landed, dataset, change):
    lake, day = landed.lake, landed.last
    staged = lake.read(f"staging.{dataset}").where(F.col(validate.DATE_COLUMN[dataset]) == F.lit(day))
    if dataset == "events":
        staged = staged.withColumn("days_late", F.lit(0))
    catalogue = validate.catalogue_skus(lake, day) if dataset != "products" else None
    checked = validate.checked_columns(staged, dataset, catalogue)
    reshaped = checked.drop("quantity" if dataset == "events" else "on_hand") if change == "drop" else checked
    reshaped = reshaped.withColumn("surprise", F.lit(1)) if change == "add" else reshaped

    outcome = validate.validate_staged(lake, reshaped, dataset, day, "schema-test", has_catalogue=True)

    assert any("expect_table_columns_to_match_set" in failure for failure in outcome.critical_failures), outcome


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


def _string_values(path: Path) -> set[str]:
    table = pq.read_table(path)
    return {
        value
        for column in table.itercolumns()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        for value in column.to_pylist()
        if value is not None
    }


def test_an_erased_customer_is_gone_from_every_table_file_and_serving_version(landed, tmp_path):
    """Erasure on a copy of the lake, with two published versions of the customer's lists: no data file of
    any table (old versions included) and no kept serving version holds the id afterwards."""
    shutil.copytree(landed.lake.settings.var_root, tmp_path / "var")
    settings = load_settings(var_root=tmp_path / "var", landing_root=landed.lake.settings.landing)
    lake = Lake(settings, landed.lake.spark)
    users = lake.read_pandas("silver.events", columns=["user_id"])["user_id"].dropna()
    user = users.value_counts().index[0]
    for day, run_id in ((landed.last - timedelta(days=1), "run-1"), (landed.last, "run-2")):
        lists = {"all": {user: ["a"], "someone-else": ["b"]}, "buy_again": {user: ["c"], "someone-else": ["d"]}}
        lake.write_arrow(user_lists_table(lists, day, run_id), "gold.recommendations", mode="append")
        for dataset in ("recommendations", "buy_again"):
            publish_dataset(dataset, day, run_id, settings, triggered_by="test")

    erasure = erase_customer(user, settings, requested_by="test")

    assert {"bronze.events", "staging.events", "silver.events", "gold.recommendations"} <= set(erasure.deleted_rows)
    assert erasure.serving_keys_removed == {"recommendations": 2, "buy_again": 2, "discover": 0, "customers": 0}
    holding = [path for path in (tmp_path / "var" / "lake").rglob("*.parquet") if user in _string_values(path)]
    assert holding == [], "data files still holding the erased id"
    store = sqlite3.connect(tmp_path / "var" / "serving.db")
    assert store.execute("SELECT count(*) FROM serving_entry WHERE entity = ?", (user,)).fetchone() == (0,)
    assert store.execute("SELECT count(*) FROM serving_entry WHERE entity = 'someone-else'").fetchone() == (4,)
    for meta, count in store.execute(
        "SELECT v.meta, (SELECT count(*) FROM serving_entry e WHERE e.dataset = v.dataset AND e.version = v.version)"
        " FROM serving_version v"
    ):
        assert int(json.loads(meta)["key_count"]) == count, "key counts follow the erasure"
    audit = lake.read_arrow("ops.erasure_audit").to_pylist()
    assert [row["subject_sha256"] for row in audit] == [hashlib.sha256(user.encode()).hexdigest()]
    assert user not in json.dumps(audit, default=str)
