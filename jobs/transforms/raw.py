"""Parse raw landed lines into typed columns, naming why a line cannot be used.

Bronze keeps every landed line as its original text (``payload``). Parsing
never drops a line: a line that is not a JSON object, lacks a required field,
or has a value of the wrong type gets a ``quarantine_reason`` (the first
problem found) and goes to quarantine with its payload; the rest come out
typed. Semantic rules (allowed values, ranges, known SKUs) are Great
Expectations' job in the validate step, not the parser's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False


EVENT_FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", required=True),
    Field("event_type", "string", required=True),
    Field("user_id", "string"),
    Field("session_id", "string"),
    Field("sku", "string", required=True),
    Field("quantity", "int"),
    Field("unit_price", "decimal(12,2)"),
    Field("currency", "string"),
    Field("event_ts", "timestamp", required=True),
    Field("order_id", "string"),
    Field("channel", "string"),
    Field("user_agent", "string"),
)

PRODUCT_FIELDS: tuple[Field, ...] = (
    Field("sku", "string", required=True),
    Field("title", "string"),
    Field("category", "string"),
    Field("brand", "string"),
    Field("unit_price", "decimal(12,2)", required=True),
    Field("active", "boolean", required=True),
)

INVENTORY_FIELDS: tuple[Field, ...] = (
    Field("sku", "string", required=True),
    Field("on_hand", "int", required=True),
    Field("on_order", "int"),
    Field("lead_time_days", "int"),
    Field("snapshot_ts", "timestamp", required=True),
)

FIELDS_BY_DATASET: dict[str, tuple[Field, ...]] = {
    "events": EVENT_FIELDS,
    "products": PRODUCT_FIELDS,
    "inventory": INVENTORY_FIELDS,
}

# Purchases and returns are money: they must say how many and at what price.
ORDER_EVENT_TYPES = ("purchase", "return")


_CORRUPT = Field("_corrupt_record", "string")


def _first_reason(checks: list[tuple[Column, str]]) -> Column:
    reason = F.lit(None).cast("string")
    for condition, text in reversed(checks):
        reason = F.when(condition, F.lit(text)).otherwise(reason)
    return reason


def _blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def parse_records(bronze: DataFrame, fields: tuple[Field, ...]) -> DataFrame:
    """Typed columns plus ``quarantine_reason`` for each bronze line.

    Returns the bronze metadata columns (landing_date, source_file, payload),
    one column per field (null when blank or unparseable) and the reason.
    """
    as_text = StructType([StructField(field.name, StringType()) for field in [*fields, _CORRUPT]])
    # Parse each line once: every field and check below reads this column, and a column referenced
    # many times is not inlined back (inlined, the JSON would be parsed once per field reference).
    # Lines that are not one JSON object come back whole in the corrupt-record field.
    lines = bronze.select(
        "landing_date",
        "source_file",
        "payload",
        F.from_json("payload", as_text, {"columnNameOfCorruptRecord": _CORRUPT.name}).alias("_json"),
    )
    raw = {field.name: F.nullif(F.trim(F.col("_json")[field.name]), F.lit("")) for field in fields}
    typed = {
        field.name: raw[field.name] if field.type == "string" else raw[field.name].try_cast(field.type)
        for field in fields
    }
    malformed = F.col("_json").isNull() | F.col("_json")[_CORRUPT.name].isNotNull()
    # Spark keeps a line's bytes as they landed: bytes that are not UTF-8 make its text unreliable.
    not_utf8 = ~F.is_valid_utf8("payload")
    checks: list[tuple[Column, str]] = [(not_utf8, "encoding_error"), (malformed, "malformed_json")]
    checks += [(_blank(raw[f.name]), f"missing_field:{f.name}") for f in fields if f.required]
    checks += [
        (raw[f.name].isNotNull() & typed[f.name].isNull(), f"invalid_type:{f.name}")
        for f in fields
        if f.type != "string"
    ]
    return lines.select(
        "landing_date",
        "source_file",
        "payload",
        *[typed[field.name].alias(field.name) for field in fields],
        _first_reason(checks).alias("quarantine_reason"),
    )


def parse_events(bronze: DataFrame, non_product_skus: tuple[str, ...]) -> DataFrame:
    """Typed, normalised events with a quarantine reason for unusable lines.

    Normalises event types to lower case and currency to upper case, and
    marks order lines for postage, discounts and fees (``non_product_skus``)
    so they never pose as products.
    """
    events = parse_records(bronze, EVENT_FIELDS)
    event_type = F.lower(F.col("event_type"))
    is_order = event_type.isin(*ORDER_EVENT_TYPES)
    order_checks = [
        (is_order & F.col("quantity").isNull(), "missing_field:quantity"),
        (is_order & F.col("unit_price").isNull(), "missing_field:unit_price"),
        (F.upper(F.col("sku")).isin(*[sku.upper() for sku in non_product_skus]), "non_product_line"),
    ]
    return events.withColumns(
        {
            "event_type": event_type,
            "currency": F.upper(F.col("currency")),
            "quarantine_reason": F.coalesce(F.col("quarantine_reason"), _first_reason(order_checks)),
        }
    )


def record_key(dataset: str) -> Column:
    """The column that identifies a record of a dataset in quarantine."""
    return F.col("event_id") if dataset == "events" else F.col("sku")
