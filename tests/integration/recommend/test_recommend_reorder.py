"""The nightly tasks on a shop whose customers re-order staples on cycles: the ranker must learn when one is due.

A third of the synthetic shop's customers keep a few staple SKUs from the consumable
categories and buy each again every 7-28 days (the SKU's cycle times the customer's pace),
browsing and buying like everyone else in between. Ordering a customer's past SKUs by how
often (P-TopFreq, GP-TopFreq, TIFU-KNN) or how long ago (stale first) they were bought is
blind to cycles; the ranker, which sees days since the last purchase next to the pair's and
the SKU's cycle, has to beat both, and its served buy-again lists must put the staple that
is due above the one just bought.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from models.recommend import pipeline
from models.recommend.baselines import recommend_p_topfreq
from models.recommend.data import purchases_between, split_dates
from models.recommend.filters import available_items, code_pairs, stockout_risk
from models.recommend.metrics import segment_metrics
from models.recommend.ranker import ServingContext
from models.recommend.repeat import suppressed_repeats
from models.recommend.synthetic import build_order_lines, simulate_shop, write_synthetic_lake
from models.registry import ModelRegistry
from shopml.config.recommend import AlsConfig, RankerConfig, RecommendConfig, RetrievalConfig
from shopml.lake import Lake
from shopml.settings import load_settings

CONFIG = RecommendConfig(
    retrieval=RetrievalConfig(embedding_dim=16, epochs=8, batch_size=512),
    ranker=RankerConfig(n_estimators=50),
    als=AlsConfig(enabled=False),
    cpu_threads=1,
)
CYCLE_BLIND = ("p_topfreq", "gp_topfreq", "tifu_knn")
# Measured on this shop (600 users, 30 % re-ordering, 84 days, seed 1), repeat:ndcg@10: model 0.83 (its
# buy_again list the same), P-TopFreq 0.72, GP-TopFreq 0.72, TIFU-KNN 0.71, stale first 0.51. Seeds 2
# and 3 gave the model +0.10 and +0.15 over the best of the three. 11 s on the shared two-core machine.
MIN_REPEAT_LIFT = 0.06
# Served buy_again lists, a staple due (>= 80 % of its cycle passed) against one bought on the run date
# or the day before: the model ranks the due one higher in 28 of 29 pairs (seeds 2, 3: 0.95, 1.00),
# P-TopFreq in 0.24 (0.14, 0.19).
MIN_DUE_FIRST = 0.85
MAX_DUE_FIRST_CYCLE_BLIND = 0.4


@pytest.fixture(scope="module")
def reorder_run(tmp_path_factory):
    settings = load_settings(var_root=tmp_path_factory.mktemp("reorder") / "var", spark_master="local[2]")
    lake = Lake(settings)
    shop = simulate_shop(600, 200, n_days=84, seed=1, reorder_share=0.3)
    run_date = shop.run_date
    write_synthetic_lake(lake, shop, [run_date - timedelta(days=14), run_date - timedelta(days=7), run_date])
    results = {task.__name__: task(run_date, "run-reorder", settings, CONFIG) for task in pipeline.NIGHTLY_TASKS}
    return settings, lake, shop, results


def _stale_first_repeat_ndcg(lake: Lake, shop) -> float:
    """repeat:ndcg@10 of each customer's past SKUs ordered least recently bought first, as evaluation measures it."""
    dates = split_dates(shop.run_date, CONFIG.eval_days)
    features = pipeline.load_feature_set(lake, dates.evaluate, CONFIG)
    start, end = dates.windows()["evaluate"]
    truth = purchases_between(pipeline.load_purchases(lake, start, end), start, end)
    users, items = features.user_codes(truth["user_id"]), features.item_index.get_indexer(truth["sku"])
    truth = truth[(users >= 0) & (features.lookup_repeats(users, items) >= 0)]
    blocked = suppressed_repeats(features.history, features.items, CONFIG.filters)
    past = features.repeats[available_items(features.items, CONFIG.filters)[features.repeats["item"].to_numpy()]]
    past = past[past["user_id"].isin(truth["user_id"])].merge(blocked, how="left", indicator=True)
    past = past[past["_merge"] == "left_only"].sort_values(["user_id", "last_day", "sku"], kind="stable")
    past = past.assign(rank=past.groupby("user_id").cumcount() + 1)
    return segment_metrics(past, truth, (10,), "repeat")["repeat:ndcg@10"]


def test_ranker_beats_cycle_blind_orderings_on_repeat_purchases(reorder_run):
    settings, lake, shop, results = reorder_run
    evaluation = results["evaluate_and_gate"]
    assert evaluation["promoted"] and evaluation["serve"] == "model", evaluation["reason"]
    metrics = ModelRegistry(settings.models).require_current(pipeline.MODEL_NAME).metadata["metrics"]
    assert all(np.isfinite(value) for candidate in metrics.values() for value in candidate.values())
    model = metrics["model"]
    best_blind = max(metrics[name]["repeat:ndcg@10"] for name in CYCLE_BLIND)
    assert model["repeat:ndcg@10"] >= best_blind + MIN_REPEAT_LIFT
    assert model["buy_again:ndcg@10"] >= best_blind + MIN_REPEAT_LIFT
    assert model["repeat:ndcg@10"] >= _stale_first_repeat_ndcg(lake, shop) + MIN_REPEAT_LIFT
    # The same lists still find new SKUs: explore:ndcg@10 0.47 against 0.33 (category popularity).
    assert model["explore:ndcg@10"] > max(m["explore:ndcg@10"] for name, m in metrics.items() if name != "model")


def _due_first_share(lists: pd.DataFrame, staples: pd.DataFrame) -> tuple[float, int]:
    """Share of (due, just bought) staple pairs of one customer where the due one ranks higher; and the pair count.

    A staple missing from a list ranks below every listed one: not offering what was just bought is right.
    """
    ranked = staples.merge(lists[["user_id", "sku", "rank"]], on=["user_id", "sku"], how="left")
    ranked["rank"] = ranked["rank"].fillna(np.inf)
    due = ranked[ranked["since"] >= 0.8 * ranked["cycle_days"]]
    just = ranked[ranked["since"] <= 1]
    pairs = due.merge(just, on="user_id", suffixes=("_due", "_just"))
    return float((pairs["rank_due"] < pairs["rank_just"]).mean()), len(pairs)


def test_served_buy_again_puts_the_due_staple_above_the_one_just_bought(reorder_run):
    _, lake, shop, results = reorder_run
    run_date = shop.run_date
    assert results["score_recommendations"]["served"] == "model"
    recs = lake.read_pandas("gold.recommendations")
    buy_again = recs[(recs["scored_date"] == run_date) & (recs["list"] == "buy_again")]
    features = pipeline.load_feature_set(lake, run_date, CONFIG)
    lines = build_order_lines(shop.events, shop.catalogue)
    last = lines.groupby(["user_id", "sku"], as_index=False)["event_date"].max()
    staples = shop.staples.merge(last, on=["user_id", "sku"])
    staples["since"] = staples["event_date"].map(lambda day: (run_date - day).days)
    # Unavailable staples are filtered for stock, not timing: they say nothing about cycles.
    available = features.item_index[available_items(features.items, CONFIG.filters)]
    staples = staples[staples["sku"].isin(available)]

    model_share, pairs = _due_first_share(buy_again, staples)
    context = ServingContext(
        blocked=code_pairs(
            suppressed_repeats(features.history, features.items, CONFIG.filters),
            features.user_index,
            features.item_index,
        ),
        available=available_items(features.items, CONFIG.filters),
        risk=stockout_risk(features.items, None, CONFIG.filters),
    )
    blind = recommend_p_topfreq(staples["user_id"].unique(), features, context, CONFIG.top_k)
    blind_share, _ = _due_first_share(blind, staples)
    assert pairs >= 20
    assert model_share >= MIN_DUE_FIRST
    assert blind_share <= MAX_DUE_FIRST_CYCLE_BLIND
