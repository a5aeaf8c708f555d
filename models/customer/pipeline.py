"""Nightly customer-score tasks: train a candidate, evaluate and gate it, score every customer.

Each task function is what one Airflow task calls (run date and run id in, a small JSON summary
out), on the registry's convention (``models/registry.py``). Point in time: a run for day D reads
order lines dated D or earlier; a head's training labels end before its evaluation's as-of day
(``features.as_of_days``), and the evaluation's labels end on D.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from models.customer.btyd import BetaGeo, FitError
from models.customer.evaluation import (
    HEADS,
    Head,
    baseline_predictions,
    btyd_prediction,
    calibration_table,
    head_metrics,
    lift_table,
    passes_gate,
    rfm_segment,
)
from models.customer.features import LINE_COLUMNS, LOOKBACK_DAYS, as_of_days, customer_orders, outcomes, snapshot
from models.customer.model import CustomerModel, fit_head
from models.device import resolve_device
from models.registry import CANDIDATE, ModelRegistry, ModelVersion, Status, metric_rows
from shopml.catalog import GOLD_CUSTOMER_SCORES, OPS_MODEL_METRICS, SILVER_ORDER_LINES, spec
from shopml.config.customer import CustomerConfig
from shopml.errors import PermanentError, Skipped
from shopml.lake import Lake, date_window
from shopml.notify import alert
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

MODEL_NAME = "customer"
ORDER_LINES = SILVER_ORDER_LINES
SCORES_TABLE = GOLD_CUSTOMER_SCORES
METRICS_TABLE = OPS_MODEL_METRICS
# What scores a head while no customer model with that head has passed its gate.
FALLBACK_VERSION = "baseline:bgnbd"
SCORES_SCHEMA = spec(SCORES_TABLE).arrow_schema()
HEADS_BY_NAME = {head.name: head for head in HEADS}


class CustomerScoreError(PermanentError, ValueError):
    """Customer scores could not be produced (no order history to fit even the baseline on)."""


# ---- I/O helpers ------------------------------------------------------------------------------


def _history_days(config: CustomerConfig) -> int:
    """Days of order lines a run reads: a year before the oldest training snapshot of the longest head."""
    longest = max(head.horizon_days for head in HEADS)
    return LOOKBACK_DAYS + 2 * longest + config.step_days * (config.snapshots - 1)


def read_orders(
    lake: Lake, run_date: date, config: CustomerConfig, version: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer orders and returns dated up to ``run_date`` (never later), optionally at a table version."""
    first = run_date - timedelta(days=_history_days(config))
    window = date_window("event_date", run_date, first)
    lines = lake.read_pandas(ORDER_LINES, columns=list(LINE_COLUMNS), filter=window, version=version)
    return customer_orders(lines)


def labelled(
    head: Head, orders: pd.DataFrame, returns: pd.DataFrame, days: list[date]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The head's population at each as-of day, stacked, with what each customer did in the horizon after."""
    frames, labels = [], []
    for as_of in days:
        frame = snapshot(orders, returns, as_of)
        frame = frame[head.population(frame)].reset_index(drop=True)
        frames.append(frame)
        labels.append(head.label(outcomes(orders, frame["user_id"], as_of, head.horizon_days)))
    return pd.concat(frames, ignore_index=True), np.concatenate(labels)


def _plan(head: Head, orders: pd.DataFrame, run_date: date, config: CustomerConfig) -> tuple[date | None, list[date]]:
    first_order = orders["order_date"].min().date()
    return as_of_days(
        run_date, first_order, head.horizon_days, config.snapshots, config.step_days, config.min_history_days
    )


def _find_candidate(registry: ModelRegistry, run_id: str) -> ModelVersion:
    model = registry.trained_by(MODEL_NAME, run_id)
    if model is None:
        raise Skipped(
            f"no {MODEL_NAME} candidate trained by run {run_id}: train_customer_models skipped (see why there)"
        )
    return model


# ---- DAG tasks --------------------------------------------------------------------------------


def train_customer_models(
    run_date: date, run_id: str, settings: Settings | None = None, config: CustomerConfig | None = None
) -> dict:
    """Fit every head whose labels have matured (history of twice its horizon plus ``min_history_days``)."""
    settings = settings or get_settings()
    config = config or settings.customer
    lake = Lake(settings)
    if not lake.exists(ORDER_LINES):
        raise Skipped(f"{ORDER_LINES} does not exist yet: nothing to train customer scores on")
    versions = {ORDER_LINES: lake.version(ORDER_LINES)}
    orders, returns = read_orders(lake, run_date, config, version=versions[ORDER_LINES])
    if orders.empty:
        raise Skipped(f"no customer orders up to {run_date}: nothing to train customer scores on")
    device = resolve_device(settings.device.value)
    boosters, heads, skipped = {}, {}, {}
    history = (pd.Timestamp(run_date) - orders["order_date"].min()).days + 1
    for head in HEADS:
        evaluation, days = _plan(head, orders, run_date, config)
        if evaluation is None:
            needed = 2 * head.horizon_days + config.min_history_days + 1
            skipped[head.name] = (
                f"needs {needed} days of order history for {head.horizon_days}-day labels, has {history}"
            )
            continue
        frame, labels = labelled(head, orders, returns, days)
        if head.kind == "classifier" and len(np.unique(labels)) < 2:
            skipped[head.name] = f"every training label is {labels[0]:.0f}: nothing to learn"
            continue
        boosters[head.name] = fit_head(head, frame, labels, config.booster, device, settings.seed)
        heads[head.name] = {
            "evaluation_as_of": evaluation.isoformat(),
            "training_as_of": [day.isoformat() for day in days],
            "train_rows": len(frame),
            "positive_share": float(np.mean(labels > 0)),
        }
    if not boosters:
        raise Skipped("no customer-score head has enough labelled history: " + "; ".join(skipped.values()))
    registry = ModelRegistry(settings.models)
    candidate = registry.create_version(MODEL_NAME, run_id)
    CustomerModel(boosters).save(candidate.path)
    registry.save_metadata(
        candidate,
        {
            "run_id": run_id,
            "run_date": run_date.isoformat(),
            "status": Status.CANDIDATE,
            "config": config.model_dump(mode="json"),
            "heads": heads,
            "skipped_heads": skipped,
            "table_versions": versions,
            "device": device,
        },
    )
    log.info("trained %s %s: heads %s; skipped %s", MODEL_NAME, candidate.version, list(heads), skipped)
    return {"model_version": candidate.version, "heads": heads, "skipped_heads": skipped, "device": device}


def _evaluate_head(
    head: Head, model: CustomerModel, orders: pd.DataFrame, returns: pd.DataFrame, plan: dict
) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Every candidate's metrics on the head's evaluation day, and the metric rows (tables included)."""
    train, train_labels = labelled(head, orders, returns, [date.fromisoformat(d) for d in plan["training_as_of"]])
    frame, labels = labelled(head, orders, returns, [date.fromisoformat(plan["evaluation_as_of"])])
    predictions = {CANDIDATE: model.predict(head, frame), **baseline_predictions(head, train, train_labels, frame)}
    metrics = {name: head_metrics(head, labels, predicted) for name, predicted in predictions.items()}
    rows = [
        {"candidate": name, "metric": f"{head.name}.{metric}", "segment": "overall", "value": value}
        for name, values in metrics.items()
        for metric, value in values.items()
    ]
    for name, predicted in predictions.items():
        if head.kind == "classifier":
            table = calibration_table(labels, predicted)
            for row in table.itertuples():
                for column in ("predicted", "observed"):
                    metric = f"{head.name}.calibration_{column}"
                    rows.append(
                        {
                            "candidate": name,
                            "metric": metric,
                            "segment": f"bin_{row.bin:02d}",
                            "value": getattr(row, column),
                        }
                    )
        else:
            for row in lift_table(labels, predicted).itertuples():
                rows.append(
                    {
                        "candidate": name,
                        "metric": f"{head.name}.lift",
                        "segment": f"decile_{row.decile:02d}",
                        "value": row.lift,
                    }
                )
    return metrics, rows


def evaluate_and_gate(run_date: date, run_id: str, settings: Settings | None = None) -> dict:
    """Judge each trained head on days it never saw against the recency rule, RFM and BG/NBD.

    A head serves only when it beats its best baseline (and, a classifier, is calibrated); the
    candidate is promoted when one head does, and scoring takes the other heads from BG/NBD.
    """
    settings = settings or get_settings()
    lake = Lake(settings)
    registry = ModelRegistry(settings.models)
    candidate = _find_candidate(registry, run_id)
    meta = candidate.metadata
    config = CustomerConfig.model_validate(meta["config"])
    orders, returns = read_orders(lake, run_date, config, version=meta["table_versions"][ORDER_LINES])
    model = CustomerModel.load(candidate.path, list(meta["heads"]), resolve_device(settings.device.value))
    verdicts, rows, summary = {}, [], {}
    for name, plan in meta["heads"].items():
        head = HEADS_BY_NAME[name]
        metrics, head_rows = _evaluate_head(head, model, orders, returns, plan)
        rows += head_rows
        verdicts[name] = passes_gate(head, metrics, config.max_calibration_error)
        summary[name] = {candidate_name: values[head.primary] for candidate_name, values in metrics.items()}
        if head.kind == "classifier":
            summary[name]["calibration_error"] = metrics[CANDIDATE]["calibration_error"]
    served = [name for name, (ok, _) in verdicts.items() if ok]
    passed = bool(served)
    verdict = "; ".join(text for _, text in verdicts.values())
    reason = registry.judge(
        MODEL_NAME, candidate, passed, verdict, f" for {', '.join(served)} (BG/NBD scores the rest)"
    )
    log.info("%s gate: %s", MODEL_NAME, reason)
    registry.update_metadata(
        candidate,
        status=Status.PROMOTED if passed else Status.REJECTED,
        gate_reason=reason,
        metrics=summary,
        served_heads=served,
    )
    rows = metric_rows(pd.DataFrame(rows), MODEL_NAME, run_id, candidate.version, passed)
    lake.write_arrow(rows, METRICS_TABLE, mode="append")
    current = registry.current(MODEL_NAME)
    return {
        "promoted": passed,
        "reason": reason,
        "model_version": candidate.version,
        "current_version": current.version if current else None,
        "served_heads": served,
        "metrics": summary,
        "skipped_heads": meta["skipped_heads"],
    }


def score_customers(run_date: date, run_id: str, settings: Settings | None = None) -> dict:
    """Score every customer with an order in the year to ``run_date``: each head by the promoted model when
    it has that head, else by BG/NBD (labelled in ``scored_by``, and alerted while no model passed)."""
    settings = settings or get_settings()
    lake = Lake(settings)
    if not lake.exists(ORDER_LINES):
        raise Skipped(f"{ORDER_LINES} does not exist yet: no customer to score")
    current = ModelRegistry(settings.models).current(MODEL_NAME)
    meta = current.metadata if current else {}
    config = CustomerConfig.model_validate(meta["config"]) if current else settings.customer
    orders, returns = read_orders(lake, run_date, config)
    frame = snapshot(orders, returns, run_date)
    if frame.empty:
        raise Skipped(f"no customer ordered in the {LOOKBACK_DAYS} days to {run_date}: no customer to score")
    heads = list(meta.get("served_heads", []))
    model = CustomerModel.load(current.path, heads, resolve_device(settings.device.value)) if heads else None
    scores, scored_by, baseline = {}, [], None
    for head in HEADS:
        if head.name in heads:
            scores[head.column] = model.predict(head, frame)
            scored_by.append(f"{head.name}=model")
            continue
        try:
            baseline = baseline or BetaGeo.fit(frame)
            scores[head.column] = btyd_prediction(head, baseline, frame)
        except FitError as exc:
            raise CustomerScoreError(
                f"cannot score {head.column} for {run_date} ({len(frame)} customers): {exc}"
            ) from exc
        scored_by.append(f"{head.name}=bgnbd")
    churn = HEADS_BY_NAME["churn"]
    scores[churn.column] = np.where(churn.population(frame), scores[churn.column], np.nan)
    explained = next((name for name in ("churn", "purchase") if name in heads), None)
    reasons = model.reasons(explained, frame, config.reasons) if explained else [[] for _ in range(len(frame))]
    version = current.version if heads else FALLBACK_VERSION
    if not heads:
        alert(
            "model_fallback",
            summary=f"no customer model has passed its gate yet: scoring with {FALLBACK_VERSION} for {run_date}",
            details={"customers": len(frame)},
            settings=settings,
        )
    rows = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str),
            **scores,
            "rfm_segment": rfm_segment(frame),
            "top_reasons": reasons,
            "scored_by": " ".join(scored_by),
            "model_version": version,
            "run_id": run_id,
            "generated_at": pd.Timestamp(datetime.now(UTC)),
            "scored_date": run_date,
        }
    ).sort_values("user_id")
    table = pa.Table.from_pandas(rows, schema=SCORES_SCHEMA, preserve_index=False)
    lake.write_arrow(table, SCORES_TABLE, replace_where=f"scored_date = '{run_date.isoformat()}'")
    return {
        "model_version": version,
        "customers": len(rows),
        "scored_by": " ".join(scored_by),
        "mean_p_purchase_30d": round(float(np.mean(scores["p_purchase_30d"])), 4),
    }
