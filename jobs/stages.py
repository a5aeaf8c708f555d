"""The stages of jobs/: the Spark jobs of the nightly run, the report, the incremental refresh, erasure.

Light on purpose (catalog handles only): the DAG files import it while parsing.
"""

from __future__ import annotations

from shopml.catalog import (
    BRONZE_EVENTS,
    BRONZE_INVENTORY,
    BRONZE_PRODUCTS,
    GOLD_CUSTOMER_SCORES,
    GOLD_DEMAND_FORECASTS,
    GOLD_FEATURE_CORRECTIONS,
    GOLD_INVENTORY_PLAN,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_RECOMMENDATIONS,
    GOLD_SIMILAR_ITEMS,
    GOLD_SKU_DAILY_DEMAND,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    OPS_MODEL_METRICS,
    OPS_PUBLISH_AUDIT,
    OPS_QUARANTINE,
    OPS_ROW_ACCOUNTING,
    OPS_STREAM_FILES,
    OPS_STREAM_WATERMARK,
    OPS_VALIDATION_RESULTS,
    SILVER_EVENTS,
    SILVER_INVENTORY_SNAPSHOTS,
    SILVER_ORDER_LINES,
    SILVER_PRODUCTS,
    STAGING_EVENTS,
    STAGING_INVENTORY,
    STAGING_PRODUCTS,
    TABLES,
)
from shopml.stages import Stage

BRONZE = (BRONZE_EVENTS, BRONZE_PRODUCTS, BRONZE_INVENTORY)
STAGING = (STAGING_EVENTS, STAGING_PRODUCTS, STAGING_INVENTORY)
SILVER = (SILVER_EVENTS, SILVER_ORDER_LINES, SILVER_PRODUCTS, SILVER_INVENTORY_SNAPSHOTS)
# Each stage of the nightly data path adds its counts to the row accounting and its rejects to the quarantine.
ACCOUNTED = (OPS_QUARANTINE, OPS_ROW_ACCOUNTING)
FEATURE_TABLES = (
    GOLD_USER_ITEM_INTERACTIONS,
    GOLD_USER_FEATURES,
    GOLD_ITEM_FEATURES,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_SKU_DAILY_DEMAND,
)

INGEST = Stage("ingest.py", writes=(*BRONZE, *ACCOUNTED))
CLEAN = Stage("clean.py", reads=BRONZE, writes=(*STAGING, *ACCOUNTED))
VALIDATE = Stage("validate.py", reads=STAGING, writes=(*SILVER, *ACCOUNTED, OPS_VALIDATION_RESULTS))
# Besides the features, the dates late events made it re-derive.
BUILD_FEATURES = Stage("features.py", reads=SILVER, writes=(*FEATURE_TABLES, GOLD_FEATURE_CORRECTIONS))

REPORT = Stage(
    "jobs.report:build_report",
    reads=(
        *FEATURE_TABLES,
        SILVER_ORDER_LINES,
        GOLD_RECOMMENDATIONS,
        GOLD_SIMILAR_ITEMS,
        GOLD_DEMAND_FORECASTS,
        GOLD_INVENTORY_PLAN,
        GOLD_CUSTOMER_SCORES,
        OPS_QUARANTINE,
        OPS_ROW_ACCOUNTING,
        OPS_VALIDATION_RESULTS,
        OPS_MODEL_METRICS,
        OPS_PUBLISH_AUDIT,
    ),
)

INCREMENTAL_REFRESH = Stage(
    "jobs.incremental.refresh:run",
    reads=(
        SILVER_PRODUCTS,
        SILVER_INVENTORY_SNAPSHOTS,
        *FEATURE_TABLES[:4],
        GOLD_RECOMMENDATIONS,
        GOLD_DEMAND_FORECASTS,
        GOLD_INVENTORY_PLAN,
    ),
    writes=(SILVER_EVENTS, SILVER_ORDER_LINES, *ACCOUNTED, OPS_STREAM_FILES, OPS_STREAM_WATERMARK),
)

# Erasure deletes the customer's rows wherever they are: every table of the lake.
ERASE_CUSTOMER = Stage("jobs.privacy:erase_customer", writes=tuple(TABLES))
