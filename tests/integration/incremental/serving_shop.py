"""A tiny generated shop taken through one real nightly run, so the 5-minute refresh has something to refresh.

Landing → ingest/clean/validate → features for the last three days → recommender and forecaster trained on
them (promoted by hand when the tiny data cannot pass a gate) → scored → published to a SQLite serving store.
Shared by the incremental tests and ``bench/bench_incremental.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from jobs import features as features_job
from models.forecast import pipeline as forecast
from models.recommend import pipeline as recommend
from models.registry import ModelRegistry
from sample_shop.generate import MANIFEST_NAME, GeneratorConfig, generate
from serving.datasets import USER_LISTS
from serving.publish import publish_dataset
from shopml.config.forecast import BoosterConfig, ForecastConfig
from shopml.config.recommend import AlsConfig, RankerConfig, RecommendConfig, RetrievalConfig
from shopml.lake import Lake
from shopml.settings import Settings, load_settings
from tests.shop import run_foundation

TINY_SHOP = {"users": 120, "skus": 40, "categories": 4, "days": 6, "events_per_day": 1200, "seed": 5}
# Sizes of the nightly models: small enough for seconds, the same code paths as production.
RECOMMEND_CONFIG = RecommendConfig(
    top_k=10,
    eval_days=1,
    retrieval=RetrievalConfig(embedding_dim=8, epochs=3, batch_size=256, n_candidates=30),
    ranker=RankerConfig(n_estimators=10, early_stopping_rounds=5),
    als=AlsConfig(enabled=False),
    cpu_threads=1,
)
FORECAST_CONFIG = ForecastConfig(
    history_days=28,
    train_window_days=7,
    train_origin_step_days=1,
    calibration_days=0,
    booster=BoosterConfig(n_estimators=10, n_jobs=1),
)


@dataclass
class ServingShop:
    settings: Settings
    lake: Lake
    generator: GeneratorConfig
    scored_date: date
    nightly_run_id: str

    @property
    def stream_dir(self) -> Path:
        return self.settings.landing / "events" / "stream"

    def stream_day_ts(self, hour: int, minute: int = 0) -> datetime:
        """A time on the day after the nightly run: when the stream delivers."""
        return datetime.combine(self.scored_date + timedelta(days=1), time(hour, minute), tzinfo=UTC)


def shop_settings(root: Path, **overrides: Any) -> Settings:
    """Settings of a shop under ``root`` (also of a copy of it), with the tiny model sizes."""
    return load_settings(
        var_root=root / "var",
        landing_root=root / "landing",
        spark_shuffle_partitions=2,
        spark_master="local[2]",
        recommend=RECOMMEND_CONFIG,
        forecast=FORECAST_CONFIG,
        **overrides,
    )


def _promote(registry: ModelRegistry, name: str, version: str) -> None:
    if registry.current(name) is None or registry.current(name).version != version:
        registry.promote(name, version)


def run_nightly(shop: ServingShop, run_id: str) -> dict[str, Any]:
    """Train, score and publish the user lists and inventory for ``shop.scored_date`` as the nightly DAG does.

    The recommender is not evaluated: three days of a tiny shop cannot show that the model beats its
    baselines, and scoring would then serve the best baseline, whose lists the refresh leaves alone. The
    model is promoted by hand and served; the scoring and refresh paths are what matters here.
    """
    settings, day = shop.settings, shop.scored_date
    registry = ModelRegistry(settings.models)
    results = {}
    for task in (recommend.train_retrieval, recommend.train_ranker):
        results[task.__name__] = task(day, run_id, settings)
    _promote(registry, recommend.MODEL_NAME, results["train_retrieval"]["model_version"])
    results["train_forecaster"] = forecast.train_forecaster(day, run_id, settings)
    _promote(registry, forecast.MODEL_NAME, results["train_forecaster"]["model_version"])
    results["score_forecasts"] = forecast.score_forecasts(day, run_id, settings)
    results["score_recommendations"] = recommend.score_recommendations(day, run_id, settings)
    for dataset in ("inventory", *USER_LISTS.values()):
        results[f"publish_{dataset}"] = publish_dataset(dataset, day, run_id, settings, triggered_by="nightly_retrain")
    return results


def build_serving_shop(root: Path, spark, **overrides: Any) -> ServingShop:
    """Land a tiny shop, run the nightly foundation, features, models and publish for its last full day.

    The generator writes one day more than the nightly processes: the stream delivers that day.
    """
    generator = GeneratorConfig(**(TINY_SHOP | overrides))
    generate(generator, root / "landing")
    settings = shop_settings(root)
    shop = ServingShop(settings, Lake(settings, spark), generator, generator.end_date - timedelta(days=1), "nightly-1")
    run_foundation(shop.lake, shop.scored_date, generator.start_date)
    features_job.run(shop.scored_date, "nightly-1", shop.scored_date - timedelta(days=2), lake=shop.lake)
    run_nightly(shop, "nightly-1")
    return shop


def open_shop(root: Path, spark, **settings_overrides: Any) -> ServingShop:
    """A shop that ``build_serving_shop`` built under ``root`` (or a copy of one)."""
    manifest = json.loads((root / "landing" / MANIFEST_NAME).read_text())
    generator = GeneratorConfig(**manifest["config"])
    settings = shop_settings(root, **settings_overrides)
    return ServingShop(settings, Lake(settings, spark), generator, generator.end_date - timedelta(days=1), "nightly-1")


def write_batch(shop: ServingShop, batch_ts: datetime, events: list[dict[str, Any] | str], index: int = 0) -> Path:
    """A hand-written micro-batch file, named as the stream producer names them (atomic rename).

    Events are dicts (written as JSON) or raw lines (to plant malformed ones).
    """
    folder = shop.stream_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"batch-{batch_ts:%Y%m%dT%H%M%SZ}-{index:04d}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in events))
    tmp.replace(path)
    return path


def event(
    event_id: str,
    event_type: str,
    sku: str,
    ts: datetime,
    user_id: str | None = None,
    quantity: int | None = None,
    unit_price: str | None = None,
) -> dict[str, Any]:
    """One stream event in the landing schema (purchases need a quantity and a price)."""
    if event_type in ("purchase", "return"):
        quantity = quantity or 1
        unit_price = unit_price or "9.99"
    return {
        "event_id": event_id,
        "event_type": event_type,
        "user_id": user_id,
        "session_id": f"s-{event_id}",
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_price,
        "currency": "GBP",
        "event_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "order_id": f"o-{event_id}" if event_type == "purchase" else None,
        "channel": "web",
        "user_agent": "Mozilla/5.0",
    }
