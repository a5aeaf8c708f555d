"""Recommender: PyTorch retrieval, XGBoost ranking, business filters, baselines, gating and nightly tasks.

The DAG calls the four task functions in ``models.recommend.pipeline``; everything else
is pure and unit-tested on small frames.
"""

from __future__ import annotations
