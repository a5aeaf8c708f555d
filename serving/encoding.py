"""Serving datasets and their compact encoding: scored Delta rows in, one JSON document per entity out.

The rows of an entity (a user's ranked list, a SKU's forecast days) become
one value, so a read is a single key lookup. Values are compact JSON built
column-wise with Arrow compute (no per-row Python), which keeps a 1M-user
publish within seconds; the API decodes them with the stdlib ``json``.
``bench/bench_serving.py`` measures why JSON rather than msgpack.

Payload shapes (what ``overlay_keys`` must be given, too)::

    recommendations  {"is_fallback": bool, "items": [{"sku", "score", "reason"}, ...]}   (rank order)
    buy_again        the same, from the buy_again rows of gold.recommendations
    discover         the same, from the discover rows of gold.recommendations
    similar          {"items": [{"sku", "score", "reason"}, ...]}                        (rank order)
    forecasts        {"days": [{"date", "horizon_day", "mean", "p10", "p50", "p90"}, ...]}  (horizon order)
    inventory        {"on_hand", "on_order", "lead_time_days", "expected_lead_time_demand", "safety_stock",
                      "reorder_point", "recommended_order_qty", "days_of_cover", "stockout_probability", "status"}
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, ValidationError

from serving.datasets import DatasetSpec, dataset_spec

# ---- payload models (validation of overlays, typing of API responses) ----------------------------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoredItem(_Payload):
    sku: str
    score: float | None
    reason: str | None


class RecommendationsPayload(_Payload):
    is_fallback: bool
    items: list[ScoredItem]


class SimilarPayload(_Payload):
    items: list[ScoredItem]


class ForecastDay(_Payload):
    date: date
    horizon_day: int
    mean: float | None
    p10: float | None
    p50: float | None
    p90: float | None


class ForecastsPayload(_Payload):
    days: list[ForecastDay]


class InventoryPayload(_Payload):
    on_hand: int | None
    on_order: int | None
    lead_time_days: int | None
    expected_lead_time_demand: float | None
    safety_stock: float | None
    reorder_point: float | None
    recommended_order_qty: float | None
    days_of_cover: float | None
    stockout_probability: float | None
    status: str | None


class CustomerPayload(_Payload):
    p_purchase_30d: float | None
    p_churn_90d: float | None
    expected_revenue_90d: float | None
    rfm_segment: str | None
    top_reasons: list[str] | None
    scored_by: str | None


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "recommendations": RecommendationsPayload,
    "buy_again": RecommendationsPayload,
    "discover": RecommendationsPayload,
    "similar": SimilarPayload,
    "forecasts": ForecastsPayload,
    "inventory": InventoryPayload,
    "customers": CustomerPayload,
}


def encode_payload(dataset: str, payload: Any) -> bytes:
    """Validate one value against its dataset's shape and encode it as publishing would (used by overlays)."""
    model = PAYLOAD_MODELS[dataset_spec(dataset).name].model_validate(payload)
    return json.dumps(model.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False).encode()


def decode_payload(value: bytes) -> dict[str, Any]:
    return json.loads(value)


def _value_model(spec: DatasetSpec) -> type[_Payload]:
    """The model of one entity's value (object shape) or of one item of its list."""
    model = PAYLOAD_MODELS[spec.name]
    return model if spec.shape == "object" else get_args(model.model_fields[spec.list_key].annotation)[0]


def required_columns(spec: DatasetSpec) -> list[str]:
    """Source columns whose nulls would make a value its payload model refuses (``sku``, a forecast's date)."""
    fields = _value_model(spec).model_fields
    return [column for name, column in spec.fields if type(None) not in get_args(fields[name].annotation)]


def payload_faults(spec: DatasetSpec, encoded: pa.Table, sample: int, limit: int = 3) -> list[str]:
    """Why encoded values would not serve, for up to ``limit`` of ``sample`` values spread evenly over
    ``encoded`` (entity, payload); empty when every checked value fits the dataset's payload model.

    A sample suffices for the encoder's structure (every value is built by the same column-wise code);
    data faults that touch single rows are caught over every row by ``required_columns``.
    """
    model = PAYLOAD_MODELS[spec.name]
    rows = encoded.num_rows
    picked = np.unique(np.linspace(0, rows - 1, min(sample, rows)).astype(np.int64)) if rows and sample else []
    faults = []
    for i in picked:
        try:
            model.model_validate_json(encoded["payload"][int(i)].as_py())
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"])) or "value"
            faults.append(f"{encoded['entity'][int(i)].as_py()!r}: {where}: {first['msg']}")
            if len(faults) == limit:
                break
    return faults


# ---- column-wise JSON ------------------------------------------------------------------------------


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _escaped(values: pa.Array) -> pa.Array:
    """String contents escaped for JSON, without the quotes.

    The raw UTF-8 bytes are scanned first: ids, SKUs and reasons almost never need escaping, and
    a byte scan is far cheaper than replacing. Bytes of sliced-off neighbours can only cause a
    needless (still correct) escape.
    """
    values = values.cast(pa.large_string())
    data = values.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    if (raw < 0x20).any():
        # Control characters: exact but slow, and never expected in served data.
        return pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False)[1:-1] for v in values.to_pylist()],
            pa.large_string(),
        )
    if ((raw == ord('"')) | (raw == ord("\\"))).any():
        return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return values


def _json_parts(values: pa.Array | pa.ChunkedArray, float_digits: int) -> list[str | pa.Array]:
    """A column as literal text and arrays that, joined element-wise, are its JSON values.

    Quotes of null-free string columns stay literal so they merge into the surrounding text
    (one join less per column); nulls, NaN and infinities become ``null``.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_date(kind)
    ):
        text = _escaped(values)
        if text.null_count == 0:
            return ['"', text, '"']
        return [pc.fill_null(pc.binary_join_element_wise(_text('"'), text, _text('"'), _text("")), "null")]
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
        # A list of strings (reasons): each element quoted, joined within its row, null rows ``null``.
        inner = values.values.cast(pa.large_string())
        quoted = _concat(['"', pc.fill_null(_escaped(inner), ""), '"'])
        offsets = pc.subtract(values.offsets, values.offsets[0]).cast(pa.int64())
        start = values.offsets[0].as_py()
        rows = pa.LargeListArray.from_arrays(offsets, quoted.slice(start, len(inner) - start), mask=values.is_null())
        return [pc.fill_null(_concat(["[", pc.binary_join(rows, _text(",")), "]"]), "null")]
    if pa.types.is_boolean(kind):
        return [pc.fill_null(values.cast(pa.large_string()), "null")]
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if pa.types.is_floating(kind):
            values = values.cast(pa.float64())
            values = pc.if_else(pc.is_finite(values), pc.round(values, float_digits), pa.scalar(None, pa.float64()))
        return [pc.fill_null(values.cast(pa.large_string()), "null")]
    raise TypeError(f"cannot serve a column of type {kind}")


def _concat(parts: list[str | pa.Array]) -> pa.Array:
    """Join literal text and arrays element-wise, neighbouring literals merged first."""
    merged: list[str | pa.Array] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return pc.binary_join_element_wise(*(_text(p) if isinstance(p, str) else p for p in merged), _text(""))


def json_values(values: pa.Array | pa.ChunkedArray, float_digits: int) -> pa.Array:
    """Render an Arrow column as JSON literals."""
    return _concat(_json_parts(values, float_digits))


def _json_object(columns: list[tuple[str, pa.Array]], float_digits: int) -> pa.Array:
    parts: list[str | pa.Array] = []
    for i, (name, values) in enumerate(columns):
        parts += [("{" if i == 0 else ",") + json.dumps(name) + ":", *_json_parts(values, float_digits)]
    return _concat([*parts, "}"])


def _run_starts(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the runs of equal neighbouring values."""
    ends = pc.run_end_encode(values).run_ends.to_numpy().astype(np.int64)
    return np.concatenate([[0], ends[:-1]]), ends


def _in_order_within_runs(rows: pa.Table, spec: DatasetSpec) -> bool:
    if not spec.order_by or rows.num_rows < 2:
        return True
    entity, order = rows[spec.entity], rows[spec.order_by]
    same = pc.equal(entity[1:], entity[:-1])
    return not pc.any(pc.and_(same, pc.less_equal(order[1:], order[:-1]))).as_py()


def encode_entities(rows: pa.Table, spec: DatasetSpec, float_digits: int = 6) -> pa.Table:
    """Group scored rows by entity into one JSON value each, sorted by entity.

    ``rows`` must hold every row of the entities it contains (the publisher splits a partition by
    key range, never inside an entity). Scorers write an entity's rows together, so the rows are
    not reordered: each run of neighbouring rows of one entity becomes a JSON fragment, and only
    the fragments (about one per entity, a twentieth of the rows) are sorted and, where an entity
    was split across files, joined. Returns ``entity`` (large_string) and ``payload`` (large_binary).
    """
    columns = [spec.entity, *(c for _, c in spec.fields), *(c for c in (spec.order_by, spec.flag) if c)]
    rows = rows.select(list(dict.fromkeys(columns)))
    rows = rows.filter(pc.is_valid(rows[spec.entity]))
    if rows.num_rows == 0:
        return pa.table({"entity": pa.array([], pa.large_string()), "payload": pa.array([], pa.large_binary())})
    if not _in_order_within_runs(rows, spec):
        rows = rows.take(pc.sort_indices(rows, sort_keys=[(spec.entity, "ascending"), (spec.order_by, "ascending")]))
    entity = rows[spec.entity].combine_chunks().cast(pa.large_string())
    starts, ends = _run_starts(entity)
    runs = {"entity": entity.take(starts)}
    if spec.order_by:
        runs["first"] = rows[spec.order_by].take(starts)
    if spec.flag:
        runs["flag"] = np.logical_or.reduceat(rows[spec.flag].fill_null(False).to_numpy(), starts)
    if spec.shape == "object":
        runs["fragment"] = _json_object(
            [(name, rows[column].take(starts)) for name, column in spec.fields], float_digits
        )
    else:
        items = _json_object([(name, rows[column]) for name, column in spec.fields], float_digits)
        lists = pa.LargeListArray.from_arrays(pa.array(np.append(starts, ends[-1])), _combined(items))
        runs["fragment"] = pc.binary_join(lists, _text(","))
    return _merge_runs(pa.table(runs), spec)


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (no copy when there is a single chunk)."""
    if not isinstance(values, pa.ChunkedArray):
        return values
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def _merge_runs(runs: pa.Table, spec: DatasetSpec) -> pa.Table:
    """Sort the runs by entity and join the runs of one entity (in ``order_by`` order) into its value."""
    entity = runs["entity"]
    if runs.num_rows > 1 and not pc.all(pc.greater(entity[1:], entity[:-1])).as_py():
        keys = [("entity", "ascending")] + ([("first", "ascending")] if spec.order_by else [])
        runs = runs.take(pc.sort_indices(runs, sort_keys=keys))
    entity = runs["entity"].combine_chunks()
    starts, ends = _run_starts(entity)
    fragments = _combined(runs["fragment"])
    flags = runs["flag"].to_numpy() if spec.flag else None
    if len(starts) < runs.num_rows:
        if spec.shape == "object":
            # One row per entity is the contract; should a duplicate slip through, the first one wins.
            fragments = fragments.take(starts)
        else:
            lists = pa.LargeListArray.from_arrays(pa.array(np.append(starts, ends[-1])), fragments)
            fragments = pc.binary_join(lists, _text(","))
        flags = np.logical_or.reduceat(flags, starts) if flags is not None else None
        entity = entity.take(starts)
    if spec.shape == "object":
        payloads = fragments
    else:
        parts: list[str | pa.Array] = ["{"]
        if flags is not None:
            parts += [f"{json.dumps(spec.flag)}:", pa.array(flags).cast(pa.large_string()), ","]
        parts += [f"{json.dumps(spec.list_key)}:[", fragments, "]}"]
        payloads = _concat(parts)
    return pa.table({"entity": entity, "payload": _combined(payloads).cast(pa.large_binary())})
