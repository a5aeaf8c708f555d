"""Recommender benchmark: the nightly tasks on a synthetic shop with planted taste groups.

Full size is 50k users × 10k SKUs (``--quick``: 5k × 1k). Reports retrieval time per
epoch and in total, ranker training time, scoring throughput (users/s), and quality
(NDCG@10, recall@20, …) of the model next to the four baselines, with Spark MLlib ALS
fitted and timed on the same split in the same run.

    python -m bench.bench_recommend [--quick] [--threads N] [--device cpu|cuda|auto]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch

from models.recommend import pipeline
from models.recommend.synthetic import simulate_shop, write_synthetic_lake
from models.registry import ModelRegistry
from shopml.config.recommend import RecommendConfig
from shopml.lake import Lake
from shopml.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "recommend.json"
QUALITY = ("ndcg@10", "recall@20", "precision@10", "map@10", "hit_rate@10", "coverage@20", "diversity@20")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k users × 1k SKUs smoke size")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch/XGBoost (0: all cores)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=None, help="override retrieval epochs")
    parser.add_argument("--no-als", action="store_true", help="skip the Spark ALS baseline")
    parser.add_argument("--var", type=Path, default=None, help="var root to use (default: a temporary folder)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    users = args.users or (5_000 if args.quick else 50_000)
    items = args.items or (1_000 if args.quick else 10_000)
    var = args.var or Path(tempfile.mkdtemp(prefix="bench-recommend-"))
    settings = load_settings(var_root=var, device=args.device)
    config = RecommendConfig(cpu_threads=args.threads)
    if args.epochs is not None:
        config = config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"epochs": args.epochs})})
    if args.no_als:
        config = config.model_copy(update={"als": config.als.model_copy(update={"enabled": False})})

    started = time.perf_counter()
    shop = simulate_shop(users, items, seed=settings.seed)
    run_date = shop.run_date
    write_synthetic_lake(
        Lake(settings), shop, [run_date - timedelta(days=2 * config.eval_days), run_date - timedelta(days=7), run_date]
    )
    data_seconds = time.perf_counter() - started

    timings, results = {}, {}
    for task in pipeline.NIGHTLY_TASKS:
        task_started = time.perf_counter()
        results[task.__name__] = task(run_date, "bench", settings, config)
        timings[task.__name__] = round(time.perf_counter() - task_started, 2)

    meta = ModelRegistry(settings.models).get(pipeline.MODEL_NAME, results["train_retrieval"]["model_version"]).metadata
    serve_fit = meta["retrieval"]["serve"]
    epochs = [epoch["seconds"] for epoch in serve_fit["history"]]
    evaluation_seconds = meta["evaluation"]["seconds"]
    model_only = timings["train_retrieval"] + timings["train_ranker"] + timings["score_recommendations"]
    figures = {
        "users": users,
        "skus": items,
        "events": len(shop.events),
        "interactions_at_T": serve_fit["interactions"],
        "device": results["train_retrieval"]["device"],
        "cpu_threads": args.threads or torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads available",
        "data_generation_s": round(data_seconds, 1),
        "retrieval": {
            "fits": len(pipeline.RETRIEVAL_FITS),
            "epochs": len(epochs),
            "epoch_s_mean": round(sum(epochs) / max(len(epochs), 1), 2),
            "total_s_all_fits": timings["train_retrieval"],
        },
        "ranker": {"train_s": timings["train_ranker"], **{k: meta["ranker"][k] for k in ("rows", "best_iteration")}},
        "evaluation_s": timings["evaluate_and_gate"],
        "evaluation_breakdown_s": evaluation_seconds,
        "als_fit_and_score_s": evaluation_seconds.get("als"),
        "scoring": {
            "seconds": timings["score_recommendations"],
            "users": results["score_recommendations"]["users"],
            "users_per_s": round(results["score_recommendations"]["users"] / timings["score_recommendations"], 1),
        },
        "nightly_train_and_score_s": round(model_only, 1),
        "nightly_total_with_evaluation_s": round(sum(timings.values()), 1),
        "promoted": results["evaluate_and_gate"]["promoted"],
        "gate_reason": results["evaluate_and_gate"]["reason"],
        "quality": {name: {m: round(v[m], 4) for m in QUALITY} for name, v in meta["metrics"].items()},
        "eval_users": meta["evaluation"]["users"],
    }
    if "als" in meta["metrics"]:
        model, als = meta["metrics"]["model"], meta["metrics"]["als"]
        figures["ahead_of_als"] = {m: model[m] > als[m] for m in ("ndcg@10", "recall@20")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
