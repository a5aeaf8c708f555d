"""Nightly recommender tasks: train_retrieval → train_ranker → evaluate_and_gate → score_recommendations.

Time-based split for run date T (``eval_days`` = 7): retrieval is fitted three times
with one configuration, on features as of T-14 (its candidates, labelled by purchases
in (T-14, T-7], teach the ranker), as of T-7 (evaluated with that ranker on purchases
in (T-7, T] against every baseline) and as of T (the fit that serves). So the ranker
that is evaluated is the ranker that serves, and the served retrieval is the evaluated
configuration retrained on everything up to T. Each task finds its run's candidate in
the registry by run id. Scoring serves the promoted version, or the baseline that beat
this run's candidate: the storefront always gets the best list the run measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
import xgboost as xgb

from models.device import resolve_device
from models.recommend.baselines import (
    BASELINE_REASONS,
    Recommend,
    fit_als,
    recommend_als,
    recommend_category_popularity,
    recommend_cooccurrence,
    recommend_fallback,
    recommend_global_popularity,
    recommend_gp_topfreq,
    recommend_p_topfreq,
    recommend_tifu_knn,
    served_baseline_lists,
    without_history,
)
from models.recommend.data import (
    FEATURES,
    FeatureSet,
    SplitDates,
    build_feature_set,
    build_similar_items,
    purchases_between,
    split_dates,
)
from models.recommend.filters import available_items, code_pairs, stockout_risk
from models.recommend.gate import GATE_METRIC, OutputGateError, check_output, decide_promotion
from models.recommend.metrics import (
    catalogue_coverage,
    choose_diversity_basis,
    evaluate_lists,
    fallback_share,
    intra_list_diversity,
    reranked,
    segment_metrics,
)
from models.recommend.ranker import (
    LISTS,
    ServingContext,
    load_ranker,
    recommend_users,
    save_ranker,
    train_ranker_model,
    training_examples,
)
from models.recommend.repeat import PurchaseHistory, summarise_purchases, suppressed_repeats
from models.recommend.retrieval import TrainedRetrieval, load_retrieval, save_retrieval, train_retrieval_model
from models.registry import CANDIDATE, ModelRegistry, ModelVersion, Status
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
    spec,
)
from shopml.config.recommend import RecommendConfig
from shopml.lake import Lake
from shopml.notify import alert
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
DEFAULT_USER = "__default__"
FEATURE_TABLES = {
    "interactions": GOLD_USER_ITEM_INTERACTIONS,
    "items": GOLD_ITEM_FEATURES,
    "users": GOLD_USER_FEATURES,
    "cooccurrence": GOLD_ITEM_COOCCURRENCE,
}
ORDER_LINES = SILVER_ORDER_LINES
INVENTORY_PLAN = GOLD_INVENTORY_PLAN
RETRIEVAL_FITS = ("ranker_train", "evaluate", "serve")
# model_version of lists served from a baseline, e.g. "baseline:gp_topfreq".
BASELINE_VERSION_PREFIX = "baseline:"

RECOMMENDATIONS_SCHEMA = spec(GOLD_RECOMMENDATIONS).arrow_schema()
SIMILAR_ITEMS_SCHEMA = spec(GOLD_SIMILAR_ITEMS).arrow_schema()
MODEL_METRICS_TABLE = OPS_MODEL_METRICS
MODEL_METRICS_SCHEMA = spec(MODEL_METRICS_TABLE).arrow_schema()


# ---- reading -------------------------------------------------------------------------------


def _on_day(column: str, day: date) -> pc.Expression:
    return pc.field(column) == pa.scalar(day, pa.date32())


def load_feature_set(lake: Lake, day: date, config: RecommendConfig) -> FeatureSet:
    """The gold features of one as-of day and the purchase history up to it, coded.

    Fails clearly when the feature job has not run for the day.
    """
    frames = {}
    for key, table in FEATURE_TABLES.items():
        if key == "cooccurrence" and not lake.exists(table):
            frames[key] = pd.DataFrame(columns=["sku", "other_sku", "similarity", "co_purchase_count", "rank"])
            continue
        frames[key] = lake.read_pandas(table, filter=_on_day("feature_date", day))
        if key in ("interactions", "items") and frames[key].empty:
            raise ValueError(f"{table} has no rows for feature_date {day}: run the feature job for that day first")
    history = summarise_purchases(
        load_purchases(lake, day - timedelta(days=config.history_days), day), day, config.repeat_half_life_days
    )
    return build_feature_set(
        day, frames["interactions"], frames["items"], frames["users"], frames["cooccurrence"], history
    )


def load_purchases(lake: Lake, start: date, end: date) -> pd.DataFrame:
    """Purchase lines of known customers with event_date in (start, end]: user_id, sku, quantity, line_type, event_date."""
    if not lake.exists(ORDER_LINES):
        return pd.DataFrame(columns=["user_id", "sku", "quantity", "line_type", "event_date"])
    where = (pc.field("event_date") > pa.scalar(start, pa.date32())) & (
        pc.field("event_date") <= pa.scalar(end, pa.date32())
    )
    lines = lake.read_pandas(
        ORDER_LINES, columns=["user_id", "sku", "quantity", "line_type", "event_date"], filter=where
    )
    return lines[(lines["line_type"] == "purchase") & lines["user_id"].notna()].reset_index(drop=True)


def load_inventory_plan(lake: Lake, day: date) -> pd.DataFrame | None:
    """The latest inventory plan scored on or before ``day``, or None before the forecaster has run."""
    if not lake.exists(INVENTORY_PLAN):
        return None
    dates = lake.read_pandas(INVENTORY_PLAN, columns=["scored_date"], filter=pc.field("scored_date") <= pa.scalar(day))
    if dates.empty:
        return None
    latest = dates["scored_date"].max()
    return lake.read_pandas(
        INVENTORY_PLAN, columns=["sku", "stockout_probability", "status"], filter=_on_day("scored_date", latest)
    )


def _table_versions(lake: Lake, tables) -> dict[str, int | None]:
    return {table: lake.version(table) if lake.exists(table) else None for table in tables}


def serving_context(
    features: FeatureSet, config: RecommendConfig, plan=None, history: PurchaseHistory | None = None
) -> ServingContext:
    """What scoring may show: repeats the rule suppresses (on ``history``, default the features'), the
    SKUs that may be shown, and the stockout down-ranking from ``plan``; the nightly and the refresh share it."""
    suppressed = suppressed_repeats(features.history if history is None else history, features.items, config.filters)
    return ServingContext(
        blocked=code_pairs(suppressed, features.user_index, features.item_index),
        available=available_items(features.items, config.filters),
        risk=stockout_risk(features.items, plan, config.filters),
        risk_strength=config.filters.stockout_downrank_strength,
    )


# ---- task plumbing -------------------------------------------------------------------------


@contextmanager
def _cpu_threads(threads: int) -> Iterator[None]:
    """Run torch and XGBoost on ``threads`` CPU threads (0: their defaults), restoring torch's afterwards."""
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with xgb.config_context(nthread=threads):
            yield
    finally:
        torch.set_num_threads(previous)


Task = Callable[[date, str, Settings, RecommendConfig], dict]


def _task(body: Task) -> Callable[..., dict]:
    """Make ``body`` a DAG task taking (run_date, run_id, settings=None, config=None), within the thread limit."""

    def run(
        run_date: date, run_id: str, settings: Settings | None = None, config: RecommendConfig | None = None
    ) -> dict:
        settings = settings or get_settings()
        config = config or settings.recommend
        with _cpu_threads(config.cpu_threads):
            return body(run_date, run_id, settings, config)

    # Not functools.wraps: the task's signature must stay the optional one above.
    run.__name__, run.__qualname__, run.__doc__, run.__module__ = (
        body.__name__,
        body.__qualname__,
        body.__doc__,
        body.__module__,
    )
    return run


def _io(settings: Settings) -> tuple[Lake, ModelRegistry]:
    return Lake(settings), ModelRegistry(settings.models)


def find_candidate(registry: ModelRegistry, run_id: str) -> ModelVersion:
    """The newest version trained by ``run_id`` (a retried train_retrieval leaves older ones behind)."""
    model = registry.trained_by(MODEL_NAME, run_id)
    if model is None:
        raise LookupError(f"no {MODEL_NAME} version was trained by run {run_id!r}: run train_retrieval first")
    return model


def candidate_config(model: ModelVersion) -> RecommendConfig:
    """The config ``model`` was trained with: its ranker and its gate use it, whatever tonight's settings say."""
    return RecommendConfig.model_validate(model.metadata["config"])


def _dates(model: ModelVersion) -> SplitDates:
    return split_dates(date.fromisoformat(model.metadata["run_date"]), model.metadata["config"]["eval_days"])


# ---- scoring helpers -----------------------------------------------------------------------


def recommend_all(
    user_ids: np.ndarray,
    retrieval: TrainedRetrieval,
    booster,
    features: FeatureSet,
    context: ServingContext,
    config: RecommendConfig,
) -> pd.DataFrame:
    """The three lists of every user (``LISTS``).

    Users the model knows are ranked by it; customers it does not know (no activity in the
    feature window) get their own most-bought SKUs (GP-TopFreq), however long ago they last
    bought; everyone else gets the fallback lists, flagged.
    """
    user_ids = np.asarray(user_ids, dtype=object)
    known = (retrieval.user_ids.get_indexer(user_ids) >= 0) & (features.user_codes(user_ids) >= 0)
    personal = recommend_users(user_ids[known], retrieval, booster, features, context, config)
    rest = user_ids[~pd.Index(user_ids).isin(personal["user_id"])]
    bought = np.isin(features.user_codes(rest), features.repeats["user"].to_numpy())
    own = served_baseline_lists("gp_topfreq", recommend_gp_topfreq, rest[bought], features, context, config.top_k)
    fallback = recommend_fallback(rest[~bought], features, context, config.top_k)
    return pd.concat([personal, own, fallback], ignore_index=True)


def baseline_recommenders(config: RecommendConfig, settings: Settings) -> dict[str, Recommend]:
    """Every baseline of the evaluation by name; Spark ALS (when enabled) is fitted once, on first use."""
    recommenders: dict[str, Recommend] = {
        "global_popularity": recommend_global_popularity,
        "category_popularity": recommend_category_popularity,
        "cooccurrence": recommend_cooccurrence,
        "p_topfreq": recommend_p_topfreq,
        "gp_topfreq": recommend_gp_topfreq,
        "tifu_knn": partial(recommend_tifu_knn, config=config.tifu),
    }
    if config.als.enabled:
        from shopml.spark import get_spark

        fitted: dict[date, tuple[np.ndarray, np.ndarray]] = {}

        def als(users: np.ndarray, features: FeatureSet, context: ServingContext, k: int) -> pd.DataFrame:
            if features.as_of not in fitted:
                fitted[features.as_of] = fit_als(features, config.als, settings.seed, get_spark(settings))
            return recommend_als(users, features, context, k, fitted[features.as_of])

        recommenders["als"] = als
    return recommenders


def _bought_before(frame: pd.DataFrame, features: FeatureSet) -> np.ndarray:
    """Whether each (user_id, sku) row is a SKU the customer bought before the feature set's day."""
    users, items = features.user_codes(frame["user_id"]), features.item_index.get_indexer(frame["sku"])
    return (features.lookup_repeats(users, items) >= 0) & (users >= 0) & (items >= 0)


def evaluate_candidate(
    lists: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    features: FeatureSet,
    item_group: pd.Series | None,
    catalogue_size: int,
    ks: tuple[int, ...],
) -> dict[str, float]:
    """Metrics of one candidate's ``all`` list, and of where its hits come from.

    ``repeat:`` ranks the list's SKUs bought before against repeat purchases; ``explore:`` ranks
    its ``discover`` list (SKUs new to the customer) against purchases of new SKUs; a
    ``buy_again`` list, when given, is ranked against repeat purchases too.
    """
    repeat = _bought_before(truth, features)
    main = lists["all"]
    metrics = evaluate_lists(main, truth, item_group, catalogue_size, ks)
    metrics |= segment_metrics(reranked(main, _bought_before(main, features)), truth[repeat], ks, "repeat")
    metrics |= segment_metrics(lists["discover"], truth[~repeat], ks, "explore")
    if "buy_again" in lists:
        metrics |= segment_metrics(lists["buy_again"], truth[repeat], ks, "buy_again")
    return metrics


def _metric_rows(run_id: str, version: str, metrics: dict[str, dict[str, float]], promoted: bool) -> pa.Table:
    """One ops.model_metrics row per candidate and metric; ``segment:metric@k`` keys fill the segment column."""
    now = datetime.now(UTC)
    rows = []
    for candidate, values in metrics.items():
        for key, value in values.items():
            segment, _, name = key.rpartition(":")
            metric, _, k = name.partition("@")
            rows.append(
                {
                    "run_id": run_id,
                    "model_name": MODEL_NAME,
                    "model_version": version,
                    "candidate": candidate,
                    "metric": metric,
                    "k": int(k) if k else None,
                    "segment": segment or "overall",
                    "value": float(value),
                    "promoted": promoted and candidate == CANDIDATE,
                    "evaluated_at": now,
                }
            )
    return pa.Table.from_pylist(rows, schema=MODEL_METRICS_SCHEMA)


def _stamped(frame: pd.DataFrame, schema: pa.Schema, version: str, run_id: str, day: date) -> pa.Table:
    frame = frame.assign(model_version=version, run_id=run_id, generated_at=datetime.now(UTC), scored_date=day)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


# ---- DAG tasks -----------------------------------------------------------------------------


@_task
def train_retrieval(run_date: date, run_id: str, settings: Settings, config: RecommendConfig) -> dict:
    """Fit the retrieval model on features as of T-14, T-7 and T and register them as this run's candidate."""
    lake, registry = _io(settings)
    device = resolve_device(settings.device.value)
    dates = split_dates(run_date, config.eval_days)
    versions = _table_versions(lake, FEATURE_TABLES.values())
    model = registry.create_version(MODEL_NAME, run_id)
    fits, started = {}, time.perf_counter()
    for role, day in zip(RETRIEVAL_FITS, (dates.ranker_train, dates.evaluate, dates.serve), strict=True):
        features = load_feature_set(lake, day, config)
        trained = train_retrieval_model(features.interactions, features.items, config.retrieval, settings.seed, device)
        save_retrieval(trained, model.path, f"retrieval_{role}")
        fits[role] = {
            "as_of": day.isoformat(),
            "users": len(trained.user_ids),
            "items": len(trained.item_ids),
            "interactions": len(features.interactions),
            "history": trained.history,
        }
    seconds = time.perf_counter() - started
    registry.save_metadata(
        model,
        {
            "run_id": run_id,
            "run_date": run_date.isoformat(),
            "status": Status.CANDIDATE,
            "device": device,
            "seed": settings.seed,
            "config": config.model_dump(mode="json"),
            "retrieval": fits,
            "training_seconds": {"retrieval": seconds},
            "table_versions": {"retrieval": versions},
        },
    )
    log.info("trained retrieval for run %s in %.1fs: version %s", run_id, seconds, model.version)
    return {
        "model_version": model.version,
        "device": device,
        "seconds": round(seconds, 2),
        "final_loss": {role: fit["history"][-1]["loss"] if fit["history"] else None for role, fit in fits.items()},
    }


@_task
def train_ranker(run_date: date, run_id: str, settings: Settings, config: RecommendConfig) -> dict:
    """Fit the XGBoost ranker on the T-14 retrieval's candidates, labelled by purchases in (T-14, T-7]."""
    lake, registry = _io(settings)
    device = resolve_device(settings.device.value)
    model = find_candidate(registry, run_id)
    config = candidate_config(model)
    dates = _dates(model)
    started = time.perf_counter()
    features = load_feature_set(lake, dates.ranker_train, config)
    retrieval = load_retrieval(model.path, "retrieval_ranker_train", device)
    start, end = dates.windows()["ranker"]
    truth = purchases_between(load_purchases(lake, start, end), start, end)
    users = truth["user_id"].unique()
    users = users[(retrieval.user_ids.get_indexer(users) >= 0) & (features.user_codes(users) >= 0)]
    rng = np.random.default_rng(settings.seed)
    if len(users) > config.ranker.max_train_users:
        users = rng.choice(users, config.ranker.max_train_users, replace=False)
    context = serving_context(features, config)
    matrix, labels, groups = training_examples(
        np.sort(users.astype(str)).astype(object), retrieval, features, truth, context, config, settings.seed
    )
    if labels.sum() == 0:
        raise ValueError(f"no purchases in ({start}, {end}] among retrieved candidates: cannot train the ranker")
    booster, info = train_ranker_model(matrix, labels, groups, config.ranker, config.top_k, settings.seed, device)
    save_ranker(booster, model.path)
    seconds = time.perf_counter() - started
    meta = model.metadata
    registry.update_metadata(
        model,
        features=list(FEATURES),
        ranker=info,
        training_seconds={**meta["training_seconds"], "ranker": seconds},
        table_versions={
            **meta["table_versions"],
            "ranker": _table_versions(lake, [*FEATURE_TABLES.values(), ORDER_LINES]),
        },
    )
    log.info("trained ranker for run %s in %.1fs", run_id, seconds)
    return {
        "model_version": model.version,
        "seconds": round(seconds, 2),
        **{k: v for k, v in info.items() if k != "params"},
    }


@_task
def evaluate_and_gate(run_date: date, run_id: str, settings: Settings, config: RecommendConfig) -> dict:
    """Score the candidate and every baseline on purchases in (T-7, T]; promote the candidate if it passes the gate.

    The decision also names what scoring serves when the candidate is not promoted: the best
    baseline when one beat it, so the storefront always gets the best list this run measured.
    """
    lake, registry = _io(settings)
    device = resolve_device(settings.device.value)
    model = find_candidate(registry, run_id)
    config = candidate_config(model)
    dates = _dates(model)
    features = load_feature_set(lake, dates.evaluate, config)
    start, end = dates.windows()["evaluate"]
    truth = purchases_between(load_purchases(lake, start, end), start, end)
    # Customers with history as of T-7 (activity or purchases) and a purchase in the window.
    truth = truth[features.user_codes(truth["user_id"]) >= 0].reset_index(drop=True)
    users = np.sort(truth["user_id"].unique().astype(str)).astype(object)
    if not len(users):
        raise ValueError(f"no purchases in ({start}, {end}] by users known on {start}: nothing to evaluate on")
    context = serving_context(features, config)
    discover_context = without_history(context, features)
    retrieval = load_retrieval(model.path, "retrieval_evaluate", device)
    booster = load_ranker(model.path, device)
    k = max(config.metric_ks)
    lists, timings = {}, {}
    started = time.perf_counter()
    scored = recommend_all(users, retrieval, booster, features, context, config)
    lists[CANDIDATE] = {name: scored[scored["list"] == name] for name in LISTS}
    timings[CANDIDATE] = round(time.perf_counter() - started, 3)
    for name, recommend in baseline_recommenders(config, settings).items():
        started = time.perf_counter()
        lists[name] = {
            "all": recommend(users, features, context, k),
            "discover": recommend(users, features, discover_context, k),
        }
        timings[name] = round(time.perf_counter() - started, 3)
    diversity = choose_diversity_basis(features.items, config.gate.diversity_min_labelled_share)
    item_group = diversity.groups(features.items)
    # Coverage is measured against the SKUs that may be recommended at all.
    metrics = {
        name: evaluate_candidate(frames, truth, features, item_group, int(context.available.sum()), config.metric_ks)
        for name, frames in lists.items()
    }
    current = registry.current(MODEL_NAME)
    current_value = None if current is None else current.metadata.get("metrics", {}).get(CANDIDATE, {}).get(GATE_METRIC)
    decision = decide_promotion(
        metrics[CANDIDATE],
        {n: m for n, m in metrics.items() if n != CANDIDATE},
        current_value,
        config.gate,
        k,
        diversity,
        servable=tuple(BASELINE_REASONS),
    )
    lake.write_arrow(
        _metric_rows(run_id, model.version, metrics, decision.promoted), MODEL_METRICS_TABLE, mode="append"
    )
    registry.update_metadata(
        model,
        status=Status.PROMOTED if decision.promoted else Status.REJECTED,
        metrics=metrics,
        gate={**decision.as_dict(), "thresholds": config.gate.model_dump()},
        evaluation={"users": len(users), "purchases": len(truth), "seconds": timings},
        table_versions={
            **model.metadata["table_versions"],
            "evaluate": _table_versions(lake, [*FEATURE_TABLES.values(), ORDER_LINES]),
        },
    )
    if decision.promoted:
        registry.promote(MODEL_NAME, model.version)
    log.info("run %s: %s; serving %s", run_id, decision.reason, decision.serve)
    return {
        "model_version": model.version,
        "promoted": decision.promoted,
        "reason": decision.reason,
        "serve": decision.serve,
        "users": len(users),
        GATE_METRIC: metrics[CANDIDATE][GATE_METRIC],
        "baselines": {name: m[GATE_METRIC] for name, m in metrics.items() if name != CANDIDATE},
        "explore_recall": {name: m[f"explore:recall@{k}"] for name, m in metrics.items()},
        "current": current_value,
        "thresholds": config.gate.model_dump(),
        "diversity": diversity.reason,
    }


def has_current_features(model: ModelVersion) -> bool:
    """Whether ``model``'s ranker was trained on today's ``FEATURES`` (an older one cannot score them)."""
    return model.metadata.get("features") == list(FEATURES)


def choose_served(
    candidate: ModelVersion | None, current: ModelVersion | None, config: RecommendConfig
) -> tuple[str, str]:
    """What scoring serves ("model" for the promoted version, else a baseline's name) and why.

    This run's evaluation decides when it ran (a baseline that beat the candidate is served);
    otherwise the promoted version, when it was trained with today's features; otherwise
    ``default_baseline``, so the storefront never gets nothing because a model lost or failed.
    """
    gate = (candidate.metadata.get("gate") if candidate is not None else None) or {}
    if gate.get("serve", "model") != "model":
        return gate["serve"], gate["serve_reason"]
    if current is not None and has_current_features(current):
        return "model", f"promoted version {current.version}"
    if current is not None:
        why = f"promoted version {current.version} predates the ranker's features"
    else:
        why = "no recommender has passed its gate yet"
    return config.default_baseline, f"{why}: serving the {config.default_baseline} baseline"


@_task
def score_recommendations(run_date: date, run_id: str, settings: Settings, config: RecommendConfig) -> dict:
    """Write every user's lists and every SKU's similar items for ``run_date``, from the best this run has.

    That is the promoted version, or the baseline that beat it (``choose_served``), labelled as
    such in ``model_version`` and alerted. Lists that breach the output floors raise
    ``OutputGateError`` before anything is written.
    """
    lake, registry = _io(settings)
    device = resolve_device(settings.device.value)
    current = registry.current(MODEL_NAME)
    served, why = choose_served(registry.trained_by(MODEL_NAME, run_id), current, config)
    started = time.perf_counter()
    features = load_feature_set(lake, run_date, config)
    plan = load_inventory_plan(lake, run_date)
    context = serving_context(features, config, plan)
    # Similar items come from the retrieval embeddings: the promoted version's, else this run's candidate's.
    embeddings = current if current is not None else registry.trained_by(MODEL_NAME, run_id)
    if embeddings is None:
        raise LookupError(f"no {MODEL_NAME} version to take item embeddings from: run train_retrieval first")
    retrieval = load_retrieval(embeddings.path, "retrieval_serve", device)
    users = np.append(features.user_index.to_numpy(dtype=object), DEFAULT_USER)
    if served == "model":
        version = current.version
        lists = recommend_all(users, retrieval, load_ranker(current.path, device), features, context, config)
    else:
        version = f"{BASELINE_VERSION_PREFIX}{served}"
        recommend = baseline_recommenders(config, settings)[served]
        known = features.user_codes(users) >= 0
        lists = pd.concat(
            [
                served_baseline_lists(served, recommend, users[known], features, context, config.top_k),
                recommend_fallback(users[~known], features, context, config.top_k),
            ],
            ignore_index=True,
        )
        alert(
            "model_fallback",
            summary=f"recommendations for {run_date} come from the {served} baseline: {why}",
            details={"users": len(users) - 1},
            settings=settings,
        )
    real = lists[(lists["user_id"] != DEFAULT_USER) & (lists["list"] == "all")]
    k = config.top_k
    diversity = choose_diversity_basis(features.items, config.gate.diversity_min_labelled_share)
    quality = {
        f"coverage@{k}": catalogue_coverage(real, int(context.available.sum()), k),
        "fallback_share": fallback_share(real, users[:-1]),
    }
    if diversity.measured:
        quality[f"diversity@{k}"] = intra_list_diversity(real, diversity.groups(features.items), k)
    breaches = check_output(quality, config.gate, config.top_k, diversity)
    if breaches:
        raise OutputGateError(f"recommendations for {run_date} not written ({version}): " + "; ".join(breaches))
    similar = build_similar_items(retrieval.item_vectors(features.items), features, context.available, config)
    seconds = time.perf_counter() - started
    where = f"scored_date = '{run_date.isoformat()}'"
    lake.write_arrow(
        _stamped(lists, RECOMMENDATIONS_SCHEMA, version, run_id, run_date), GOLD_RECOMMENDATIONS, replace_where=where
    )
    lake.write_arrow(
        _stamped(similar, SIMILAR_ITEMS_SCHEMA, embeddings.version, run_id, run_date),
        GOLD_SIMILAR_ITEMS,
        replace_where=where,
    )
    log.info("scored %d users with %s (%s) in %.1fs", len(users) - 1, version, why, seconds)
    return {
        "model_version": version,
        "served": served,
        "why": why,
        "users": len(users) - 1,
        "fallback_users": int(lists.loc[lists["is_fallback"], "user_id"].nunique()),
        "rows": len(lists),
        "lists": lists.groupby("list")["user_id"].nunique().to_dict(),
        "similar_rows": len(similar),
        "inventory_plan": plan is not None,
        "users_per_second": round((len(users) - 1) / seconds, 1) if seconds else None,
        "coverage": quality[f"coverage@{k}"],
        "diversity": quality.get(f"diversity@{k}"),
        "diversity_check": diversity.reason,
        "fallback_share": quality["fallback_share"],
    }


# The tasks in the order the nightly DAG chains them (tests and benchmarks run them so too).
NIGHTLY_TASKS = (train_retrieval, train_ranker, evaluate_and_gate, score_recommendations)
