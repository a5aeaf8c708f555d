"""Publishing, reading, idempotent reruns, gc, rollback, overlays and the audit table, on real SQLite and Redis."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date

import pyarrow as pa
import pytest

from serving.datasets import DATASETS
from serving.publish import (
    PublishConflictError,
    PublishError,
    dataset_versions,
    gc_datasets,
    overlay_keys,
    publish_dataset,
    rollback_dataset,
    version_id,
)
from serving.store import LockLostError, RedisStore, VersionInfo, open_store
from shopml.errors import Skipped
from shopml.lake import Lake
from tests.integration.serving.serving_tables import (
    GENERATED_AT,
    forecasts_table,
    inventory_table,
    recommendations_table,
    similar_table,
    user_lists_table,
)

D1, D2, D3 = date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)
LISTS = {"u1": ["a", "b"], "u2": ["c"], "__default__": ["x", "y", "z"]}
# gold.recommendations with its list column: u2 never bought anything, so has no buy_again list.
USER_LISTS = {
    "all": LISTS,
    "buy_again": {"u1": ["b1", "b2"]},
    "discover": {"u1": ["n1"], "u2": ["n2", "n3"], "__default__": ["d1"]},
}
LIST_DATASETS = ("recommendations", "buy_again", "discover")


def write_scored(lake: Lake, table: str, rows: pa.Table) -> None:
    """Replace one scored_date partition, as the scoring steps do."""
    day = rows["scored_date"][0].as_py()
    replace_where = f"scored_date = '{day}'" if lake.exists(table) else None
    lake.write_arrow(rows, table, replace_where=replace_where)


def publish(settings, config, run_date=D1, run_id="run-1", dataset="recommendations", **kwargs):
    return publish_dataset(dataset, run_date, run_id, settings=settings, config=config, **kwargs)


def read(settings, config, entity, dataset="recommendations", fallback="__default__"):
    store = open_store(settings.serving, config)
    try:
        return store.lookup(dataset, entity, fallback)
    finally:
        store.close()


def test_publish_then_read(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))

    result = publish(serving_settings, serving_config, triggered_by="test")

    assert result.version == version_id(D1, "run-1")
    assert (result.key_count, result.reused, result.previous_version) == (3, False, None)
    found = read(serving_settings, serving_config, "u1")
    assert found.payload == (
        b'{"is_fallback":false,"items":[{"sku":"a","score":1,"reason":"trending"},'
        b'{"sku":"b","score":0.5,"reason":"trending"}]}'
    )
    assert (found.version, found.fallback, found.model_version, found.run_id) == (
        result.version,
        False,
        "rec-v1",
        "run-1",
    )
    assert found.generated_at == GENERATED_AT
    unknown = read(serving_settings, serving_config, "nobody")
    assert unknown.fallback is True
    assert [i["sku"] for i in json.loads(unknown.payload)["items"]] == ["x", "y", "z"]


def test_rerun_of_a_run_id_republishes_the_same_version(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)

    again = publish(serving_settings, serving_config)

    assert again.version == first.version
    assert again.reused and again.checksum == first.checksum and again.key_count == 3
    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == first.version
    assert [(v.version, v.status) for v in versions] == [(first.version, "complete")]
    audit = serving_lake.read_arrow("ops.publish_audit").sort_by("published_at").to_pylist()
    assert [(r["dataset"], r["version"], r["key_count"], r["checksum"], r["run_id"]) for r in audit] == [
        ("recommendations", first.version, 3, first.checksum, "run-1")
    ] * 2
    assert all(r["duration_s"] >= 0 and r["triggered_by"] == "manual" for r in audit)


def test_a_backfill_of_a_past_night_leaves_serving_on_the_later_one_unless_forced(
    serving_settings, serving_lake, serving_config
):
    """``make backfill`` of a published date after a later night: the tables are rebuilt, serving does not go
    back in time. Forced, the same lists reuse their version (no duplicate) and the audit says forced."""
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1, "run-1"))
    first = publish(serving_settings, serving_config, run_id="run-1")
    write_scored(serving_lake, "gold.recommendations", recommendations_table({"u1": ["z"]}, D2, "run-2"))
    later = publish(serving_settings, serving_config, D2, "run-2")
    rescored_at = GENERATED_AT.replace(hour=GENERATED_AT.hour + 1)
    write_scored(
        serving_lake, "gold.recommendations", recommendations_table(LISTS, D1, "run-1b", generated_at=rescored_at)
    )

    with pytest.raises(Skipped, match=f"serving holds the later scored date {D2} \\(version {later.version}\\)"):
        publish(serving_settings, serving_config, run_id="run-1b")
    assert read(serving_settings, serving_config, "u1").version == later.version

    again = publish(serving_settings, serving_config, run_id="run-1b", triggered_by="test", force=True)

    assert (again.version, again.reused, again.checksum) == (first.version, True, first.checksum)
    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == first.version and len(versions) == 2
    found = read(serving_settings, serving_config, "u1")
    # The content keeps its provenance; its age is the rescoring's, so /healthz sees it fresh again.
    assert (found.run_id, found.generated_at) == ("run-1", rescored_at)
    audit = serving_lake.read_arrow("ops.publish_audit").sort_by("published_at").to_pylist()
    assert (audit[-1]["version"], audit[-1]["triggered_by"]) == (first.version, "forced:test")


def test_a_rerun_with_new_content_publishes_a_new_version(serving_settings, serving_lake, serving_config):
    """Late data changed the night: the same run id, cleared and rerun, must not serve the old lists."""
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)
    write_scored(serving_lake, "gold.recommendations", recommendations_table({**LISTS, "u1": ["b", "a"]}, D1))

    again = publish(serving_settings, serving_config)

    assert (again.reused, again.version, again.previous_version) == (False, f"{first.version}-2", first.version)
    assert [i["sku"] for i in json.loads(read(serving_settings, serving_config, "u1").payload)["items"]] == ["b", "a"]


def test_an_overlaid_version_is_superseded_not_reused(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)
    overlay = {"u1": {"is_fallback": False, "items": [{"sku": "b", "score": 1.0, "reason": "recent"}]}}
    assert overlay_keys("recommendations", overlay, first.version, serving_settings, serving_config)

    again = publish(serving_settings, serving_config)

    assert not again.reused and again.version != first.version
    assert [i["sku"] for i in json.loads(read(serving_settings, serving_config, "u1").payload)["items"]] == ["a", "b"]


def test_new_runs_flip_the_pointer_and_gc_keeps_the_last_versions(serving_settings, serving_lake, serving_config):
    results = []
    for day, run_id in [(D1, "run-1"), (D2, "run-2"), (D3, "run-3")]:
        write_scored(
            serving_lake, "gold.recommendations", recommendations_table({"u1": [f"sku-{run_id}"]}, day, run_id)
        )
        results.append(publish(serving_settings, serving_config, day, run_id))

    v1, v2, v3 = (r.version for r in results)
    assert results[2].previous_version == v2 and results[2].removed_versions == (v1,)
    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == v3
    assert [v.version for v in versions] == [v2, v3]
    assert json.loads(read(serving_settings, serving_config, "u1").payload)["items"][0]["sku"] == "sku-run-3"
    store = open_store(serving_settings.serving, serving_config)
    assert store.count_entries("recommendations", v1) == 0
    if isinstance(store, RedisStore):
        ttl = store._redis.ttl
        assert ttl(store.key("recommendations", "data", v3)) == -1
        assert 0 < ttl(store.key("recommendations", "data", v2)) <= serving_config.retired_ttl_s
        assert 0 < ttl(store.key("recommendations", "meta", v2)) <= serving_config.retired_ttl_s
        assert ttl(store.key("recommendations", "data", v1)) == -2
    store.close()


def test_rollback_returns_to_the_previous_version(serving_settings, serving_lake, serving_config):
    for day, run_id in [(D1, "run-1"), (D2, "run-2")]:
        write_scored(
            serving_lake, "gold.recommendations", recommendations_table({"u1": [f"sku-{run_id}"]}, day, run_id)
        )
        publish(serving_settings, serving_config, day, run_id)

    restored = rollback_dataset("recommendations", serving_settings, triggered_by="test", config=serving_config)

    assert restored == version_id(D1, "run-1")
    found = read(serving_settings, serving_config, "u1")
    assert found.version == restored and found.run_id == "run-1"
    assert json.loads(found.payload)["items"][0]["sku"] == "sku-run-1"
    rows = serving_lake.read_arrow("ops.publish_audit").sort_by("published_at").to_pylist()
    assert [(r["version"], r["triggered_by"]) for r in rows][-1] == (restored, "rollback:test")
    with pytest.raises(PublishError, match="no intact version older"):
        rollback_dataset("recommendations", serving_settings, config=serving_config)
    assert read(serving_settings, serving_config, "u1").version == restored


def test_a_version_rolled_back_from_is_never_rolled_back_to(serving_settings, serving_lake, serving_config):
    """v2 was bad and rolled back to v1; v3 is published; rolling v3 back lands on v1, never on v2."""
    versions = {}
    for day, run_id in [(D1, "run-1"), (D2, "run-2")]:
        write_scored(
            serving_lake, "gold.recommendations", recommendations_table({"u1": [f"sku-{run_id}"]}, day, run_id)
        )
        versions[run_id] = publish(serving_settings, serving_config, day, run_id).version
    rollback_dataset("recommendations", serving_settings, config=serving_config)
    _, kept = dataset_versions("recommendations", serving_settings, serving_config)
    assert {v.version: v.status for v in kept}[versions["run-2"]] == "revoked"
    day3 = date(2026, 1, 4)
    write_scored(serving_lake, "gold.recommendations", recommendations_table({"u1": ["sku-run-3"]}, day3, "run-3"))
    publish(serving_settings, serving_config, day3, "run-3")

    assert rollback_dataset("recommendations", serving_settings, config=serving_config) == versions["run-1"]
    assert read(serving_settings, serving_config, "u1").run_id == "run-1"


def test_erasing_a_customer_removes_their_key_from_every_kept_version(serving_settings, serving_lake, serving_config):
    for day, run_id in [(D1, "run-1"), (D2, "run-2")]:
        write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, day, run_id))
        publish(serving_settings, serving_config, day, run_id)
    store = open_store(serving_settings.serving, serving_config)

    assert store.erase_entity("recommendations", "u1") == 2
    assert store.erase_entity("recommendations", "u1") == 0

    found = read(serving_settings, serving_config, "u1")
    assert found.fallback, "an erased customer gets the lists of an unknown one"
    for info in store.list_versions("recommendations"):
        assert store.count_entries("recommendations", info.version) == info.key_count == 2
    store.close()


def test_rollback_without_a_published_version_is_refused(serving_settings, serving_config):
    with pytest.raises(PublishError, match="nothing is published for similar"):
        rollback_dataset("similar", serving_settings, config=serving_config)


def test_a_missing_partition_is_refused_and_the_current_version_keeps_serving(
    serving_settings, serving_lake, serving_config
):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)

    with pytest.raises(PublishError, match="no rows for scored_date 2026-01-03"):
        publish(serving_settings, serving_config, D2, "run-2")

    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == first.version and [v.version for v in versions] == [first.version]


def test_rows_the_api_could_not_serve_are_refused_before_the_flip(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)
    broken = recommendations_table(LISTS, D2, "run-2")
    broken = broken.set_column(broken.schema.get_field_index("sku"), "sku", pa.array(["a", None, "c", "x", "y", "z"]))
    write_scored(serving_lake, "gold.recommendations", broken)

    with pytest.raises(PublishError, match=r"1 row\(s\) with no sku, which every recommendations value needs"):
        publish(serving_settings, serving_config, D2, "run-2")

    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == first.version and [v.version for v in versions] == [first.version]
    assert [item["sku"] for item in json.loads(read(serving_settings, serving_config, "u1").payload)["items"]] == [
        "a",
        "b",
    ]


def test_a_store_that_loses_a_key_fails_verification_and_serving_stays(
    serving_settings, serving_lake, serving_config, monkeypatch
):
    """The store acknowledges a write but keeps one key less: the count check refuses the flip."""
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    first = publish(serving_settings, serving_config)
    write_scored(serving_lake, "gold.recommendations", recommendations_table({**LISTS, "u3": ["q"]}, D2, "run-2"))
    store = open_store(serving_settings.serving, serving_config)
    store_class = type(store)
    store.close()
    write_batch = store_class.write_batch
    lost = []

    def write_all_but_one(self, dataset, version, batch):
        if not lost:
            lost.append(batch["entity"][0].as_py())
            batch = batch.slice(1)
        write_batch(self, dataset, version, batch)

    monkeypatch.setattr(store_class, "write_batch", write_all_but_one)
    with pytest.raises(PublishError, match=r"verification of recommendations version \S+ failed: 4 keys written, 3"):
        publish(serving_settings, serving_config, D2, "run-2")

    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == first.version and [v.version for v in versions] == [first.version], "the draft was removed"
    assert lost and read(serving_settings, serving_config, "u1").version == first.version


def test_a_publish_holding_the_lock_blocks_a_second_one(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    store = open_store(serving_settings.serving, serving_config)
    assert store.acquire_lock("recommendations", "someone-else", 60)

    with pytest.raises(PublishConflictError, match="another publish of recommendations holds the lock"):
        publish(serving_settings, serving_config)

    store.release_lock("recommendations", "someone-else")
    assert publish(serving_settings, serving_config).key_count == 3
    store.close()


def test_a_publisher_whose_lease_lapsed_cannot_flip_over_the_one_that_took_the_lock(
    serving_settings, serving_lake, serving_config
):
    """A stalls past its lease mid-write; B takes the lock, removes A's partial version as an orphan and
    publishes; when A wakes, its pointer flip is refused and B's version stays current."""
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    store = open_store(serving_settings.serving, serving_config)
    stalled = VersionInfo("recommendations", "stalled-a", "writing", run_id="a", scored_date=D1.isoformat())
    assert store.acquire_lock("recommendations", "token-a", 0.2)
    store.begin_version(stalled)
    store.write_batch("recommendations", "stalled-a", pa.table({"entity": ["u1"], "payload": [b'{"items": []}']}))
    time.sleep(0.4)

    published_by_b = publish(serving_settings, serving_config)
    with pytest.raises(LockLostError, match="no longer ours"):
        store.activate_version(
            dataclasses.replace(stalled, status="complete", key_count=1), published_by_b.version, "token-a"
        )

    assert store.current_version("recommendations") == published_by_b.version
    assert "stalled-a" in published_by_b.removed_versions
    assert read(serving_settings, serving_config, "u1") is not None
    store.close()


def test_every_dataset_is_published_in_its_shape(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.similar_items", similar_table({"s1": ["s2", "s3"]}, D1))
    write_scored(serving_lake, "gold.demand_forecasts", forecasts_table(["s1"], D1))
    write_scored(serving_lake, "gold.inventory_plan", inventory_table(["s0", "s1"], D1))

    for dataset in ("similar", "forecasts", "inventory"):
        publish(serving_settings, serving_config, dataset=dataset)

    assert read(serving_settings, serving_config, "s1", "similar", None).payload == (
        b'{"items":[{"sku":"s2","score":0.9,"reason":"co_purchase"},{"sku":"s3","score":0.8,"reason":"co_purchase"}]}'
    )
    assert read(serving_settings, serving_config, "s1", "forecasts", None).payload == (
        b'{"days":[{"date":"2026-01-03","horizon_day":1,"mean":1.75,"p10":1,"p50":1.5,"p90":2},'
        b'{"date":"2026-01-04","horizon_day":2,"mean":2.75,"p10":2,"p50":2.5,"p90":3}]}'
    )
    assert json.loads(read(serving_settings, serving_config, "s1", "inventory", None).payload) == {
        "on_hand": 1,
        "on_order": 5,
        "lead_time_days": 7,
        "expected_lead_time_demand": 14,
        "safety_stock": 3.25,
        "reorder_point": 17.25,
        "recommended_order_qty": 12,
        "days_of_cover": 2.5,
        "stockout_probability": 0.125,
        "status": "reorder",
    }
    assert read(serving_settings, serving_config, "unknown", "inventory", None).payload is None


def test_key_range_passes_give_the_same_content_and_checksum(serving_settings, serving_lake, serving_config):
    lists = {f"u{i:02d}": [f"sku-{i}-{r}" for r in range(3)] for i in range(40)}
    write_scored(serving_lake, "gold.recommendations", recommendations_table(lists, D1))
    one_pass = publish(serving_settings, serving_config)

    many = serving_config.model_copy(update={"rows_per_pass": 10, "batch_size": 7})
    passes = publish(serving_settings, many, D1, "run-2")

    assert passes.key_count == one_pass.key_count == 40
    assert passes.checksum == one_pass.checksum
    assert json.loads(read(serving_settings, many, "u17").payload)["items"][2]["sku"] == "sku-17-2"


def test_overlay_writes_into_the_current_version_until_it_is_superseded(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    v1 = publish(serving_settings, serving_config).version
    fresh = {"is_fallback": False, "items": [{"sku": "new", "score": 0.75, "reason": "trending"}]}

    assert overlay_keys("recommendations", {"u1": fresh, "u9": fresh}, v1, serving_settings, serving_config)

    for user in ("u1", "u9"):
        found = read(serving_settings, serving_config, user)
        assert found.version == v1 and json.loads(found.payload) == fresh
    assert json.loads(read(serving_settings, serving_config, "u2").payload)["items"][0]["sku"] == "c"
    _, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert versions[0].key_count == 4 and versions[0].refreshed_at is not None
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D2, "run-2"))
    v2 = publish(serving_settings, serving_config, D2, "run-2").version
    assert not overlay_keys("recommendations", {"u1": fresh}, v1, serving_settings, serving_config)
    assert json.loads(read(serving_settings, serving_config, "u1").payload)["items"][0]["sku"] == "a"
    assert read(serving_settings, serving_config, "u1").version == v2
    with pytest.raises(ValueError, match="items"):
        overlay_keys("recommendations", {"u1": {"is_fallback": False}}, v2, serving_settings, serving_config)
    assert rollback_dataset("recommendations", serving_settings, config=serving_config) == v1
    assert json.loads(read(serving_settings, serving_config, "u9").payload) == fresh


def test_gc_command_removes_orphans_and_surplus_versions(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))
    published = publish(serving_settings, serving_config).version
    store = open_store(serving_settings.serving, serving_config)

    store.begin_version(VersionInfo("recommendations", "orphan", "writing", run_id="dead"))
    store.write_batch("recommendations", "orphan", pa.table({"entity": ["u1"], "payload": [b"{}"]}))
    store.close()

    removed = gc_datasets(serving_settings, serving_config)

    assert removed == {name: ["orphan"] if name == "recommendations" else [] for name in DATASETS}
    current, versions = dataset_versions("recommendations", serving_settings, serving_config)
    assert current == published and [v.version for v in versions] == [published]


def _served_skus(settings, config, dataset, users) -> dict[str, list[str] | None]:
    found = {user: read(settings, config, user, dataset, None) for user in users}
    return {user: hit.payload and [i["sku"] for i in json.loads(hit.payload)["items"]] for user, hit in found.items()}


def test_each_list_of_gold_recommendations_is_published_as_its_own_dataset(
    serving_settings, serving_lake, serving_config
):
    write_scored(serving_lake, "gold.recommendations", user_lists_table(USER_LISTS, D1))

    results = {dataset: publish(serving_settings, serving_config, dataset=dataset) for dataset in LIST_DATASETS}

    assert {dataset: r.key_count for dataset, r in results.items()} == {
        "recommendations": 3,
        "buy_again": 1,
        "discover": 3,
    }
    users = ("u1", "u2", "__default__")
    assert _served_skus(serving_settings, serving_config, "recommendations", users) == LISTS
    assert _served_skus(serving_settings, serving_config, "buy_again", users) == {
        "u1": ["b1", "b2"],
        "u2": None,
        "__default__": None,
    }
    assert _served_skus(serving_settings, serving_config, "discover", users) == USER_LISTS["discover"]
    bought = json.loads(read(serving_settings, serving_config, "u1", "buy_again").payload)
    assert bought == {
        "is_fallback": False,
        "items": [
            {"sku": "b1", "score": 1, "reason": "bought_before:3x:2025-12-20"},
            {"sku": "b2", "score": 0.5, "reason": "bought_before:3x:2025-12-20"},
        ],
    }
    # No fallback entity: a user without a buy-again list never gets someone else's.
    assert read(serving_settings, serving_config, "stranger", "buy_again").payload is None
    assert json.loads(read(serving_settings, serving_config, "stranger", "discover").payload)["items"] == [
        {"sku": "d1", "score": 1, "reason": "retrieval"}
    ]
    audit = serving_lake.read_arrow("ops.publish_audit").to_pylist()
    assert sorted((r["dataset"], r["key_count"]) for r in audit) == [
        ("buy_again", 1),
        ("discover", 3),
        ("recommendations", 3),
    ]
    # A rerun of the night reuses each list's version: the row filter is part of what is compared.
    again = {dataset: publish(serving_settings, serving_config, D1, "run-2", dataset=dataset) for dataset in results}
    assert all(r.reused and r.version == results[d].version for d, r in again.items())


def test_a_table_without_the_list_column_publishes_recommendations_and_skips_the_other_lists(
    serving_settings, serving_lake, serving_config
):
    write_scored(serving_lake, "gold.recommendations", recommendations_table(LISTS, D1))

    result = publish(serving_settings, serving_config)

    assert result.key_count == 3
    assert _served_skus(serving_settings, serving_config, "recommendations", LISTS) == LISTS
    for dataset in ("buy_again", "discover"):
        with pytest.raises(Skipped) as skipped:
            publish(serving_settings, serving_config, dataset=dataset)
        assert str(skipped.value) == (
            f"nothing to publish for {dataset}: gold.recommendations has no list column "
            f"(written before it had {dataset} rows)"
        )
        assert dataset_versions(dataset, serving_settings, serving_config) == (None, [])
    assert serving_lake.read_arrow("ops.publish_audit")["dataset"].to_pylist() == ["recommendations"]


def test_rows_without_a_list_in_a_grown_table_count_as_the_main_list(serving_settings, serving_lake, serving_config):
    serving_lake.write_arrow(recommendations_table(LISTS, D1), "gold.recommendations")
    # A newer scorer appends a night with the column: the schema grows, older rows read a null list.
    serving_lake.write_arrow(user_lists_table(USER_LISTS, D2, "run-2"), "gold.recommendations", mode="append")

    old_night = publish(serving_settings, serving_config, D1)
    with pytest.raises(Skipped, match=r"gold\.recommendations has no list = buy_again rows for scored_date 2026-01-02"):
        publish(serving_settings, serving_config, D1, dataset="buy_again")
    assert old_night.key_count == 3
    assert _served_skus(serving_settings, serving_config, "recommendations", LISTS) == LISTS

    new_night = {
        dataset: publish(serving_settings, serving_config, D2, "run-2", dataset=dataset) for dataset in LIST_DATASETS
    }
    assert {dataset: r.key_count for dataset, r in new_night.items()} == {
        "recommendations": 3,
        "buy_again": 1,
        "discover": 3,
    }
    assert _served_skus(serving_settings, serving_config, "recommendations", LISTS) == LISTS


def test_a_night_without_the_main_list_fails_even_when_other_lists_have_rows(
    serving_settings, serving_lake, serving_config
):
    write_scored(serving_lake, "gold.recommendations", user_lists_table({"discover": USER_LISTS["discover"]}, D1))

    with pytest.raises(PublishError, match="no rows for scored_date 2026-01-02"):
        publish(serving_settings, serving_config)
    assert publish(serving_settings, serving_config, dataset="discover").key_count == 3


def test_a_list_dataset_rolls_back_on_its_own(serving_settings, serving_lake, serving_config):
    versions = {}
    for day, run_id in [(D1, "run-1"), (D2, "run-2")]:
        lists = {"all": {"u1": [f"main-{run_id}"]}, "buy_again": {"u1": [f"again-{run_id}"]}}
        write_scored(serving_lake, "gold.recommendations", user_lists_table(lists, day, run_id))
        versions[run_id] = {
            d: publish(serving_settings, serving_config, day, run_id, dataset=d).version
            for d in ("recommendations", "buy_again")
        }

    restored = rollback_dataset("buy_again", serving_settings, triggered_by="test", config=serving_config)

    assert restored == versions["run-1"]["buy_again"]
    found = read(serving_settings, serving_config, "u1", "buy_again", None)
    assert (found.version, found.run_id) == (restored, "run-1")
    assert json.loads(found.payload)["items"][0]["sku"] == "again-run-1"
    main = read(serving_settings, serving_config, "u1")
    assert main.version == versions["run-2"]["recommendations"]
    assert json.loads(main.payload)["items"][0]["sku"] == "main-run-2"
    rows = serving_lake.read_arrow("ops.publish_audit").sort_by("published_at").to_pylist()
    assert (rows[-1]["dataset"], rows[-1]["version"], rows[-1]["triggered_by"]) == (
        "buy_again",
        restored,
        "rollback:test",
    )


def test_overlays_on_a_list_dataset_are_validated_as_recommendations(serving_settings, serving_lake, serving_config):
    write_scored(serving_lake, "gold.recommendations", user_lists_table(USER_LISTS, D1))
    version = publish(serving_settings, serving_config, dataset="buy_again").version
    shorter = {"is_fallback": False, "items": [{"sku": "b2", "score": 0.5, "reason": "bought_before:3x:2025-12-20"}]}

    assert overlay_keys("buy_again", {"u1": shorter}, version, serving_settings, serving_config)

    assert json.loads(read(serving_settings, serving_config, "u1", "buy_again").payload) == shorter
    with pytest.raises(ValueError, match="items"):
        overlay_keys("buy_again", {"u1": {"is_fallback": False}}, version, serving_settings, serving_config)
