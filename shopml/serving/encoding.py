"""Serving datasets and their compact encoding: scored Delta rows in, one JSON document per entity out.

The rows of an entity (a user's ranked list, a SKU's forecast days) become
one value, so a read is a single key lookup. Values are compact JSON built
column-wise with Arrow compute (no per-row Python), which keeps a 1M-user
publish within seconds; the API decodes them with the stdlib ``json``.
``bench/bench_serving.py`` measures why JSON rather than msgpack.

Payload shapes (what ``overlay_keys`` must be given, too)::

    recommendations  {"is_fallback": bool, "items": [{"sku", "score", "reason"}, ...]}   (rank order)
    similar          {"items": [{"sku", "score", "reason"}, ...]}                        (rank order)
    forecasts        {"days": [{"date", "horizon_day", "p10", "p50", "p90"}, ...]}       (horizon order)
    inventory        {"on_hand", "on_order", "lead_time_days", "expected_lead_time_demand", "safety_stock",
                      "reorder_point", "recommended_order_qty", "days_of_cover", "stockout_probability", "status"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

DEFAULT_USER = "__default__"
METADATA_COLUMNS = ("model_version", "run_id", "generated_at")


@dataclass(frozen=True)
class DatasetSpec:
    """How one gold table becomes one served value per entity."""

    name: str
    table: str
    entity: str
    shape: Literal["list", "object"]
    fields: tuple[tuple[str, str], ...]
    list_key: str = "items"
    order_by: str | None = None
    flag: str | None = None
    fallback_entity: str | None = None

    @property
    def source_columns(self) -> list[str]:
        columns = [self.entity, *(column for _, column in self.fields)]
        columns += [c for c in (self.order_by, self.flag) if c]
        return list(dict.fromkeys([*columns, *METADATA_COLUMNS]))


_SCORED_ITEM = (("score", "score"), ("reason", "reason"))

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="recommendations",
            table="gold.recommendations",
            entity="user_id",
            shape="list",
            fields=(("sku", "sku"), *_SCORED_ITEM),
            order_by="rank",
            flag="is_fallback",
            fallback_entity=DEFAULT_USER,
        ),
        DatasetSpec(
            name="similar",
            table="gold.similar_items",
            entity="sku",
            shape="list",
            fields=(("sku", "similar_sku"), *_SCORED_ITEM),
            order_by="rank",
        ),
        DatasetSpec(
            name="forecasts",
            table="gold.demand_forecasts",
            entity="sku",
            shape="list",
            list_key="days",
            fields=(
                ("date", "forecast_date"),
                ("horizon_day", "horizon_day"),
                ("p10", "p10"),
                ("p50", "p50"),
                ("p90", "p90"),
            ),
            order_by="horizon_day",
        ),
        DatasetSpec(
            name="inventory",
            table="gold.inventory_plan",
            entity="sku",
            shape="object",
            fields=tuple(
                (column, column)
                for column in (
                    "on_hand",
                    "on_order",
                    "lead_time_days",
                    "expected_lead_time_demand",
                    "safety_stock",
                    "reorder_point",
                    "recommended_order_qty",
                    "days_of_cover",
                    "stockout_probability",
                    "status",
                )
            ),
        ),
    ]
}


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a serving dataset; the error lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown serving dataset {name!r}; known: {', '.join(DATASETS)}") from None


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


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "recommendations": RecommendationsPayload,
    "similar": SimilarPayload,
    "forecasts": ForecastsPayload,
    "inventory": InventoryPayload,
}


def encode_payload(dataset: str, payload: Any) -> bytes:
    """Validate one value against its dataset's shape and encode it as publishing would (used by overlays)."""
    model = PAYLOAD_MODELS[dataset_spec(dataset).name].model_validate(payload)
    return json.dumps(model.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False).encode()


def decode_payload(value: bytes) -> dict[str, Any]:
    return json.loads(value)


# ---- column-wise JSON ------------------------------------------------------------------------------

_CONTROL_CHARS = r"[\x00-\x1f]"


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _json_string(values: pa.Array) -> pa.Array:
    """JSON string literals; control characters (never seen in ids) take the exact but slow path."""
    values = values.cast(pa.large_string())
    if pc.any(pc.match_substring_regex(values, _CONTROL_CHARS)).as_py():
        return pa.array(
            [None if v is None else json.dumps(v, ensure_ascii=False) for v in values.to_pylist()], pa.large_string()
        )
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise(_text('"'), escaped, _text('"'), _text(""))


def _json_number(values: pa.Array, float_digits: int) -> pa.Array:
    if pa.types.is_floating(values.type):
        values = values.cast(pa.float64())
        finite = pc.is_finite(values)
        values = pc.if_else(finite, pc.round(values, float_digits), pa.scalar(None, pa.float64()))
    return values.cast(pa.large_string())


def json_values(values: pa.Array, float_digits: int) -> pa.Array:
    """Render an Arrow column as JSON literals (nulls, NaN and infinities become ``null``)."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.dictionary_decode()
        kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        rendered = _json_string(values)
    elif pa.types.is_boolean(kind):
        rendered = values.cast(pa.large_string())
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        rendered = _json_number(values, float_digits)
    elif pa.types.is_date(kind):
        rendered = _json_string(values.cast(pa.large_string()))
    else:
        raise TypeError(f"cannot serve a column of type {kind}")
    return pc.fill_null(rendered, "null")


def _json_object(columns: list[tuple[str, pa.Array]], float_digits: int) -> pa.Array:
    parts: list[Any] = []
    for i, (name, values) in enumerate(columns):
        parts += [_text(("{" if i == 0 else ",") + json.dumps(name) + ":"), json_values(values, float_digits)]
    return pc.binary_join_element_wise(*parts, _text("}"), _text(""))


def encode_entities(rows: pa.Table, spec: DatasetSpec, float_digits: int = 6) -> pa.Table:
    """Group scored rows by entity into one JSON value each, sorted by entity.

    ``rows`` must hold every row of the entities it contains (the publisher
    splits a partition by key range, never inside an entity). Returns a table
    of ``entity`` (large_string) and ``payload`` (large_binary).
    """
    rows = rows.filter(pc.is_valid(rows[spec.entity]))
    sort_keys = [(spec.entity, "ascending")] + ([(spec.order_by, "ascending")] if spec.order_by else [])
    rows = rows.sort_by(sort_keys).combine_chunks()
    entities = rows[spec.entity].cast(pa.large_string()).combine_chunks()
    if len(entities) == 0:
        return pa.table({"entity": pa.array([], pa.large_string()), "payload": pa.array([], pa.large_binary())})
    run_ends = pc.run_end_encode(entities).run_ends.to_numpy().astype(np.int64)
    starts = np.concatenate([[0], run_ends[:-1]])
    fields = [(name, rows[column].combine_chunks()) for name, column in spec.fields]
    if spec.shape == "object":
        # One row per entity is the contract; should a duplicate slip through, the first (sorted) row wins.
        payloads = _json_object([(name, values.take(starts)) for name, values in fields], float_digits)
    else:
        items = _json_object(fields, float_digits)
        lists = pa.LargeListArray.from_arrays(pa.array(np.concatenate([starts, run_ends[-1:]])), items)
        parts: list[Any] = [_text("{")]
        if spec.flag:
            flags = np.logical_or.reduceat(rows[spec.flag].fill_null(False).to_numpy(zero_copy_only=False), starts)
            parts += [_text(f"{json.dumps(spec.flag)}:"), pa.array(flags).cast(pa.large_string()), _text(",")]
        parts += [_text(f"{json.dumps(spec.list_key)}:["), pc.binary_join(lists, _text(",")), _text("]}")]
        payloads = pc.binary_join_element_wise(*parts, _text(""))
    return pa.table({"entity": entities.take(starts), "payload": payloads.cast(pa.large_binary())})
