"""The customer-score stages: train, evaluate against the baselines and gate, score (light: DAG files import it)."""

from __future__ import annotations

from shopml.catalog import GOLD_CUSTOMER_SCORES, OPS_MODEL_METRICS, SILVER_ORDER_LINES
from shopml.stages import Stage

TRAIN = Stage("models.customer.pipeline:train_customer_models", reads=(SILVER_ORDER_LINES,))
EVALUATE_AND_GATE = Stage(
    "models.customer.pipeline:evaluate_and_gate", reads=(SILVER_ORDER_LINES,), writes=(OPS_MODEL_METRICS,)
)
SCORE = Stage("models.customer.pipeline:score_customers", reads=(SILVER_ORDER_LINES,), writes=(GOLD_CUSTOMER_SCORES,))
