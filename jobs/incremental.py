"""Incremental refresh: the stream's new micro-batches to fresh recommendations and stock status, without retraining.

``python -m jobs.incremental [--ts 2026-01-06T10:05:00Z] [--run-id X]`` (the ``incremental_refresh`` DAG
calls ``run`` every 5 minutes). One run:

1. lists the micro-batch files under ``<landing>/events/stream/`` the ledger (``ops.stream_files``)
   does not hold, oldest first, at most ``max_files_per_run`` (files named outside the producer
   contract are moved to ``_rejected/`` with a quarantine row and an alert);
2. parses them with the nightly parser, drops duplicates (within the batch and events silver already
   holds) and bot sessions, validates the rest with the nightly ``events`` suite; rejected lines go to
   ``ops.quarantine`` (stages ``stream_clean`` / ``stream_validate``) with their reason;
3. MERGEs the survivors into ``silver.order_lines`` and ``silver.events`` (``feed = 'stream'``),
   insert-only on (event_date, event_id): replays and reruns never double-count, and the nightly
   clean treats these rows as delivered, so each event reaches silver once;
4. brings the nightly features up to now (``jobs/transforms/realtime.py``): stream interactions since
   the feature day, last-hour activity, trending SKUs, on-hand = latest snapshot - purchases since;
5. re-plans stock (the forecaster's own ``plan_inventory`` on the served forecasts) for SKUs just bought,
   and re-ranks, with the promoted recommender, the lists of users active in the batch and of everyone
   whose served list (``recommendations``, ``buy_again`` or ``discover``) shows a SKU that just sold out
   (sold-out SKUs are masked, just-bought ones as the repeat rule says); each re-ranked user gets all
   three lists anew, an empty one where they have none;
6. writes only those keys into the *current* serving versions (``overlay_keys``: atomic per batch,
   refused once a newer nightly version is current) and then, only then, appends the files to the
   ledger and commits the watermark.

A list dataset never published (a lake from before it existed) or served from a baseline that beat the
model (``model_version`` ``baseline:<name>``: re-ranking it with the model would undo that) is left as
served, with the reason under ``skipped`` in the summary.

A failure anywhere leaves the ledger and watermark as they were, so the next run reads the same files again.
When the nightly publishes a new version, overlays of the old one are gone with it: the first run
that sees the new version re-applies everything the stream delivered since its feature day.

Knobs: ``settings.incremental`` (``shopml/config/incremental.py``; env ``SHOPML_INCREMENTAL__<FIELD>``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest import read_landed_lines
from jobs.landing import CSV_SUFFIXES, JSON_SUFFIXES
from jobs.transforms import realtime
from jobs.transforms.cleaning import (
    drop_duplicate_events,
    flag_bot_sessions,
    to_order_lines,
    with_event_date,
)
from jobs.transforms.features import end_of_day
from jobs.transforms.raw import parse_events
from jobs.validate import catalogue_skus, checked_columns, rejected_rows, validate_staged
from models.device import resolve_device
from models.forecast import pipeline as forecaster
from models.forecast.inventory import plan_inventory
from models.recommend import pipeline as recommender
from models.recommend.data import build_feature_set
from models.recommend.filters import available_items, code_pairs, stockout_risk
from models.recommend.ranker import ServingContext, load_ranker
from models.recommend.repeat import suppressed_repeats
from models.recommend.retrieval import load_retrieval
from models.registry import ModelRegistry
from serving.datasets import USER_LISTS, dataset_spec
from serving.encoding import decode_payload
from serving.publish import dataset_versions, overlay_keys, row_selection
from serving.store import VersionInfo, open_store
from shopml import accounting
from shopml.catalog import OPS_QUARANTINE, SILVER_EVENTS, SILVER_ORDER_LINES, spec
from shopml.config.forecast import ForecastConfig
from shopml.config.incremental import IncrementalConfig
from shopml.errors import PermanentError, Skipped
from shopml.lake import Lake
from shopml.notify import alert
from shopml.quality import ValidationFailed
from shopml.settings import Settings, get_settings
from shopml.watermark import (
    Watermark,
    commit_watermark,
    misnamed_files,
    pending_files,
    processed_files,
    read_watermark,
    record_processed,
)

log = logging.getLogger(__name__)

# The user lists of gold.recommendations, one dataset each, re-ranked together; then stock.
LIST_DATASETS = tuple(USER_LISTS.values())
DATASETS = (*LIST_DATASETS, "inventory")
# event_date first: Delta prunes the target to the batch's partitions before matching ids.
MERGE_KEYS = ("event_date", "event_id")
EVENT_COLUMNS = ["event_id", "event_type", "user_id", "sku", "quantity", "event_ts"]


class OverlayRefusedError(PermanentError, RuntimeError):
    """The serving store kept refusing the overlays: a newer version kept appearing while the run computed."""


@dataclass
class Batch:
    """What one run took from the stream."""

    counts: dict[str, int]
    # Valid events of the batch (new ones and ones silver already held): who and what they affect.
    events: pd.DataFrame
    # Per file name: its landing date and row accounting (``shopml.accounting.COUNT_COLUMNS``).
    file_counts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Batch:
        return cls({}, pd.DataFrame({column: pd.Series(dtype=object) for column in EVENT_COLUMNS}))


@dataclass
class Overlay:
    dataset: str
    based_on: str
    entries: dict[str, dict[str, Any]]


@dataclass
class Refresh:
    """The values to write and the versions they were computed against."""

    overlays: list[Overlay] = field(default_factory=list)
    served_versions: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


# ---- Spark: micro-batch files -> silver ----------------------------------------------------------


def _batch_landing_date(fallback: date):
    """The batch's UTC date from its file name (``batch-YYYYMMDDT…``): reruns assign the same landing date."""
    stamp = F.regexp_extract(F.col("source_file"), r"batch-(\d{8})T", 1)
    return F.coalesce(F.to_date(F.try_to_timestamp(stamp, F.lit("yyyyMMdd"))), F.lit(fallback))


def _flag_bots(lake: Lake, fresh: DataFrame, event_dates: list[date]) -> DataFrame:
    """``is_bot`` as the nightly rule, counting each session's stream events already merged the same landing day."""
    limit = lake.settings.bot_max_events_per_session
    fresh = fresh.withColumn("_prior", F.lit(False))
    if lake.exists(SILVER_EVENTS):
        prior = (
            lake.read(SILVER_EVENTS)
            .where(F.col("event_date").isin(event_dates) & (F.col("feed") == "stream"))
            .select("landing_date", "session_id", "event_type", "user_agent")
            .join(fresh.select("landing_date", "session_id").distinct(), ["landing_date", "session_id"], "left_semi")
            .withColumn("_prior", F.lit(True))
        )
        fresh = fresh.unionByName(prior, allowMissingColumns=True)
    return flag_bot_sessions(fresh, limit).where(~F.col("_prior")).drop("_prior")


def _write_quarantine(lake: Lake, rejected: DataFrame, sources: list[tuple[date, str]], run_id: str) -> None:
    """Replace the quarantine rows of exactly these files, so a rerun of a batch rewrites instead of appending."""
    rows = rejected.select(
        F.lit("events").alias("dataset"),
        "landing_date",
        "stage",
        F.col("quarantine_reason").alias("reason"),
        F.col("event_id").cast("string").alias("record_key"),
        "payload",
        "source_file",
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )
    days = ", ".join(sorted({f"'{day}'" for day, _ in sources}))
    files = ", ".join(sorted({"'" + name.replace("'", "''") + "'" for _, name in sources}))
    where = (
        f"landing_date IN ({days}) AND dataset = 'events' AND stage IN ('stream_clean', 'stream_validate') "
        f"AND source_file IN ({files})"
    )
    lake.write(rows, OPS_QUARANTINE, replace_where=where)


def file_accounting(
    seen: list, unique: DataFrame, known: DataFrame, flagged: DataFrame, rejected: DataFrame, passed: DataFrame
) -> dict[str, dict[str, Any]]:
    """Each file's row accounting, as the nightly keeps it per landing date, reconciled.

    ``seen`` holds the parsed lines per (landing_date, source_file, event_date) with ``lines`` and
    ``unparsable``; the frames are the batch's stages, each with ``source_file``, counted per file in one
    Spark job. Raises ``RowAccountingError`` (before anything is merged) when a file's rows do not add up.
    """
    stages = {"unique": unique, "known": known, "flagged": flagged, "rejected": rejected, "passed": passed}
    tagged = [
        frame.select(
            "source_file",
            F.lit(stage).alias("stage"),
            (F.col("is_bot") if stage == "flagged" else F.lit(False)).alias("is_bot"),
        )
        for stage, frame in stages.items()
    ]
    union = tagged[0]
    for frame in tagged[1:]:
        union = union.unionByName(frame)
    counts: dict[tuple[str, str], Any] = {
        (row.source_file.rsplit("/", 1)[-1], row.stage): row
        for row in union.groupBy("source_file", "stage")
        .agg(F.count(F.lit(1)).alias("n"), F.count_if("is_bot").alias("bots"))
        .collect()
    }
    files: dict[str, dict[str, Any]] = {}
    for row in seen:
        name = row.source_file.rsplit("/", 1)[-1]
        entry = files.setdefault(name, {"landing_date": row.landing_date, "landed": 0, "quarantined_clean": 0})
        entry["landed"] += row.lines
        entry["quarantined_clean"] += row.unparsable

    def count(name: str, stage: str, column: str = "n") -> int:
        found = counts.get((name, stage))
        return found[column] if found is not None else 0

    for name, entry in files.items():
        bots = count(name, "flagged", "bots")
        entry |= {
            "unique": count(name, "unique"),
            "known": count(name, "known"),
            "duplicates": entry["landed"] - entry["quarantined_clean"] - count(name, "unique") + count(name, "known"),
            "bots": bots,
            "staged": count(name, "flagged") - bots,
            "quarantined_validate": count(name, "rejected"),
            "silver": count(name, "passed"),
        }
        accounting.reconcile(
            entry | {"dataset": accounting.STREAM_DATASET, "landing_date": f"{entry['landing_date']} ({name})"}
        )
    return files


def merge_batch(lake: Lake, files: Sequence[Path], run_ts: datetime, run_id: str) -> Batch:
    """Parse, de-duplicate, validate and MERGE micro-batch files into silver; returns counts and the valid events.

    Raises ``ValidationFailed`` (nothing merged) when a critical expectation fails, ``RowAccountingError``
    (nothing merged) when a file's rows do not add up.
    """
    spark, settings = lake.spark, lake.settings
    lines = read_landed_lines(
        spark,
        [str(path) for path in files if path.name.endswith(JSON_SUFFIXES)],
        [str(path) for path in files if path.name.endswith(CSV_SUFFIXES)],
    )
    bronze = lines.withColumn("landing_date", _batch_landing_date(run_ts.date()))
    parsed = parse_events(bronze, settings.non_product_skus).cache()
    usable = parsed.where(F.col("quarantine_reason").isNull()).drop("quarantine_reason")
    unique = drop_duplicate_events(usable, spark.createDataFrame([], "event_id string")).cache()
    # One pass over the parsed lines: the files' landing dates, the events' dates and the line counts.
    files_seen = parsed.groupBy("landing_date", "source_file", F.to_date("event_ts").alias("event_date")).agg(
        F.count(F.lit(1)).alias("lines"), F.count("quarantine_reason").alias("unparsable")
    )
    seen = files_seen.collect()
    sources = sorted({(row.landing_date, row.source_file) for row in seen})
    event_dates = sorted({row.event_date for row in seen if row.event_date is not None})
    if lake.exists(SILVER_EVENTS):
        loaded = lake.read(SILVER_EVENTS).where(F.col("event_date").isin(event_dates)).select("event_id")
    else:
        loaded = spark.createDataFrame([], "event_id string")
    known = unique.join(loaded, "event_id", "left_semi")
    flagged = _flag_bots(lake, unique.join(loaded, "event_id", "left_anti"), event_dates).cache()
    staged = (
        with_event_date(flagged.where(~F.col("is_bot")).drop("is_bot"))
        .withColumn("feed", F.lit("stream"))
        .withColumn("days_late", F.datediff("landing_date", "event_date"))
        .cache()
    )
    catalogue = catalogue_skus(lake, run_ts.date())
    checked = checked_columns(staged, "events", catalogue)
    outcome = validate_staged(lake, checked, "events", run_ts.date(), run_id, has_catalogue=catalogue is not None)
    if outcome.critical_failures:
        raise ValidationFailed(
            f"micro-batch {files[0].name}..{files[-1].name} failed critical expectation(s): "
            f"{'; '.join(outcome.critical_failures)}. Nothing was merged; the watermark stays."
        )
    rejected = rejected_rows(staged, outcome, ["event_id"]).cache()
    passing = staged.join(rejected.select("event_id"), "event_id", "left_anti").cache()
    clean_rejects = parsed.where(F.col("quarantine_reason").isNotNull()).unionByName(
        flagged.where("is_bot").drop("is_bot").withColumn("quarantine_reason", F.lit("bot_traffic"))
    )
    quarantine = clean_rejects.withColumn("stage", F.lit("stream_clean")).unionByName(
        rejected.drop("days_late", "event_date", "feed").withColumn("stage", F.lit("stream_validate"))
    )
    per_file = file_accounting(seen, unique, known, flagged, rejected, passing)
    passed = passing.drop("source_file", "payload", "days_late")
    totals = {
        column: sum(entry[column] for entry in per_file.values())
        for column in (*accounting.COUNT_COLUMNS, "unique", "known")
    }
    counts = {
        "lines": totals["landed"],
        "unique": totals["unique"],
        "already_in_silver": totals["known"],
        "bots": totals["bots"],
        "quarantined": totals["quarantined_clean"] + totals["bots"] + totals["quarantined_validate"],
        "merged": totals["silver"],
        "duplicates": totals["duplicates"],
    }
    if counts["quarantined"]:
        _write_quarantine(lake, quarantine, sources, run_id)
    if counts["merged"]:
        # Order lines first: a run that dies between the two merges is redone whole (the events are not yet
        # in silver, so they are not taken for duplicates), and both merges insert only what is missing.
        lake.merge(to_order_lines(passed), SILVER_ORDER_LINES, MERGE_KEYS, update=False)
        lake.merge(passed, SILVER_EVENTS, MERGE_KEYS, update=False)
    events = passed.select(*EVENT_COLUMNS).unionByName(known.select(*EVENT_COLUMNS)).toPandas()
    for frame in (parsed, unique, flagged, staged, rejected, passing):
        frame.unpersist()
    log.info("micro-batch %s..%s: %s", files[0].name, files[-1].name, counts)
    return Batch(counts, events, per_file)


# ---- serving: what changed, recomputed with the promoted models ------------------------------------


def current_versions(settings: Settings) -> dict[str, VersionInfo]:
    """The current serving version of each dataset the refresh writes (absent before its first publish)."""
    current = {}
    for dataset in DATASETS:
        version, versions = dataset_versions(dataset, settings)
        info = next((v for v in versions if v.version == version), None)
        if info is not None:
            current[dataset] = info
    return current


def _stream_events_since(lake: Lake, start: datetime) -> pd.DataFrame:
    """Stream events at or after ``start`` (what the nightly features have not seen yet)."""
    if not lake.exists(SILVER_EVENTS):
        return Batch.empty().events
    where = (
        (pc.field("event_date") >= pa.scalar(start.date(), pa.date32()))
        & (pc.field("feed") == "stream")
        & (pc.field("event_ts") >= pa.scalar(start, pa.timestamp("us", tz="UTC")))
    )
    return lake.read_pandas(SILVER_EVENTS, columns=EVENT_COLUMNS, filter=where)


def _stock_now(lake: Lake, day: date, exclude: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """On-hand estimates now and before the batch (its purchases left out); None without an inventory feed."""
    snapshots = forecaster.read_inventory(lake, day)
    if snapshots is None:
        return None
    first = pd.to_datetime(snapshots["snapshot_ts"], utc=True).min().date()
    where = (pc.field("event_date") >= pa.scalar(first, pa.date32())) & (pc.field("line_type") == "purchase")
    purchases = lake.read_pandas(SILVER_ORDER_LINES, columns=["event_id", "sku", "quantity", "event_ts"], filter=where)
    before = purchases[~purchases["event_id"].isin(exclude)]
    return realtime.estimate_on_hand(snapshots, purchases), realtime.estimate_on_hand(snapshots, before)


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


def _inventory_overlay(
    lake: Lake, info: VersionInfo, stock: pd.DataFrame, skus: set[str]
) -> tuple[Overlay, pd.DataFrame]:
    """Re-plan ``skus`` with the served forecasts, the forecaster's own formulas and the stock estimate."""
    model = ModelRegistry(lake.settings.models).require_current(forecaster.MODEL_NAME)
    config = ForecastConfig.model_validate(model.metadata["config"])
    where = (pc.field("scored_date") == pa.scalar(date.fromisoformat(info.scored_date), pa.date32())) & pc.field(
        "sku"
    ).isin(sorted(skus))
    # Every column: plan_inventory picks the values it plans on (the partition holds few rows per SKU).
    forecasts = lake.read_pandas(forecaster.FORECAST_TABLE, filter=where)
    plan = plan_inventory(forecasts, stock[stock["sku"].isin(skus)], config)
    fields = [name for name, _ in dataset_spec("inventory").fields]
    digits = lake.settings.serving_store.float_digits
    return Overlay("inventory", info.version, realtime.inventory_payloads(plan, fields, digits)), plan


def _list_overlays(
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
    stream = _stream_events_since(lake, day_end)
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
    filters = recommend_config.filters
    # The repeat rule on the history up to now: what the stream just sold is suppressed as the nightly would.
    history = realtime.add_recent_purchases(features.history, stream, today, recommend_config.repeat_half_life_days)
    suppressed = suppressed_repeats(history, features.items, filters)
    plan = recommender.load_inventory_plan(lake, today)
    if plan_updates is not None and plan is not None:
        plan = pd.concat([plan, plan_updates[plan.columns]]).drop_duplicates("sku", keep="last")
    context = ServingContext(
        blocked=code_pairs(suppressed, features.user_index, features.item_index),
        available=available_items(features.items, filters),
        risk=stockout_risk(features.items, plan, filters),
    )
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


def build_refresh(
    lake: Lake,
    batch: Batch,
    watermark: Watermark,
    current: dict[str, VersionInfo],
    run_ts: datetime,
    config: IncrementalConfig,
) -> Refresh:
    """The served values the batch changed, computed against the ``current`` versions.

    A dataset whose current version is not the one the watermark recorded (a nightly publish since)
    is caught up: everything the stream delivered since its feature day is applied again.
    """
    registry = ModelRegistry(lake.settings.models)
    refresh = Refresh(served_versions={dataset: info.version for dataset, info in current.items()})
    catch_up = {dataset: watermark.served_versions.get(dataset) != info.version for dataset, info in current.items()}
    stock = _stock_now(lake, run_ts.date(), batch.events["event_id"])
    plan = None
    inventory = current.get("inventory")
    if inventory is not None and stock is not None and registry.current(forecaster.MODEL_NAME) is not None:
        now = stock[0]
        skus = realtime.purchased_skus(batch.events) & set(now["sku"])
        if catch_up["inventory"]:
            skus |= set(now.loc[now["units_sold_since"] > 0, "sku"])
        if skus:
            overlay, plan = _inventory_overlay(lake, inventory, now, skus)
            refresh.overlays.append(overlay)
        refresh.summary["skus_replanned"] = len(skus)
    promoted = registry.current(recommender.MODEL_NAME)
    lists, skipped = served_lists(current, promoted.version if promoted is not None else None)
    if lists and (promoted is None or not recommender.has_current_features(promoted)):
        why = (
            "no promoted recommender"
            if promoted is None
            else f"the promoted recommender {promoted.version} predates the ranker's features: not re-ranked"
        )
        skipped |= {info.dataset: why for info in lists.values()}
        lists = {}
    if lists:
        # One re-ranking serves every list: when any of them is behind, all catch up (a list that was not
        # behind only gets the stream's users re-ranked once more, on features as fresh as the others').
        behind = any(catch_up[info.dataset] for info in lists.values())
        overlays, summary = _list_overlays(lake, lists, batch.events, stock, plan, behind, run_ts, config)
        refresh.overlays += overlays
        refresh.summary.update(summary)
    else:
        refresh.summary["users_reranked"] = 0
    refresh.summary["skipped"] = dict(sorted(skipped.items()))
    refresh.summary["caught_up"] = sorted(dataset for dataset, behind in catch_up.items() if behind)
    return refresh


def publish_refresh(refresh: Refresh, settings: Settings) -> bool:
    """Write every overlay into the version it was computed against; False when any was refused (superseded)."""
    accepted = True
    for overlay in refresh.overlays:
        if overlay.entries and not overlay_keys(overlay.dataset, overlay.entries, overlay.based_on, settings):
            accepted = False
    return accepted


# ---- the run ------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """A plain aware UTC datetime (Airflow hands over pendulum ones, which pandas does not compare with)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)


def micro_batch_settings(settings: Settings, config: IncrementalConfig | None = None) -> Settings:
    """Settings with Spark sized for micro-batches (local mode, few shuffle partitions).

    The sizes come from ``config``, by default ``settings.incremental``.
    """
    config = config or settings.incremental
    update: dict[str, Any] = {"spark_shuffle_partitions": config.shuffle_partitions}
    if config.spark_master:
        update["spark_master"] = config.spark_master
    return settings.model_copy(update=update)


def set_aside_misnamed(lake: Lake, folder: Path, run_id: str, run_ts: datetime) -> list[str]:
    """Move finished files named outside the producer contract to ``_rejected/``, with a quarantine row
    each and one alert: processed, a ``manual-fix.jsonl`` could hide a bad batch; left, it would be unseen."""
    misnamed = misnamed_files(folder, JSON_SUFFIXES + CSV_SUFFIXES)
    if not misnamed:
        return []
    rejected_dir = folder / "_rejected"
    rejected_dir.mkdir(exist_ok=True)
    rows, moves = [], []
    for path in misnamed:
        target = rejected_dir / f"{run_ts:%Y%m%dT%H%M%SZ}-{path.name}"
        moves.append((path, target))
        rows.append(
            {
                "dataset": "events",
                "landing_date": run_ts.date(),
                "stage": "stream_ingest",
                "reason": "rejected_file:name_outside_contract",
                "record_key": path.name,
                "payload": f"moved to {target}; stream files are named batch-YYYYMMDDTHHMMSSZ-NNNN.<jsonl|csv>[.gz]",
                "source_file": str(path),
                "run_id": run_id,
                "quarantined_at": run_ts,
            }
        )
    schema = spec(OPS_QUARANTINE).arrow_schema()
    # The rows first: a move that fails leaves the file in place to be set aside again, never unrecorded.
    lake.write_arrow(pa.Table.from_pylist(rows, schema=schema), OPS_QUARANTINE, mode="append")
    for path, target in moves:
        path.replace(target)
    names = [path.name for path in misnamed]
    alert(
        "validation_breach",
        summary=f"{len(names)} stream file(s) named outside the producer contract moved to {rejected_dir}",
        details={"files": names},
        settings=lake.settings,
        dag_id="incremental_refresh",
        run_id=run_id,
    )
    return names


def run(
    run_ts: datetime | None = None,
    run_id: str = "manual",
    lake: Lake | None = None,
    config: IncrementalConfig | None = None,
) -> dict[str, Any]:
    """One refresh: new micro-batches → silver → re-ranked lists and stock → serving store → watermark.

    ``config`` defaults to ``settings.incremental`` of the lake's settings (or of ``get_settings()``).
    Raises (and leaves the watermark untouched) when any step fails: the store unreachable, a critical
    expectation, or overlays refused ``publish_attempts`` times in a row.
    """
    started = time.monotonic()
    run_ts = _utc(run_ts or datetime.now(UTC))
    lake = lake or Lake(micro_batch_settings(get_settings(), config))
    settings = lake.settings
    config = config or settings.incremental
    watermark = read_watermark(lake, config.stream)
    folder = settings.landing / config.stream_folder
    set_aside = set_aside_misnamed(lake, folder, run_id, run_ts)
    processed = processed_files(lake, config.stream)
    files = pending_files(folder, processed, config.max_files_per_run, JSON_SUFFIXES + CSV_SUFFIXES)
    current = current_versions(settings)
    versions = {dataset: info.version for dataset, info in current.items()}
    summary: dict[str, Any] = {"run_id": run_id, "run_ts": run_ts.isoformat(), "files": [p.name for p in files]}
    if set_aside:
        summary["set_aside"] = set_aside
    if not files and versions == watermark.served_versions:
        log.info("no new micro-batches (%d in the ledger) and no new serving version: nothing to do", len(processed))
        return summary | {"status": "up_to_date", "watermark": watermark.last_file}
    batch = merge_batch(lake, files, run_ts, run_id) if files else Batch.empty()
    merged_s = time.monotonic() - started
    for attempt in range(1, config.publish_attempts + 1):
        refresh = build_refresh(lake, batch, watermark, current, run_ts, config)
        if publish_refresh(refresh, settings):
            break
        log.warning("attempt %d: a newer serving version became current while computing; rebuilding", attempt)
        current = current_versions(settings)
    else:
        raise OverlayRefusedError(
            f"overlays refused {config.publish_attempts} times (serving versions kept changing); "
            "the ledger and watermark stay as they were and the next run retries"
        )
    committed = Watermark(
        stream=config.stream,
        last_file=files[-1].name if files else watermark.last_file,
        files=len(files),
        events=batch.counts.get("merged", 0),
        served_versions=refresh.served_versions,
        run_id=run_id,
        committed_at=datetime.now(UTC),
    )
    record_processed(lake, config.stream, files, run_id, committed.committed_at, batch.file_counts)
    commit_watermark(lake, committed)
    return summary | {
        "status": "refreshed",
        "watermark": committed.last_file,
        "batch": batch.counts,
        "overlaid": {overlay.dataset: len(overlay.entries) for overlay in refresh.overlays},
        "served_versions": refresh.served_versions,
        **refresh.summary,
        "merge_s": round(merged_s, 2),
        "duration_s": round(time.monotonic() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ts", type=datetime.fromisoformat, help="the run's 'now' (default: the clock), ISO 8601")
    parser.add_argument("--run-id", default="manual", help="Airflow run id (recorded with every row written)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    summary = run(run_ts=args.ts, run_id=args.run_id)
    sys.stdout.write(json.dumps(summary, default=str, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
