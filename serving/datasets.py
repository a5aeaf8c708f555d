"""The serving datasets, declared once: what each serves, from which gold table, keyed by what, built by whom.

Light on purpose (no pyarrow): the DAG files build their publish tasks and the rollback DAG its choices
from ``DATASETS`` while parsing. ``serving/encoding.py`` turns a dataset's rows into values, the
publisher and the incremental overlays write them, the API reads them; every one of them starts here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shopml.catalog import (
    GOLD_CUSTOMER_SCORES,
    GOLD_DEMAND_FORECASTS,
    GOLD_INVENTORY_PLAN,
    GOLD_RECOMMENDATIONS,
    GOLD_SIMILAR_ITEMS,
    SILVER_INVENTORY_SNAPSHOTS,
    spec,
)

DEFAULT_USER = "__default__"
# Provenance read from the rows (the run id of a version is the publishing run's, not a column).
METADATA_COLUMNS = ("model_version", "generated_at")


@dataclass(frozen=True)
class RowFilter:
    """The rows of a shared table that one dataset serves: those whose ``column`` is ``value``.

    A table written before ``column`` existed (or a partition of it, null after the schema grew) holds
    ``absent_means`` rows only: the dataset serving that value takes them, the others have nothing.
    """

    column: str
    value: str
    absent_means: str

    @property
    def takes_absent(self) -> bool:
        return self.value == self.absent_means


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
    # The optional feed a dataset is built from: a shop without it has nothing to publish (skipped, not failed).
    requires_feed: str | None = None
    # Only these rows of ``table`` (several datasets share one table); None: every row.
    row_filter: RowFilter | None = None
    # The nightly model branch whose scoring writes ``table``: its publish task waits for that branch.
    producer: Literal["recommender", "forecaster", "customer"] = "recommender"

    @property
    def source_columns(self) -> list[str]:
        columns = [self.entity, *(column for _, column in self.fields)]
        columns += [c for c in (self.order_by, self.flag) if c]
        return list(dict.fromkeys([*columns, *METADATA_COLUMNS]))


_SCORED_ITEM = (("score", "score"), ("reason", "reason"))
# The lists gold.recommendations holds per user (its ``list`` column) and the dataset serving each.
USER_LISTS = {"all": "recommendations", "buy_again": "buy_again", "discover": "discover"}
MAIN_LIST = "all"


def _user_list(name: str, value: str, fallback_entity: str | None) -> DatasetSpec:
    """One list of gold.recommendations as its own dataset: ranked items per user."""
    return DatasetSpec(
        name=name,
        table=GOLD_RECOMMENDATIONS,
        entity="user_id",
        shape="list",
        fields=(("sku", "sku"), *_SCORED_ITEM),
        order_by="rank",
        flag="is_fallback",
        fallback_entity=fallback_entity,
        row_filter=RowFilter(column="list", value=value, absent_means=MAIN_LIST),
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        _user_list("recommendations", MAIN_LIST, DEFAULT_USER),
        # Bought before: a user who never bought has no list (an empty one to the API), never the default one.
        _user_list("buy_again", "buy_again", None),
        _user_list("discover", "discover", DEFAULT_USER),
        DatasetSpec(
            name="similar",
            table=GOLD_SIMILAR_ITEMS,
            entity="sku",
            shape="list",
            fields=(("sku", "similar_sku"), *_SCORED_ITEM),
            order_by="rank",
        ),
        DatasetSpec(
            name="forecasts",
            table=GOLD_DEMAND_FORECASTS,
            entity="sku",
            shape="list",
            list_key="days",
            producer="forecaster",
            fields=(
                ("date", "forecast_date"),
                ("horizon_day", "horizon_day"),
                ("mean", "mean"),
                ("p10", "p10"),
                ("p50", "p50"),
                ("p90", "p90"),
            ),
            order_by="horizon_day",
        ),
        DatasetSpec(
            name="inventory",
            table=GOLD_INVENTORY_PLAN,
            entity="sku",
            shape="object",
            # The plan's columns as the catalog declares them, the SKU aside (it is the key).
            fields=tuple((column, column) for column in spec(GOLD_INVENTORY_PLAN).content_columns if column != "sku"),
            requires_feed=SILVER_INVENTORY_SNAPSHOTS,
            producer="forecaster",
        ),
        DatasetSpec(
            name="customers",
            table=GOLD_CUSTOMER_SCORES,
            entity="user_id",
            shape="object",
            fields=tuple(
                (column, column) for column in spec(GOLD_CUSTOMER_SCORES).content_columns if column != "user_id"
            ),
            producer="customer",
        ),
    ]
}


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a serving dataset; the error lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown serving dataset {name!r}; known: {', '.join(DATASETS)}") from None
