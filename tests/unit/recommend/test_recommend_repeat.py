"""Repeat purchases: the history summary, the repeat rule, the repeat-aware baselines, the three lists and reasons."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import torch

from models.recommend.baselines import (
    recommend_gp_topfreq,
    recommend_p_topfreq,
    recommend_tifu_knn,
    served_baseline_lists,
    without_history,
)
from models.recommend.data import (
    FEATURES,
    FeatureSet,
    build_candidates,
    build_feature_set,
    candidate_matrix,
    recent_seeds,
)
from models.recommend.filters import available_items, code_pairs
from models.recommend.gate import decide_promotion
from models.recommend.pipeline import choose_served
from models.recommend.ranker import ServingContext, split_lists
from models.recommend.repeat import summarise_purchases, suppressed_repeats
from models.recommend.tifu import tifu_user_vectors
from models.registry import ModelRegistry
from shopml.config.recommend import FilterConfig, GateConfig, RecommendConfig, TifuConfig
from tests.unit.recommend.conftest import AS_OF


def _purchases() -> pd.DataFrame:
    """u1 re-buys A1 every 20 days and bought B1 once; u2 re-buys A1 every 40 days; u3 bought B2 long ago."""
    rows = [
        ("u1", "A1", -60, 2),
        ("u1", "A1", -40, 2),
        ("u1", "A1", -20, 4),
        ("u1", "B1", -5, 1),
        ("u2", "A1", -50, 1),
        ("u2", "A1", -10, 1),
        ("u2", "B1", -3, 1),
        ("u2", "B2", -30, 1),
        ("u3", "B2", -100, 6),
        ("u3", "A1", 1, 1),  # after the as-of day: not history yet
        (None, "A2", -2, 1),  # anonymous: nobody's history
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "sku": [r[1] for r in rows],
            "event_date": [AS_OF + timedelta(days=r[2]) for r in rows],
            "quantity": [r[3] for r in rows],
        }
    )


@pytest.fixture
def history_features(tiny_features: FeatureSet) -> FeatureSet:
    history = summarise_purchases(_purchases(), AS_OF, half_life_days=60)
    f = tiny_features
    return build_feature_set(AS_OF, f.interactions, f.items, f.users, f.cooccurrence, history)


def _open_context(features: FeatureSet) -> ServingContext:
    """Nothing blocked; A3 (inactive) and C1 (out of stock) unavailable."""
    return ServingContext(
        blocked=pd.DataFrame({"user": pd.Series(dtype=int), "item": pd.Series(dtype=int)}),
        available=available_items(features.items, FilterConfig()),
        risk=np.zeros(len(features.items)),
    )


def _lists(frame: pd.DataFrame) -> dict[str, list[str]]:
    ordered = frame.sort_values(["user_id", "rank"])
    return ordered.groupby("user_id")["sku"].apply(list).to_dict()


def test_history_counts_orders_cycles_and_habits():
    history = summarise_purchases(_purchases(), AS_OF, half_life_days=60)
    pairs = history.pairs.set_index(["user_id", "sku"])
    a1 = pairs.loc[("u1", "A1")]
    assert (a1["orders"], a1["units"], a1["last_units"], a1["cycle_days"]) == (3, 8, 4, 20.0)
    assert a1["recency_weighted"] == pytest.approx(0.5 + 0.5 ** (40 / 60) + 0.5 ** (20 / 60))
    assert np.isnan(pairs.loc[("u1", "B1"), "cycle_days"])
    assert ("u3", "A1") not in pairs.index and set(history.user_ids) == {"u1", "u2", "u3"}
    assert history.skus.loc["A1", "repeat_share"] == 1.0 and history.skus.loc["A1", "cycle_days"] == 30.0
    assert history.skus.loc["B1", "repeat_share"] == 0.0
    assert history.users.loc["u1", "cycle_days"] == pytest.approx(55 / 3)
    assert history.users.loc["u3", "order_days"] == 1


def test_rarely_rebought_skus_are_suppressed_and_repeat_items_come_back():
    history = summarise_purchases(_purchases(), AS_OF, half_life_days=60)
    items = pd.DataFrame({"sku": ["A1", "B1", "B2"], "category": ["A", "B", "B"]})

    def suppressed(**rule) -> set[tuple[str, str]]:
        config = FilterConfig(recent_purchase_days=30, **rule)
        return set(map(tuple, suppressed_repeats(history, items, config).to_numpy()))

    # B1 is never re-bought; A1 has a cycle; B2 was bought 30 days ago, outside the window.
    assert suppressed() == {("u1", "B1"), ("u2", "B1")}
    # Until the cycle is due: u1's A1 (every 20 days, last 20 days ago) is back, u2's (every 40, last 10) is not.
    assert suppressed(repeat_due_share=1.0) == {("u1", "B1"), ("u2", "B1"), ("u2", "A1")}
    # The old blanket ban, and consumables exempt from any rule.
    assert suppressed(repeat_min_share=1.0) == {("u1", "A1"), ("u1", "B1"), ("u2", "A1"), ("u2", "B1")}
    assert suppressed(repeat_min_share=1.0, consumable_categories=("A",)) == {("u1", "B1"), ("u2", "B1")}


def test_customers_known_only_from_history_are_users(history_features):
    assert "u3" in set(history_features.user_index)
    u3 = history_features.user_codes(["u3"])
    assert (history_features.interactions["user"] != u3[0]).all()


def test_p_topfreq_lists_own_purchases_and_gp_topfreq_tops_them_up(history_features):
    context = _open_context(history_features)
    users = np.array(["u1", "u3", "stranger"], dtype=object)
    own = _lists(recommend_p_topfreq(users, history_features, context, k=10))
    assert own == {"u1": ["A1", "B1"], "u3": ["B2"]}  # A1: three orders outweigh B1's one recent order
    topped = _lists(recommend_gp_topfreq(users, history_features, context, k=10))
    assert topped["u1"][:2] == ["A1", "B1"] and set(topped["u1"]) == {"A1", "A2", "B1", "B2"}
    assert topped["u3"][0] == "B2" and len(topped["stranger"]) == 4


def _tifu_inputs(features):
    return features.history.baskets, features.user_index, features.item_index


def test_tifu_vectors_decay_baskets_within_and_across_groups(history_features):
    one_group = tifu_user_vectors(
        *_tifu_inputs(history_features), TifuConfig(group_size=7, basket_decay=0.9, group_decay=0.7)
    )
    u1 = history_features.user_codes(["u1"])[0]
    a1, b1 = history_features.item_index.get_indexer(["A1", "B1"])
    assert one_group[u1, b1] == pytest.approx(1 / 4)
    assert one_group[u1, a1] == pytest.approx((0.9 + 0.81 + 0.729) / 4)
    two_groups = tifu_user_vectors(
        *_tifu_inputs(history_features), TifuConfig(group_size=2, basket_decay=0.9, group_decay=0.7)
    )
    assert two_groups[u1, b1] == pytest.approx(0.25)
    assert two_groups[u1, a1] == pytest.approx((0.9 / 2 + (1 + 0.9) / 2 * 0.7) / 2)


def test_tifu_knn_blends_in_what_neighbours_buy(history_features):
    context = _open_context(history_features)
    lists = _lists(recommend_tifu_knn(np.array(["u3"], dtype=object), history_features, context, 10, TifuConfig()))
    # u3's own B2 first, then what the neighbours (u1, u2) re-buy: A1 above B1 (bought once each).
    assert lists["u3"][:3] == ["B2", "A1", "B1"]


def test_candidates_carry_tifu_knn_and_its_neighbours_part_for_the_ranker(history_features):
    """The strongest repeat baseline's score is a ranker feature, and so is its neighbours' part alone
    ("customers like you also re-buy"), which is what it knows about SKUs new to the customer."""
    u3 = history_features.user_codes(["u3"])
    n_items = len(history_features.items)
    config = RecommendConfig()
    nothing_blocked = code_pairs(
        pd.DataFrame(columns=["user_id", "sku"]), history_features.user_index, history_features.item_index
    )
    candidates = build_candidates(
        u3,
        torch.ones((1, 2)),
        torch.ones((n_items, 2)),
        history_features,
        recent_seeds(history_features, 2),
        np.ones(n_items, dtype=bool),
        nothing_blocked,
        config,
    )

    own, neighbours = history_features.tifu(config.tifu).parts(u3)
    items = candidates["item"].to_numpy()
    alpha = config.tifu.alpha
    assert candidates["tifu_score"].to_numpy() == pytest.approx(
        alpha * own[0, items] + (1 - alpha) * neighbours[0, items]
    )
    assert candidates["tifu_neighbours"].to_numpy() == pytest.approx(neighbours[0, items])
    a1 = history_features.item_index.get_indexer(["A1"])[0]
    assert own[0, a1] == 0 and candidates.loc[candidates["item"] == a1, "tifu_neighbours"].item() > 0
    matrix = pd.DataFrame(candidate_matrix(candidates, history_features), columns=FEATURES)
    assert matrix["tifu_neighbours"].to_numpy() == pytest.approx(candidates["tifu_neighbours"].to_numpy())


def test_three_lists_split_bought_before_from_new(history_features):
    u1 = history_features.user_codes(["u1"])[0]
    items = history_features.item_index.get_indexer(["B2", "A1", "A2", "B1"])
    ranked = pd.DataFrame({"row": 0, "user": u1, "item": items, "score": [4.0, 3.0, 2.0, 1.0]})
    lists = split_lists(ranked, history_features, k=10)
    skus = history_features.item_index.to_numpy()
    got = {name: skus[part["item"].to_numpy()].tolist() for name, part in lists.groupby("list")}
    assert got == {"all": ["B2", "A1", "A2", "B1"], "buy_again": ["A1", "B1"], "discover": ["B2", "A2"]}
    assert lists.groupby("list")["rank"].apply(list).to_dict() == {
        "all": [1, 2, 3, 4],
        "buy_again": [1, 2],
        "discover": [1, 2],
    }


def test_served_baseline_lists_say_bought_before(history_features):
    context = _open_context(history_features)
    users = np.array(["u1"], dtype=object)
    lists = served_baseline_lists("gp_topfreq", recommend_gp_topfreq, users, history_features, context, 10)
    by_list = {name: part.set_index("sku")["reason"].to_dict() for name, part in lists.groupby("list")}
    assert by_list["buy_again"] == {"A1": "bought_before:3x:2024-03-11", "B1": "bought_before:1x:2024-03-26"}
    assert set(by_list["discover"]) == {"A2", "B2"} and set(by_list["discover"].values()) == {"popular"}
    assert by_list["all"]["A1"].startswith("bought_before:") and by_list["all"]["A2"] == "popular"


def test_discover_context_blocks_everything_bought_before(history_features):
    context = without_history(_open_context(history_features), history_features)
    blocked = set(zip(context.blocked["user"], context.blocked["item"], strict=True))
    u3 = history_features.user_codes(["u3"])[0]
    assert (u3, history_features.item_index.get_loc("B2")) in blocked
    assert context.blocked["user"].is_monotonic_increasing


def test_ranker_features_describe_the_repeat_cycle(history_features):
    u1 = history_features.user_codes(["u1"])[0]
    candidates = pd.DataFrame(
        {
            "user": [u1, u1],
            "item": history_features.item_index.get_indexer(["A1", "A2"]),
            "retrieval_score": [0.0, 0.0],
            "retrieval_rank": [np.nan, np.nan],
            "cooc_score": [0.0, 0.0],
            "cooc_max": [0.0, 0.0],
            "cooc_seeds": [0.0, 0.0],
            "tifu_score": [0.0, 0.0],
            "tifu_neighbours": [0.0, 0.0],
        }
    )
    matrix = pd.DataFrame(candidate_matrix(candidates, history_features), columns=FEATURES)
    bought, never = matrix.iloc[0], matrix.iloc[1]
    assert (bought["repeat_orders"], bought["repeat_days_since"], bought["repeat_cycle_days"]) == (3, 20, 20)
    assert bought["repeat_due_ratio"] == 1.0 and bought["repeat_units_trend"] == pytest.approx(1.5)
    assert (bought["item_repeat_share"], bought["item_cycle_days"]) == (1.0, 30.0)
    assert bought["user_cycle_days"] == pytest.approx(55 / 3) and bought["user_order_days"] == 4
    assert never["repeat_orders"] == 0 and np.isnan(never["repeat_days_since"]) and np.isnan(never["item_repeat_share"])


def _metrics(ndcg: float, coverage: float = 0.5) -> dict[str, float]:
    return {"ndcg@10": ndcg, "fallback_share": 0.0, "coverage@20": coverage, "diversity@20": 0.5}


SERVABLE = ("p_topfreq", "gp_topfreq", "global_popularity")


def test_a_baseline_that_beats_the_model_is_served():
    baselines = {"gp_topfreq": _metrics(0.30), "global_popularity": _metrics(0.10), "als": _metrics(0.35)}
    decision = decide_promotion(_metrics(0.20), baselines, 0.25, GateConfig(), 20, servable=SERVABLE)
    assert not decision.promoted and decision.serve == "gp_topfreq"
    assert decision.serve_reason == "gp_topfreq (ndcg@10 0.3000 vs the candidate's 0.2000): it beat the candidate"


def test_a_model_refused_only_against_the_promoted_one_leaves_that_one_serving():
    baselines = {"gp_topfreq": _metrics(0.30)}
    decision = decide_promotion(_metrics(0.33), baselines, 0.40, GateConfig(), 20, servable=SERVABLE)
    assert not decision.promoted and decision.serve == "model"
    first = decide_promotion(_metrics(0.33, coverage=0.0), baselines, None, GateConfig(), 20, servable=SERVABLE)
    assert not first.promoted and first.serve == "gp_topfreq" and "no version was promoted before" in first.serve_reason


def test_choose_served_follows_the_run_then_the_promoted_version_then_the_default(tmp_path):
    registry = ModelRegistry(tmp_path)
    config = RecommendConfig()
    lost = registry.create_version("recommender", "run-lost")
    registry.save_metadata(lost, {"gate": {"serve": "tifu_knn", "serve_reason": "tifu_knn beat it"}})
    assert choose_served(lost, None, config) == ("tifu_knn", "tifu_knn beat it")
    current = registry.create_version("recommender", "run-old")
    registry.save_metadata(current, {"features": list(FEATURES)})
    assert choose_served(None, current, config) == ("model", f"promoted version {current.version}")
    registry.save_metadata(current, {"features": ["retrieval_score"]})
    served, why = choose_served(None, current, config)
    assert served == "gp_topfreq" and "predates the ranker's features" in why
    assert (
        choose_served(None, None, config)[1]
        == "no recommender has passed its gate yet: serving the gp_topfreq baseline"
    )


def test_code_pairs_of_suppressed_repeats_are_sorted(history_features):
    suppressed = suppressed_repeats(history_features.history, history_features.items, FilterConfig())
    coded = code_pairs(suppressed, history_features.user_index, history_features.item_index)
    assert len(coded) == 2 and coded["user"].is_monotonic_increasing
