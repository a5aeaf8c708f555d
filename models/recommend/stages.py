"""The recommender's stages: train retrieval and ranker, evaluate against the baselines and gate, score.

Light on purpose (catalog handles only): the DAG files import it while parsing.
"""

from __future__ import annotations

from shopml.catalog import (
    GOLD_INVENTORY_PLAN,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_RECOMMENDATIONS,
    GOLD_SIMILAR_ITEMS,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    OPS_MODEL_METRICS,
    SILVER_ORDER_LINES,
)
from shopml.stages import Stage

INPUTS = (
    GOLD_USER_ITEM_INTERACTIONS,
    GOLD_USER_FEATURES,
    GOLD_ITEM_FEATURES,
    GOLD_ITEM_COOCCURRENCE,
    SILVER_ORDER_LINES,
)

TRAIN_RETRIEVAL = Stage("models.recommend.pipeline:train_retrieval", reads=INPUTS)
TRAIN_RANKER = Stage("models.recommend.pipeline:train_ranker", reads=INPUTS)
EVALUATE_AND_GATE = Stage("models.recommend.pipeline:evaluate_and_gate", reads=INPUTS, writes=(OPS_MODEL_METRICS,))
# The inventory plan only down-ranks SKUs about to stock out.
SCORE = Stage(
    "models.recommend.pipeline:score_recommendations",
    reads=(*INPUTS, GOLD_INVENTORY_PLAN),
    writes=(GOLD_RECOMMENDATIONS, GOLD_SIMILAR_ITEMS),
)
