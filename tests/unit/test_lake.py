from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from shopml.lake import TableNotFoundError

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)
SCHEMA = "landing_date date, source_file string, payload string, ingested_at timestamp"


def _bronze(spark, rows):
    return spark.createDataFrame([(day, "f", text, None) for day, text in rows], SCHEMA)


def test_write_read_round_trip_keeps_schema_order(lake, spark):
    written = lake.write(_bronze(spark, [(D1, "a"), (D2, "b")]), "bronze.events")
    frame = lake.read("bronze.events")
    assert written == 2
    assert frame.columns == ["landing_date", "source_file", "payload", "ingested_at"]
    assert sorted(row.payload for row in frame.collect()) == ["a", "b"]


def test_replace_where_rerun_is_idempotent_and_time_travel_sees_the_past(lake, spark):
    lake.write(_bronze(spark, [(D1, "a"), (D2, "b")]), "bronze.events")
    for _ in range(2):
        lake.write(_bronze(spark, [(D2, "b2"), (D2, "b3")]), "bronze.events", replace_where=f"landing_date = '{D2}'")
    current = sorted(row.payload for row in lake.read("bronze.events").collect())
    assert current == ["a", "b2", "b3"]
    assert sorted(row.payload for row in lake.read("bronze.events", version=0).collect()) == ["a", "b"]
    assert lake.version("bronze.events") == 2


def test_merge_upserts_on_keys(lake, spark):
    schema = "event_id string, event_type string, event_date date"
    lake.write(spark.createDataFrame([("e1", "view", D1), ("e2", "view", D1)], schema), "silver.events")
    lake.merge(
        spark.createDataFrame([("e2", "purchase", D1), ("e3", "view", D2)], schema), "silver.events", ["event_id"]
    )
    rows = {row.event_id: row.event_type for row in lake.read("silver.events").collect()}
    assert rows == {"e1": "view", "e2": "purchase", "e3": "view"}


def test_tables_are_plain_delta_with_partitions_and_description(lake, spark):
    lake.write(_bronze(spark, [(D1, "a")]), "bronze.events")
    delta = DeltaTable(lake.path("bronze.events"))
    assert delta.metadata().partition_columns == ["landing_date"]
    assert "Raw events" in delta.metadata().description
    # Readable by delta-spark too: no reader features beyond protocol 1 (no deletion vectors, no column mapping).
    assert delta.protocol().min_reader_version == 1


def test_arrow_reads_need_no_spark(lake):
    table = pa.table({"dataset": ["events"], "landing_date": [D1], "landed": [3]})
    lake.write_arrow(table, "ops.row_accounting")
    assert lake.read_arrow("ops.row_accounting", columns=["landed"]).to_pylist() == [{"landed": 3}]
    assert [batch.num_rows for batch in lake.iter_batches("ops.row_accounting")] == [1]


def test_empty_table_reads_as_empty_frame(lake, spark):
    lake.write(_bronze(spark, []), "bronze.events")
    assert lake.read("bronze.events").count() == 0


def test_reading_a_missing_table_says_which(lake):
    with pytest.raises(TableNotFoundError, match=r"bronze\.products"):
        lake.read("bronze.products")


def test_unknown_table_names_are_rejected(lake):
    with pytest.raises(KeyError, match="known tables"):
        lake.path("silver.evnts")


def test_a_process_that_read_partitioned_tables_exits_cleanly(lake):
    """Arrow's reader threads once called back into delta-rs's Python filesystem during interpreter
    shutdown and aborted the process (exit 134) after its work was done, in most runs."""
    import subprocess
    import sys

    for dataset in ("a", "b", "c", "a"):  # one file per append, as publishes add audit rows
        lake.write_arrow(pa.table({"dataset": [dataset], "key_count": [1]}), "ops.publish_audit", mode="append")
    script = (
        "from shopml.lake import Lake; from shopml.settings import load_settings; "
        f"lake = Lake(load_settings(var_root={str(lake.settings.var_root)!r})); "
        "assert lake.read_arrow('ops.publish_audit', columns=[]).num_rows == 4; "
        "assert sum(b.num_rows for b in lake.iter_batches('ops.publish_audit')) == 4"
    )
    exits = [subprocess.run([sys.executable, "-c", script], capture_output=True).returncode for _ in range(6)]
    assert exits == [0] * 6


def test_every_read_and_write_is_logged_with_its_task_when_asked(settings, tmp_path, monkeypatch):
    import json

    from shopml.catalog import OPS_PUBLISH_AUDIT, spec
    from shopml.lake import Lake

    log_file = tmp_path / "lineage.jsonl"
    lake = Lake(settings.model_copy(update={"lineage_log": log_file}))
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "publish.publish_similar")
    lake.write_arrow(spec(OPS_PUBLISH_AUDIT).arrow_schema().empty_table(), OPS_PUBLISH_AUDIT)
    lake.read_arrow(OPS_PUBLISH_AUDIT)
    lake.version(OPS_PUBLISH_AUDIT)

    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {(e["task"], e["kind"], e["table"]) for e in entries} == {
        ("publish.publish_similar", "write", OPS_PUBLISH_AUDIT),
        ("publish.publish_similar", "read", OPS_PUBLISH_AUDIT),
    }
    Lake(settings).read_arrow(OPS_PUBLISH_AUDIT)  # off by default
    assert len(log_file.read_text().splitlines()) == len(entries)
