"""The re-plan step: stock now (latest snapshot - purchases since) and the plan of the SKUs just bought,
with the served forecasts and the forecaster's own formulas."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jobs.incremental.overlay import Overlay
from jobs.transforms import realtime
from models.forecast import pipeline as forecaster
from models.forecast.inventory import plan_inventory
from models.registry import ModelRegistry
from serving.datasets import dataset_spec
from serving.store import VersionInfo
from shopml.catalog import SILVER_ORDER_LINES
from shopml.config.forecast import ForecastConfig
from shopml.lake import Lake


def stock_now(lake: Lake, day: date, exclude: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """On-hand estimates now and before the batch (its purchases left out); None without an inventory feed."""
    snapshots = forecaster.read_inventory(lake, day)
    if snapshots is None:
        return None
    first = pd.to_datetime(snapshots["snapshot_ts"], utc=True).min().date()
    where = (pc.field("event_date") >= pa.scalar(first, pa.date32())) & (pc.field("line_type") == "purchase")
    purchases = lake.read_pandas(SILVER_ORDER_LINES, columns=["event_id", "sku", "quantity", "event_ts"], filter=where)
    before = purchases[~purchases["event_id"].isin(exclude)]
    return realtime.estimate_on_hand(snapshots, purchases), realtime.estimate_on_hand(snapshots, before)


def inventory_overlay(
    lake: Lake, info: VersionInfo, stock: pd.DataFrame, skus: set[str]
) -> tuple[Overlay, pd.DataFrame]:
    """Re-plan ``skus`` with the served forecasts, the forecaster's own formulas and the stock estimate."""
    model = ModelRegistry(lake.settings.models).require_current(forecaster.MODEL_NAME)
    config = ForecastConfig.model_validate(model.metadata["config"])
    where = (pc.field("scored_date") == pa.scalar(date.fromisoformat(info.scored_date), pa.date32())) & pc.field(
        "sku"
    ).isin(sorted(skus))
    # Every column: plan_inventory picks the values it plans on (the partition holds few rows per SKU).
    forecasts = lake.read_pandas(forecaster.FORECAST_TABLE, filter=where)
    plan = plan_inventory(forecasts, stock[stock["sku"].isin(skus)], config)
    fields = [name for name, _ in dataset_spec("inventory").fields]
    digits = lake.settings.serving_store.float_digits
    return Overlay("inventory", info.version, realtime.inventory_payloads(plan, fields, digits)), plan
