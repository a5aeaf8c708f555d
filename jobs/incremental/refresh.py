"""One refresh, step by step: merge → re-plan → re-rank → overlay → watermark (``run``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobs.incremental.merge import Batch, merge_batch, set_aside_misnamed
from jobs.incremental.overlay import OverlayRefusedError, Refresh, current_versions, publish_refresh
from jobs.incremental.replan import inventory_overlay, stock_now
from jobs.incremental.rerank import list_overlays, served_lists
from jobs.landing import CSV_SUFFIXES, JSON_SUFFIXES
from jobs.transforms import realtime
from models.forecast import pipeline as forecaster
from models.recommend import pipeline as recommender
from models.registry import ModelRegistry
from serving.store import VersionInfo
from shopml.config.incremental import IncrementalConfig
from shopml.lake import Lake
from shopml.settings import Settings, get_settings
from shopml.watermark import (
    Watermark,
    commit_watermark,
    pending_files,
    processed_files,
    read_watermark,
    record_processed,
)

log = logging.getLogger(__name__)


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
    stock = stock_now(lake, run_ts.date(), batch.events["event_id"])
    plan = None
    inventory = current.get("inventory")
    if inventory is not None and stock is not None and registry.current(forecaster.MODEL_NAME) is not None:
        now = stock[0]
        skus = realtime.purchased_skus(batch.events) & set(now["sku"])
        if catch_up["inventory"]:
            skus |= set(now.loc[now["units_sold_since"] > 0, "sku"])
        if skus:
            overlay, plan = inventory_overlay(lake, inventory, now, skus)
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
        overlays, summary = list_overlays(lake, lists, batch.events, stock, plan, behind, run_ts, config)
        refresh.overlays += overlays
        refresh.summary.update(summary)
    else:
        refresh.summary["users_reranked"] = 0
    refresh.summary["skipped"] = dict(sorted(skipped.items()))
    refresh.summary["caught_up"] = sorted(dataset for dataset, behind in catch_up.items() if behind)
    return refresh


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
