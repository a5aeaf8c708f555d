"""Pure parts of the serving stage: JSON encoding of scored rows, pass planning, version bookkeeping."""

from __future__ import annotations

import json
import typing
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from pydantic import ValidationError

from serving.api import UserList
from serving.datasets import DATASETS, USER_LISTS
from serving.encoding import encode_entities, encode_payload, json_values, payload_faults, required_columns
from serving.publish import keep_versions, plan_key_ranges, previous_version, row_selection, version_id
from serving.store import VersionInfo, open_store, redact_url
from shopml.config.serving import ServingConfig
from shopml.errors import Skipped


def rows(**columns) -> pa.Table:
    return pa.table(columns)


def test_recommendations_are_grouped_per_user_in_rank_order():
    table = rows(
        user_id=["u2", "u1", "u1", "u2"],
        rank=pa.array([2, 2, 1, 1], pa.int32()),
        sku=["d", "b", "a", "c"],
        score=[0.25, 0.5, 1.0, 0.75],
        reason=["trending"] * 4,
        is_fallback=[False, False, False, True],
    )

    encoded = encode_entities(table, DATASETS["recommendations"]).to_pylist()

    assert encoded == [
        {
            "entity": "u1",
            "payload": b'{"is_fallback":false,"items":[{"sku":"a","score":1,"reason":"trending"},'
            b'{"sku":"b","score":0.5,"reason":"trending"}]}',
        },
        {
            "entity": "u2",
            "payload": b'{"is_fallback":true,"items":[{"sku":"c","score":0.75,"reason":"trending"},'
            b'{"sku":"d","score":0.25,"reason":"trending"}]}',
        },
    ]


def _skus(encoded: pa.Table) -> dict[str, list[str]]:
    return {r["entity"]: [i["sku"] for i in json.loads(r["payload"])["items"]] for r in encoded.to_pylist()}


def test_runs_of_one_user_split_across_files_are_joined_in_rank_order():
    table = rows(
        user_id=["u2", "u2", "u1", "u3", "u2", "u1"],
        rank=pa.array([3, 4, 2, 1, 1, 1], pa.int32()),
        sku=["c", "d", "y", "z", "a", "x"],
        score=[0.1] * 6,
        reason=["r"] * 6,
        is_fallback=[False, False, True, False, False, False],
    )

    encoded = encode_entities(table, DATASETS["recommendations"])

    assert _skus(encoded) == {"u1": ["x", "y"], "u2": ["a", "c", "d"], "u3": ["z"]}
    assert encoded["entity"].to_pylist() == ["u1", "u2", "u3"]
    assert [json.loads(p)["is_fallback"] for p in encoded["payload"].to_pylist()] == [True, False, False]


def test_grouped_rows_out_of_rank_order_are_reordered():
    table = rows(user_id=["u1"] * 3, rank=[3, 1, 2], sku=["c", "a", "b"], score=[0.1] * 3, reason=["r"] * 3)
    table = table.append_column("is_fallback", pa.array([False] * 3))

    assert _skus(encode_entities(table, DATASETS["recommendations"])) == {"u1": ["a", "b", "c"]}


def test_values_are_valid_json_whatever_the_strings_and_numbers():
    table = rows(
        user_id=["u1", "u1", "u1", None],
        rank=[1, 2, 3, 1],
        sku=['quo"te', "back\\slash", "tab\there", "dropped"],
        score=[float("nan"), None, 1 / 3, 1.0],
        reason=["ünïcode", None, "x", "x"],
        is_fallback=[None, False, False, False],
    )

    encoded = encode_entities(table, DATASETS["recommendations"]).to_pylist()

    assert [e["entity"] for e in encoded] == ["u1"]
    assert json.loads(encoded[0]["payload"]) == {
        "is_fallback": False,
        "items": [
            {"sku": 'quo"te', "score": None, "reason": "ünïcode"},
            {"sku": "back\\slash", "score": None, "reason": None},
            {"sku": "tab\there", "score": 0.333333, "reason": "x"},
        ],
    }


def test_json_values_per_type():
    assert json_values(pa.array([1.23456789, float("inf"), None]), 3).to_pylist() == ["1.235", "null", "null"]
    assert json_values(pa.array([True, None]), 6).to_pylist() == ["true", "null"]
    assert json_values(pa.array([date(2026, 1, 2)]), 6).to_pylist() == ['"2026-01-02"']
    assert json_values(pa.array(["a", "b"]).dictionary_encode(), 6).to_pylist() == ['"a"', '"b"']
    reasons = pa.array([["a", 'say "hi"'], None, [], ["z"]], pa.list_(pa.string()))
    assert json_values(reasons.slice(0), 6).to_pylist() == ['["a","say \\"hi\\""]', "null", "[]", '["z"]']
    assert json_values(reasons.slice(2), 6).to_pylist() == ["[]", '["z"]']
    with pytest.raises(TypeError, match="cannot serve a column of type"):
        json_values(pa.array([[1]]), 6)


def test_inventory_is_one_object_per_sku():
    table = rows(
        sku=["s1"],
        on_hand=[3],
        on_order=[0],
        lead_time_days=[7],
        expected_lead_time_demand=[10.5],
        safety_stock=[2.0],
        reorder_point=[12.5],
        recommended_order_qty=[9.5],
        days_of_cover=[1.0],
        stockout_probability=[0.2],
        status=["reorder"],
    )

    payload = encode_entities(table, DATASETS["inventory"]).to_pylist()[0]["payload"]

    assert payload == (
        b'{"on_hand":3,"on_order":0,"lead_time_days":7,"expected_lead_time_demand":10.5,"safety_stock":2,'
        b'"reorder_point":12.5,"recommended_order_qty":9.5,"days_of_cover":1,"stockout_probability":0.2,'
        b'"status":"reorder"}'
    )


def test_an_empty_partition_encodes_to_nothing():
    table = rows(sku=pa.array([], pa.string()), similar_sku=pa.array([], pa.string()), rank=pa.array([], pa.int32()))
    table = table.append_column("score", pa.array([], pa.float64())).append_column("reason", pa.array([], pa.string()))

    assert encode_entities(table, DATASETS["similar"]).num_rows == 0


def test_overlay_payloads_are_validated_and_encoded_like_published_ones():
    assert encode_payload("similar", {"items": [{"sku": "a", "score": 0.5, "reason": None}]}) == (
        b'{"items":[{"sku":"a","score":0.5,"reason":null}]}'
    )
    with pytest.raises(ValidationError):
        encode_payload("forecasts", {"days": [{"date": "2026-01-02"}]})
    with pytest.raises(KeyError, match="unknown serving dataset 'prices'"):
        encode_payload("prices", {})


def test_encoded_values_that_do_not_fit_the_payload_model_are_named():
    good = encode_payload(
        "recommendations", {"is_fallback": False, "items": [{"sku": "a", "score": 1, "reason": None}]}
    )
    encoded = pa.table(
        {
            "entity": ["u1", "u2", "u3", "u4"],
            "payload": [good, b'{"is_fallback":false,"items":[{"sku":null,"score":1,"reason":null}]}', b'{"is_f', good],
        }
    )
    spec = DATASETS["recommendations"]
    assert payload_faults(spec, encoded, sample=10) == [
        "'u2': items.0.sku: Input should be a valid string",
        "'u3': value: Invalid JSON: EOF while parsing a string at line 1 column 6",
    ]
    assert payload_faults(spec, encoded, sample=2) == []  # the first and the last value only
    assert payload_faults(spec, encoded, sample=0) == []


def test_required_columns_are_the_fields_a_value_cannot_serve_without():
    assert required_columns(DATASETS["recommendations"]) == ["sku"]
    assert required_columns(DATASETS["similar"]) == ["similar_sku"]
    assert required_columns(DATASETS["forecasts"]) == ["forecast_date", "horizon_day"]
    assert required_columns(DATASETS["inventory"]) == []


def test_each_list_is_selected_from_the_shared_table_and_rows_without_one_are_the_main_list():
    table = rows(user_id=["u1", "u1", "u1", "u1", "u2"], list=["all", "buy_again", "discover", None, "discover"])
    columns = table.column_names

    picked = {name: table.filter(row_selection(DATASETS[name], columns)).to_pylist() for name in USER_LISTS.values()}

    assert picked == {
        "recommendations": [{"user_id": "u1", "list": "all"}, {"user_id": "u1", "list": None}],
        "buy_again": [{"user_id": "u1", "list": "buy_again"}],
        "discover": [{"user_id": "u1", "list": "discover"}, {"user_id": "u2", "list": "discover"}],
    }
    assert row_selection(DATASETS["similar"], ["sku", "similar_sku"]) is None


def test_a_table_written_before_the_list_column_is_all_main_list():
    older = ["user_id", "rank", "sku", "score", "reason", "is_fallback"]

    assert row_selection(DATASETS["recommendations"], older) is None
    for name in ("buy_again", "discover"):
        with pytest.raises(Skipped, match=f"gold.recommendations has no list column .written before it had {name}"):
            row_selection(DATASETS[name], older)


def test_the_api_offers_exactly_the_lists_that_are_published():
    assert typing.get_args(UserList) == tuple(USER_LISTS)
    assert all(DATASETS[name].table == "gold.recommendations" for name in USER_LISTS.values())
    assert DATASETS["buy_again"].fallback_entity is None
    assert DATASETS["discover"].fallback_entity == DATASETS["recommendations"].fallback_entity == "__default__"


def test_key_ranges_split_at_sample_quantiles_without_gaps():
    assert plan_key_ranges(list("jihgfedcba"), 3) == [(None, "d"), ("d", "g"), ("g", None)]
    assert plan_key_ranges(["a"] * 10, 4) == [(None, "a"), ("a", None)]
    assert plan_key_ranges([], 3) == [(None, None)]
    assert plan_key_ranges(list("abcd"), 1) == [(None, None)]


def test_version_id_is_deterministic_per_run():
    assert version_id(date(2026, 1, 2), "scheduled__2026-01-02") == version_id(
        date(2026, 1, 2), "scheduled__2026-01-02"
    )
    assert version_id(date(2026, 1, 2), "a").startswith("20260102-")
    assert version_id(date(2026, 1, 2), "a") != version_id(date(2026, 1, 2), "b")


def _v(name: str, day: int | None, status="complete") -> VersionInfo:
    published = datetime(2026, 1, day, tzinfo=UTC) if day else None
    return VersionInfo("recommendations", name, status, published_at=published)


def test_gc_keeps_the_newest_complete_versions_and_the_current_one():
    versions = [_v("a", 1), _v("b", 2), _v("c", 3), _v("d", 4), _v("w", None, "writing"), _v("x", None, "expired")]

    assert [v.version for v in keep_versions(versions, "d", 2)] == ["a", "b", "x"]
    assert [v.version for v in keep_versions(versions, "a", 2)] == ["b", "x"]


def test_rollback_target_is_the_newest_version_published_before_the_current_one():
    versions = [_v("a", 1), _v("b", 2), _v("c", 3), _v("w", None, "writing")]

    assert previous_version(versions, "c").version == "b"
    assert previous_version(versions, "b").version == "a"
    assert previous_version(versions, "a") is None
    assert previous_version(versions, "gone") is None


def test_version_info_round_trips_through_string_fields():
    info = VersionInfo(
        "forecasts",
        "20260102-ab",
        "complete",
        run_id="r",
        key_count=7,
        generated_at=datetime(2026, 1, 2, 3, tzinfo=UTC),
    )

    assert VersionInfo.from_fields(info.to_fields()) == info


def test_urls_are_redacted_and_unknown_schemes_refused():
    assert redact_url("rediss://app:s3cret@cache.internal:6380/2") == "rediss://app:***@cache.internal:6380/2"
    assert redact_url("sqlite:///var/serving.db") == "sqlite:///var/serving.db"
    with pytest.raises(ValueError, match="unsupported serving store URL 'postgres://u:\\*\\*\\*@db/x'"):
        open_store("postgres://u:pw@db/x")


def test_config_rejects_unknown_keys_and_too_few_versions():
    with pytest.raises(ValidationError):
        ServingConfig(versions_to_keep=1)
    with pytest.raises(ValidationError):
        ServingConfig(batchsize=10)


def test_the_inventory_payload_is_the_catalogued_plan():
    """The API's inventory schema, the served fields and the gold table's columns are one list."""
    from serving.encoding import InventoryPayload
    from shopml.catalog import GOLD_INVENTORY_PLAN, spec

    plan = [column for column in spec(GOLD_INVENTORY_PLAN).content_columns if column != "sku"]
    assert list(InventoryPayload.model_fields) == plan == [field for field, _ in DATASETS["inventory"].fields]
