"""Business rules on recommendation lists: what may not be shown, and what should be shown less.

Hard rules (suppressed repeats, see ``repeat.py``; inactive; out of stock) become masks that the top-N
selection applies before cutting, so a filtered list is still full. The soft rule
(likely stockout within lead time) lowers a SKU's score by a share of the user's
own score range, which keeps its effect comparable whatever scale the ranker's
scores have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopml.config.recommend import FilterConfig


def code_pairs(pairs: pd.DataFrame, user_index: pd.Index, item_index: pd.Index) -> pd.DataFrame:
    """(user, item) integer codes of known (user_id, sku) pairs, sorted by user, as the top-N masks take them."""
    coded = pd.DataFrame(
        {"user": user_index.get_indexer(pairs["user_id"]), "item": item_index.get_indexer(pairs["sku"])}
    )
    coded = coded[(coded["user"] >= 0) & (coded["item"] >= 0)]
    return coded.sort_values(["user", "item"], ignore_index=True)


def available_items(items: pd.DataFrame, config: FilterConfig) -> np.ndarray:
    """Mask of SKUs that may be recommended: active, and not out of stock when stock is known."""
    active = items["active"].fillna(True).astype(bool).to_numpy()
    if not config.drop_out_of_stock:
        return active
    return active & (items["stock_status"].fillna("unknown").to_numpy() != "out_of_stock")


def stockout_risk(items: pd.DataFrame, plan: pd.DataFrame | None, config: FilterConfig) -> np.ndarray:
    """Per-SKU risk in [0, 1] of not being deliverable, from the inventory plan when there is one.

    With a plan: its stockout_probability where it reaches ``stockout_risk_threshold``.
    Without one (before the forecaster runs): ``low_stock_risk`` for SKUs with low stock.
    """
    if plan is None or plan.empty:
        return np.where(items["stock_status"].to_numpy() == "low", config.low_stock_risk, 0.0)
    probability = items["sku"].map(plan.drop_duplicates("sku").set_index("sku")["stockout_probability"])
    probability = probability.fillna(0.0).to_numpy(dtype=float)
    return np.where(probability >= config.stockout_risk_threshold, probability, 0.0)


def downrank_stockout_risk(scores: np.ndarray, rows: np.ndarray, risk: np.ndarray, strength: float) -> np.ndarray:
    """Scores normalised to [0, 1] per row (user), minus ``strength`` × risk.

    ``rows`` groups the candidates; ``risk`` is each candidate's SKU risk.
    """
    frame = pd.DataFrame({"row": rows, "score": scores})
    low = frame.groupby("row")["score"].transform("min").to_numpy()
    high = frame.groupby("row")["score"].transform("max").to_numpy()
    spread = np.where(high > low, high - low, 1.0)
    return (scores - low) / spread - strength * risk
