"""The forecaster's stages: train, backtest against the baselines and gate, score (light: DAG files import it)."""

from __future__ import annotations

from shopml.catalog import (
    GOLD_DEMAND_FORECASTS,
    GOLD_INVENTORY_PLAN,
    GOLD_SKU_DAILY_DEMAND,
    OPS_MODEL_METRICS,
    SILVER_INVENTORY_SNAPSHOTS,
)
from shopml.stages import Stage

TRAIN = Stage("models.forecast.pipeline:train_forecaster", reads=(GOLD_SKU_DAILY_DEMAND,))
BACKTEST_AND_GATE = Stage(
    "models.forecast.pipeline:backtest_and_gate", reads=(GOLD_SKU_DAILY_DEMAND,), writes=(OPS_MODEL_METRICS,)
)
SCORE = Stage(
    "models.forecast.pipeline:score_forecasts",
    reads=(GOLD_SKU_DAILY_DEMAND, SILVER_INVENTORY_SNAPSHOTS),
    writes=(GOLD_DEMAND_FORECASTS, GOLD_INVENTORY_PLAN),
)
