"""The re-rank step: the lists of the users the stream affected, re-ranked by the promoted recommender on
the nightly features brought up to now (``jobs/transforms/realtime.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jobs.incremental.merge import EVENT_COLUMNS, Batch
from jobs.incremental.overlay import LIST_DATASETS, Overlay
from jobs.transforms import realtime
from jobs.transforms.features import end_of_day
from models.device import resolve_device
from models.recommend import pipeline as recommender
from models.recommend.data import build_feature_set
from models.recommend.ranker import load_ranker
from models.recommend.retrieval import load_retrieval
from models.registry import ModelRegistry
from serving.datasets import USER_LISTS, dataset_spec
from serving.encoding import decode_payload
from serving.publish import row_selection
from serving.store import VersionInfo, open_store
from shopml.catalog import SILVER_EVENTS
from shopml.config.incremental import IncrementalConfig
from shopml.errors import Skipped
from shopml.lake import Lake
from shopml.settings import Settings


def stream_events_since(lake: Lake, start: datetime) -> pd.DataFrame:
    """Stream events at or after ``start`` (what the nightly features have not seen yet)."""
    if not lake.exists(SILVER_EVENTS):
        return Batch.empty().events
    where = (
        (pc.field("event_date") >= pa.scalar(start.date(), pa.date32()))
        & (pc.field("feed") == "stream")
        & (pc.field("event_ts") >= pa.scalar(start, pa.timestamp("us", tz="UTC")))
    )
    return lake.read_pandas(SILVER_EVENTS, columns=EVENT_COLUMNS, filter=where)


def _served_holders(settings: Settings, users: set[str], skus: set[str], datasets: Sequence[str]) -> set[str]:
    """Those of ``users`` whose list in the current version of any of ``datasets`` shows any of ``skus``."""
    store = open_store(settings.serving, settings.serving_store)
    try:
        found = set()
        for user in sorted(users):
            for dataset in datasets:
                hit = store.lookup(dataset, user)
                shown = decode_payload(hit.payload)["items"] if hit is not None and hit.payload is not None else []
                if any(item["sku"] in skus for item in shown):
                    found.add(user)
                    break
        return found
    finally:
        store.close()


def nightly_holders(lake: Lake, feature_day: date, skus: set[str], datasets: Sequence[str]) -> set[str]:
    """Users whose nightly list of any of ``datasets`` (rows of gold.recommendations) shows any of ``skus``."""
    table = dataset_spec(datasets[0]).table
    names = lake.arrow_dataset(table).schema.names
    selections = []
    for dataset in datasets:
        try:
            selections.append(row_selection(dataset_spec(dataset), names))
        except Skipped:
            continue  # the table predates this list: it holds none of its rows
    if not selections:
        return set()
    where = (pc.field("scored_date") == pa.scalar(feature_day, pa.date32())) & pc.field("sku").isin(sorted(skus))
    if all(selection is not None for selection in selections):
        rows = selections[0]
        for selection in selections[1:]:
            rows |= selection
        where &= rows
    return realtime.holders(lake.read_pandas(table, columns=["user_id", "sku"], filter=where), skus)


def served_lists(
    current: dict[str, VersionInfo], promoted_version: str | None
) -> tuple[dict[str, VersionInfo], dict[str, str]]:
    """The list datasets the promoted model re-ranks, by list name, and why each other one is left as served.

    Left alone: a list never published, one served from a baseline that beat the model or from another
    model version than the promoted one (serving was rolled back: re-ranking would undo that), and one
    scored before the newest list (its nightly publish has not happened yet, and the re-ranked lists come
    from the newest feature day).
    """
    skipped = {dataset: "never published" for dataset in LIST_DATASETS if dataset not in current}
    published = {name: current[dataset] for name, dataset in USER_LISTS.items() if dataset in current}
    newest = max((info.scored_date for info in published.values()), default="")
    reranked = {}
    for name, info in published.items():
        if (info.model_version or "").startswith(recommender.BASELINE_VERSION_PREFIX):
            skipped[info.dataset] = f"served from {info.model_version}, which beat the model: not re-ranked"
        elif promoted_version is not None and info.model_version != promoted_version:
            skipped[info.dataset] = (
                f"served from {info.model_version}, not the promoted {promoted_version} (rolled back): not re-ranked"
            )
        elif info.scored_date != newest:
            skipped[info.dataset] = f"version {info.version} scored {info.scored_date}, the newest list {newest}"
        else:
            reranked[name] = info
    return reranked, skipped


def list_overlays(
    lake: Lake,
    lists: dict[str, VersionInfo],
    batch_events: pd.DataFrame,
    stock: tuple[pd.DataFrame, pd.DataFrame] | None,
    plan_updates: pd.DataFrame | None,
    catch_up: bool,
    run_ts: datetime,
    config: IncrementalConfig,
) -> tuple[list[Overlay], dict[str, Any]]:
    """Re-rank the users the stream affected with the promoted recommender on features brought up to now.

    ``lists``: the served version of each list to overlay, by list name (``served_lists``: one feature day).
    """
    settings, today = lake.settings, run_ts.date()
    recommend_config = settings.recommend
    datasets = [info.dataset for info in lists.values()]
    model = ModelRegistry(settings.models).require_current(recommender.MODEL_NAME)
    feature_day = date.fromisoformat(next(iter(lists.values())).scored_date)
    nightly = recommender.load_feature_set(lake, feature_day, recommend_config)
    day_end = end_of_day(feature_day)
    stream = stream_events_since(lake, day_end)
    interactions = realtime.add_recent_interactions(
        nightly.interactions, stream, settings.features.event_weights, day_end
    )
    items = nightly.items if stock is None else realtime.mark_sold_out(nightly.items, stock[0])
    features = build_feature_set(feature_day, interactions, items, nightly.users, nightly.cooccurrence, nightly.history)

    users = realtime.active_users(batch_events)
    sold_out: set[str] = set()
    if stock is not None:
        now, before = stock
        sold_out = realtime.sold_out_skus(now) - (set() if catch_up else realtime.sold_out_skus(before))
        # Served lists (nightly or overlaid) only ever show SKUs the feature day had in stock.
        sold_out &= set(nightly.items.loc[nightly.items["stock_status"] != "out_of_stock", "sku"])
    if catch_up:
        users |= realtime.active_users(stream)
    if sold_out:
        # Holders in the nightly lists, and among the users overlaid since (all active in the stream) those
        # whose served lists show a sold-out SKU.
        held = nightly_holders(lake, feature_day, sold_out, datasets)
        overlaid = realtime.active_users(stream) - held - users
        users |= held | _served_holders(settings, overlaid, sold_out, datasets)

    since = run_ts - timedelta(minutes=config.activity_window_minutes)
    hours = config.activity_window_minutes / 60
    trending = realtime.trending_skus(stream, features.items, since, hours, config.trending_top_n)
    summary = {
        "users_reranked": len(users),
        "sold_out_skus": sorted(sold_out),
        "active_users_last_hour": len(realtime.user_activity(stream, since)),
        "trending_skus": trending["sku"].tolist(),
        "stream_events_since_features": len(stream),
    }
    if not users:
        return [Overlay(info.dataset, info.version, {}) for info in lists.values()], summary
    # The repeat rule on the history up to now: what the stream just sold is suppressed as the nightly would.
    history = realtime.add_recent_purchases(features.history, stream, today, recommend_config.repeat_half_life_days)
    plan = recommender.load_inventory_plan(lake, today)
    if plan_updates is not None and plan is not None:
        plan = pd.concat([plan, plan_updates[plan.columns]]).drop_duplicates("sku", keep="last")
    context = recommender.serving_context(features, recommend_config, plan, history)
    device = resolve_device(settings.device.value)
    ranked = recommender.recommend_all(
        np.array(sorted(users), dtype=object),
        load_retrieval(model.path, "retrieval_serve", device),
        load_ranker(model.path, device),
        features,
        context,
        recommend_config,
    )
    digits = settings.serving_store.float_digits
    overlays = [
        Overlay(
            info.dataset,
            info.version,
            realtime.recommendation_payloads(ranked[ranked["list"] == name], digits, users),
        )
        for name, info in lists.items()
    ]
    return overlays, summary
