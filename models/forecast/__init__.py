"""Demand forecasting and inventory planning: a global XGBoost quantile model over every SKU.

Modules: ``config`` (knobs), ``features`` (panel and model frames), ``model`` (the booster),
``baselines``, ``metrics``, ``backtest`` (rolling origin + promotion gate), ``inventory`` (policy
formulas), ``pipeline`` (the nightly DAG task functions) and ``synthetic`` (seeded sample demand).
"""

from __future__ import annotations
