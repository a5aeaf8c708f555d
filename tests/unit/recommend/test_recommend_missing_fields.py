"""Shops whose order-line exports lack fields: every case runs the whole recommender at unit scale.

Each case strips a synthetic shop the way a real export is stripped (no categories, no brands,
null and zero prices, only purchases and returns, no inventory feed), builds the gold frames,
and runs what the nightly tasks run: retrieval fit, candidates, candidate matrix, ranker fit,
personal and fallback lists, the baselines, list metrics and the promotion gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models.recommend import synthetic
from models.recommend.baselines import (
    recent_popularity,
    recommend_category_popularity,
    recommend_cooccurrence,
    recommend_global_popularity,
)
from models.recommend.data import (
    FEATURES,
    FeatureSet,
    build_candidates,
    build_feature_set,
    build_similar_items,
    candidate_matrix,
    purchases_between,
    recent_seeds,
    split_dates,
)
from models.recommend.filters import available_items, code_pairs, stockout_risk
from models.recommend.gate import GateDecision, check_output, decide_promotion
from models.recommend.metrics import DiversityBasis, choose_diversity_basis, evaluate_lists
from models.recommend.pipeline import DEFAULT_USER, recommend_all
from models.recommend.ranker import ServingContext, train_ranker_model, training_examples
from models.recommend.repeat import summarise_purchases, suppressed_repeats
from models.recommend.retrieval import TrainedRetrieval, train_retrieval_model
from shopml.config.recommend import RankerConfig, RecommendConfig, RetrievalConfig

RUN_DATE = date(2024, 3, 31)
STRANGER = "__stranger__"
CONFIG = RecommendConfig(
    top_k=10,
    metric_ks=(10,),
    retrieval=RetrievalConfig(embedding_dim=8, epochs=3, batch_size=256, n_candidates=30, price_bands=4),
    ranker=RankerConfig(n_estimators=15, max_depth=3, negatives_per_user=20, early_stopping_rounds=5),
)
COLUMN = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class Export:
    """A shop as an order-line export shows it: events, catalogue, and how to derive the gold frames."""

    events: pd.DataFrame
    catalogue: pd.DataFrame
    purchases_only: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one nightly-like run produced on the evaluation day (T-7)."""

    features: FeatureSet
    retrieval: TrainedRetrieval
    context: ServingContext
    train_matrix: np.ndarray
    train_labels: np.ndarray
    booster: xgb.Booster
    serve_matrix: np.ndarray
    users: np.ndarray
    lists: pd.DataFrame
    baselines: dict[str, pd.DataFrame]
    metrics: dict[str, dict[str, float]]
    diversity: DiversityBasis
    decision: GateDecision


def _export(
    strip_catalogue: Callable[[pd.DataFrame], pd.DataFrame] = lambda c: c, purchases_only: bool = False
) -> Export:
    shop = synthetic.simulate_shop(n_users=250, n_items=100, run_date=RUN_DATE, events_per_day=2.0, seed=5)
    events = shop.events
    if purchases_only:
        events = events[events["event_type"] == "purchase"].reset_index(drop=True)
    return Export(events, strip_catalogue(shop.catalogue.copy()), purchases_only)


def _order_lines(export: Export) -> pd.DataFrame:
    lines = synthetic.build_order_lines(export.events, export.catalogue)
    if not export.purchases_only:
        return lines
    # Every tenth purchase comes back a few days later.
    returned = lines.iloc[::10].assign(line_type="return", event_date=lambda f: f["event_date"] + timedelta(days=2))
    return pd.concat([lines, returned], ignore_index=True)


def _features(export: Export, lines: pd.DataFrame, day: date) -> FeatureSet:
    """The gold frames as of ``day``, as the feature job writes them for this export, and its purchase history."""
    interactions = synthetic.build_interactions(export.events, day)
    items = synthetic.build_item_features(export.events, export.catalogue, day)
    users = synthetic.build_user_features(export.events, export.catalogue, day)
    cooccurrence = synthetic.build_cooccurrence(interactions, day)
    if export.purchases_only:
        # The job's ratios are null without views or carts, and a fully returned purchase weighs nothing.
        items["conversion_rate"] = np.nan
        users["view_to_cart_rate"] = np.nan
        users["cart_to_purchase_rate"] = np.nan
        interactions.loc[interactions.index[::10], "strength"] = 0.0
        items["return_rate"] = 0.1
    purchases = lines[lines["line_type"] == "purchase"]
    history = summarise_purchases(purchases, day, CONFIG.repeat_half_life_days)
    return build_feature_set(day, interactions, items, users, cooccurrence, history)


def _context(features: FeatureSet) -> ServingContext:
    suppressed = suppressed_repeats(features.history, features.items, CONFIG.filters)
    return ServingContext(
        blocked=code_pairs(suppressed, features.user_index, features.item_index),
        available=available_items(features.items, CONFIG.filters),
        risk=stockout_risk(features.items, None, CONFIG.filters),
    )


def _known_users(truth: pd.DataFrame, features: FeatureSet, retrieval: TrainedRetrieval) -> np.ndarray:
    users = truth["user_id"].unique()
    known = (features.user_codes(users) >= 0) & (retrieval.user_ids.get_indexer(users) >= 0)
    return np.sort(users[known].astype(str)).astype(object)


def _run(export: Export) -> Outcome:
    """train_retrieval → train_ranker → evaluate_and_gate, in memory, on the stripped shop."""
    dates = split_dates(RUN_DATE, CONFIG.eval_days)
    lines = _order_lines(export)

    train = _features(export, lines, dates.ranker_train)
    retrieval = train_retrieval_model(train.interactions, train.items, CONFIG.retrieval, seed=0)
    truth = purchases_between(lines, *dates.windows()["ranker"])
    context = _context(train)
    matrix, labels, groups = training_examples(
        _known_users(truth, train, retrieval), retrieval, train, truth, context, CONFIG, seed=0
    )
    booster, _ = train_ranker_model(matrix, labels, groups, CONFIG.ranker, CONFIG.top_k, seed=0, device="cpu")

    features = _features(export, lines, dates.evaluate)
    retrieval = train_retrieval_model(features.interactions, features.items, CONFIG.retrieval, seed=0)
    truth = purchases_between(lines, *dates.windows()["evaluate"])
    truth = truth[features.user_codes(truth["user_id"]) >= 0].reset_index(drop=True)
    context = _context(features)
    users = _known_users(truth, features, retrieval)
    _, user_vectors = retrieval.user_vectors(users)
    candidates = build_candidates(
        features.user_codes(users),
        user_vectors,
        retrieval.item_vectors(features.items),
        features,
        recent_seeds(features, CONFIG.ranker.seeds_per_user),
        context.available,
        context.blocked,
        CONFIG,
    )
    asked = np.append(users, [STRANGER, DEFAULT_USER]).astype(object)
    lists = recommend_all(asked, retrieval, booster, features, context, CONFIG)
    k = CONFIG.top_k
    baselines = {
        "global_popularity": recommend_global_popularity(users, features, context, k),
        "category_popularity": recommend_category_popularity(users, features, context, k),
        "cooccurrence": recommend_cooccurrence(users, features, context, k),
    }
    diversity = choose_diversity_basis(features.items, CONFIG.gate.diversity_min_labelled_share)
    model_lists = lists[lists["user_id"].isin(users) & (lists["list"] == "all")]
    metrics = {
        name: evaluate_lists(
            frame, truth, diversity.groups(features.items), int(context.available.sum()), CONFIG.metric_ks
        )
        for name, frame in {"model": model_lists, **baselines}.items()
    }
    others = {name: values for name, values in metrics.items() if name != "model"}
    decision = decide_promotion(metrics["model"], others, None, CONFIG.gate, k, diversity)
    return Outcome(
        features,
        retrieval,
        context,
        matrix,
        labels,
        booster,
        candidate_matrix(candidates, features),
        users,
        lists,
        baselines,
        metrics,
        diversity,
        decision,
    )


def _assert_full_finite_lists(outcome: Outcome) -> None:
    """Every asked user (known, stranger, default) has exactly top_k distinct, available, finite-scored SKUs.

    That is in their ``all`` list; ``discover`` is full too and never holds a SKU bought before.
    """
    everything, k = outcome.lists, CONFIG.top_k
    discover = everything[everything["list"] == "discover"]
    assert (discover.groupby("user_id").size() == k).all()
    bought = outcome.features.lookup_repeats(
        outcome.features.user_codes(discover["user_id"]), outcome.features.item_index.get_indexer(discover["sku"])
    )
    assert (bought[outcome.features.user_codes(discover["user_id"]) >= 0] < 0).all()
    lists = everything[everything["list"] == "all"]
    assert set(lists["user_id"]) == {*outcome.users, STRANGER, DEFAULT_USER}
    assert (lists.groupby("user_id").size() == k).all()
    ranks = lists.groupby("user_id")["rank"].apply(sorted)
    assert all(got == list(range(1, k + 1)) for got in ranks)
    assert not lists.duplicated(["user_id", "sku"]).any()
    assert np.isfinite(lists["score"].to_numpy(dtype=float)).all()
    assert outcome.context.available[outcome.features.item_index.get_indexer(lists["sku"])].all()
    personal = lists[~lists["is_fallback"]]
    assert set(personal["user_id"]) == set(outcome.users)  # everyone known gets a ranked list, not a fallback
    assert set(lists.loc[lists["is_fallback"], "user_id"]) == {STRANGER, DEFAULT_USER}
    for frame in outcome.baselines.values():
        assert (frame.groupby("user_id").size() == k).all() and set(frame["user_id"]) == set(outcome.users)
    assert outcome.train_labels.sum() > 0 and outcome.train_matrix.shape[1] == len(FEATURES)
    assert np.isfinite(outcome.booster.inplace_predict(outcome.serve_matrix)).all()
    assert all(np.isfinite(value) for metrics in outcome.metrics.values() for value in metrics.values())


def _without_categories(catalogue: pd.DataFrame) -> pd.DataFrame:
    return catalogue.assign(category=None)


def _without_brands(catalogue: pd.DataFrame) -> pd.DataFrame:
    return catalogue.assign(brand=None)


def _null_and_zero_prices(catalogue: pd.DataFrame) -> pd.DataFrame:
    position = np.arange(len(catalogue)) % 4
    price = np.where(position == 0, np.nan, np.where(position == 1, 0.0, catalogue["unit_price"]))
    return catalogue.assign(unit_price=price)


def _without_inventory(catalogue: pd.DataFrame) -> pd.DataFrame:
    return catalogue.assign(stock_status="unknown", on_hand=None)


def test_all_categories_null():
    outcome = _run(_export(_without_categories))
    features = outcome.features

    assert features.categories.empty and features.affinity.shape == (len(features.users), 0)
    # Unknown category: the affinity feature is missing for the ranker, not a misleading zero.
    assert np.isnan(outcome.serve_matrix[:, COLUMN["category_affinity"]]).all()
    assert np.isnan(outcome.train_matrix[:, COLUMN["category_affinity"]]).all()
    _assert_full_finite_lists(outcome)
    assert not outcome.lists["reason"].str.startswith("popular_in:").any()
    assert set(outcome.lists.loc[outcome.lists["is_fallback"], "reason"]) == {"trending"}

    # The category baseline degrades to the catalogue-wide recent best sellers, the same for everyone.
    order = np.argsort(-recent_popularity(features), kind="stable")
    skus = features.item_index.to_numpy()
    blocked = set(
        zip(outcome.context.blocked["user"].to_numpy(), outcome.context.blocked["item"].to_numpy(), strict=True)
    )
    category = outcome.baselines["category_popularity"]
    for user_id, got in category.groupby("user_id", sort=False)["sku"]:
        user = features.user_index.get_loc(user_id)
        allowed = [i for i in order if outcome.context.available[i] and (user, i) not in blocked]
        assert got.tolist() == skus[allowed[: CONFIG.top_k]].tolist()

    # Brands are still there, so diversity is measured by brand, and the gate says why.
    assert outcome.diversity.attribute == "brand"
    assert outcome.diversity.reason.startswith("catalogue has no categories: diversity measured by brand")
    assert outcome.metrics["model"]["diversity@10"] > 0
    assert outcome.decision.diversity == outcome.diversity.reason


def test_all_categories_and_brands_null_skip_the_diversity_gate_with_a_reason():
    outcome = _run(_export(lambda c: _without_brands(_without_categories(c))))

    _assert_full_finite_lists(outcome)
    assert outcome.diversity == DiversityBasis(
        None, "diversity not checked: catalogue has no categories; catalogue has no brands"
    )
    assert "diversity@10" not in outcome.metrics["model"]
    assert outcome.decision.reason.endswith(
        "; diversity not checked: catalogue has no categories; catalogue has no brands"
    )
    assert outcome.decision.diversity == outcome.diversity.reason
    assert "list diversity" not in outcome.decision.reason  # never a refusal
    # Every list has one "category", so the plain category floor could never be passed.
    quality = {**outcome.metrics["model"], "diversity@10": 0.0}
    assert check_output(quality, CONFIG.gate, 10, outcome.diversity) == check_output(
        quality, CONFIG.gate.model_copy(update={"min_diversity": 0.0}), 10
    )
    assert any("list diversity 0.000" in breach for breach in check_output(quality, CONFIG.gate, 10))


def test_all_brands_null():
    outcome = _run(_export(_without_brands))

    assert outcome.retrieval.brands == []
    codes = outcome.retrieval.encode_content(outcome.features.items).numpy()
    assert (codes[:, 1] == 0).all()  # every SKU reads the "unknown brand" row
    assert (codes[:, 0] > 0).all()  # categories still separate them
    _assert_full_finite_lists(outcome)
    assert outcome.diversity.attribute == "category"
    assert outcome.metrics["model"]["diversity@10"] > 0


def test_null_and_zero_prices():
    export = _export(_null_and_zero_prices)
    outcome = _run(export)
    features = outcome.features

    unpriced = export.catalogue.loc[~(export.catalogue["unit_price"] > 0), "sku"]
    rows = features.item_index.get_indexer(unpriced)
    # A zero price is unknown, not free: NaN in the features and the "unknown" price band.
    assert features.items.loc[rows, "unit_price"].isna().all()
    assert (outcome.retrieval.encode_content(features.items).numpy()[rows, 2] == 0).all()
    assert min(outcome.retrieval.price_edges) > 0
    item_price = outcome.serve_matrix[:, COLUMN["item_unit_price"]]
    ratio = outcome.serve_matrix[:, COLUMN["price_ratio"]]
    assert np.isnan(ratio[np.isnan(item_price)]).all()
    assert np.isfinite(ratio).any()  # priced SKUs keep the feature
    _assert_full_finite_lists(outcome)


def test_no_view_and_no_cart_events():
    outcome = _run(_export(purchases_only=True))
    features = outcome.features

    assert (features.interactions[["n_views", "n_carts"]] == 0).all().all()
    for column in ("ui_views", "ui_carts", "item_views_7d", "item_views_28d"):
        assert (outcome.serve_matrix[:, COLUMN[column]] == 0).all()
    for column in ("item_conversion_rate", "user_view_to_cart_rate", "user_cart_to_purchase_rate"):
        assert np.isnan(outcome.serve_matrix[:, COLUMN[column]]).all()
    assert (features.interactions["strength"] == 0).any()  # fully returned purchases
    assert all(np.isfinite(epoch["loss"]) for epoch in outcome.retrieval.history)
    _assert_full_finite_lists(outcome)
    similar = build_similar_items(
        outcome.retrieval.item_vectors(features.items), features, outcome.context.available, CONFIG
    )
    assert not similar.empty and "co_viewed" not in set(similar["reason"])
    assert np.isfinite(similar["score"]).all()


def test_no_inventory_feed():
    outcome = _run(_export(_without_inventory))
    features = outcome.features

    assert (features.items["stock_status"] == "unknown").all()
    assert (outcome.context.risk == 0).all()
    assert np.array_equal(outcome.context.available, features.items["active"].fillna(True).to_numpy(dtype=bool))
    assert (outcome.serve_matrix[:, COLUMN["item_low_stock"]] == 0).all()
    _assert_full_finite_lists(outcome)


@pytest.mark.parametrize("column", ["category", "brand", "unit_price", "stock_status", "views_7d", "active"])
def test_catalogue_columns_absent_altogether(tiny_features, column):
    """A gold frame without the column at all degrades like one full of nulls."""
    features = build_feature_set(
        tiny_features.as_of,
        tiny_features.interactions.drop(columns=["user", "item"]),
        tiny_features.items.drop(columns=column),
        tiny_features.users,
        tiny_features.cooccurrence,
    )
    assert features.item_matrix.shape == (len(features.items), len(tiny_features.item_matrix[0]))
    retrieval = train_retrieval_model(
        features.interactions, features.items, RetrievalConfig(embedding_dim=4, epochs=1, batch_size=8), seed=0
    )
    assert retrieval.item_vectors(features.items).isfinite().all()
    context = ServingContext(
        blocked=code_pairs(pd.DataFrame(columns=["user_id", "sku"]), features.user_index, features.item_index),
        available=available_items(features.items, CONFIG.filters),
        risk=stockout_risk(features.items, None, CONFIG.filters),
    )
    lists = recommend_category_popularity(features.user_index.to_numpy(), features, context, 3)
    assert (lists.groupby("user_id").size() == 3).all()
