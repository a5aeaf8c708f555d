"""Fixtures for the feature-family tests: Spark frames of the rows in feature_rows.py."""

from __future__ import annotations

import pytest

from tests.shop import tiny_data_conf
from tests.unit.features.feature_rows import (
    BASE_EVENTS,
    EVENTS_SCHEMA,
    INVENTORY_ROWS,
    INVENTORY_SCHEMA,
    PRODUCTS_SCHEMA,
    product_rows,
)


@pytest.fixture(scope="session")
def frames(spark):
    """events, order_lines, products and inventory DataFrames built from the rows above."""
    from jobs.transforms.cleaning import to_order_lines

    def build(event_rows=BASE_EVENTS, products=None):
        events = spark.createDataFrame(event_rows, EVENTS_SCHEMA)
        return {
            "events": events,
            "order_lines": to_order_lines(events),
            "products": spark.createDataFrame(product_rows() if products is None else products, PRODUCTS_SCHEMA),
            "inventory": spark.createDataFrame(INVENTORY_ROWS, INVENTORY_SCHEMA),
        }

    return build


@pytest.fixture(scope="package", autouse=True)
def tiny_data_spark(spark):
    """On frames of a few rows, adaptive execution and code generation cost 3-5x the work itself."""
    with tiny_data_conf(spark):
        yield
