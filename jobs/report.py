"""The nightly run report: one static HTML page per run date for the on-call engineer and the analyst.

``<reports_root>/<YYYY-MM-DD>/index.html`` holds data volumes and quarantine
counts against the trailing week, validation results, feature freshness, model
metrics against baselines and the previous model, forecast-vs-actual plots,
inventory-status counts and what was published. The page is self-contained:
plots are embedded PNGs, there is no script and nothing loads from the network,
so it opens from a file share or a CI artefact as it is.

Everything is as of the run: the run's logical date and run id pick the rows,
never the wall clock, so a backfill or a past-dated run (``make run`` on a
shop whose data ends years ago) reports what that run did. Model metrics and
publishes carry no date column: a model evaluation's logical date is its
version's ``run_date`` in the model registry, a publish's is the scored date
its version id starts with; wall-clock stamps only order reruns of one date.

Tables are read through the lake without Spark. A section whose table does not
exist yet (no inventory feed, no model trained so far) says "not available";
a section that fails says so with the error, which is also logged, and the rest
of the report is still written.

``python -m jobs.report --date YYYY-MM-DD`` builds one by hand.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import math
import numbers
import os
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from models.registry import ModelRegistry, RegistryError
from shopml.catalog import (
    GOLD_CUSTOMER_SCORES,
    GOLD_DEMAND_FORECASTS,
    GOLD_INVENTORY_PLAN,
    GOLD_ITEM_COOCCURRENCE,
    GOLD_ITEM_FEATURES,
    GOLD_RECOMMENDATIONS,
    GOLD_SIMILAR_ITEMS,
    GOLD_SKU_DAILY_DEMAND,
    GOLD_USER_FEATURES,
    GOLD_USER_ITEM_INTERACTIONS,
    OPS_MODEL_METRICS,
    OPS_PUBLISH_AUDIT,
    OPS_QUARANTINE,
    OPS_ROW_ACCOUNTING,
    OPS_VALIDATION_RESULTS,
    SILVER_ORDER_LINES,
)
from shopml.config.report import ReportConfig
from shopml.lake import Lake, date_window
from shopml.settings import Settings, get_settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not available"
Status = Literal["ok", "attention", "not available", "failed"]

FRESHNESS_TABLES: dict[str, str] = {
    GOLD_USER_FEATURES: "feature_date",
    GOLD_ITEM_FEATURES: "feature_date",
    GOLD_USER_ITEM_INTERACTIONS: "feature_date",
    GOLD_ITEM_COOCCURRENCE: "feature_date",
    GOLD_SKU_DAILY_DEMAND: "feature_date",
    GOLD_RECOMMENDATIONS: "scored_date",
    GOLD_SIMILAR_ITEMS: "scored_date",
    GOLD_DEMAND_FORECASTS: "scored_date",
    GOLD_INVENTORY_PLAN: "scored_date",
}
PLAN_STATUSES = ("ok", "reorder", "at_risk", "overstock")
_LOWER_IS_BETTER = ("wape", "mase", "mae", "rmse", "pinball", "fallback_share", "brier", "calibration_error")
_COLOURS = {"model": "#1f77b4", "past": "#ff7f0e", "actual": "#222222", "quarantine": "#d62728"}


@dataclass(frozen=True)
class ReportRun:
    """What every section needs: where to read, which run, how to compare."""

    lake: Lake
    run_date: date
    run_id: str
    config: ReportConfig
    seed: int = 0


@dataclass(frozen=True)
class Section:
    title: str
    status: Status
    body: str

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower())


# ---- reading ------------------------------------------------------------------------------------


def _read(lake: Lake, table: str, columns: Sequence[str] | None = None, filter=None) -> pd.DataFrame | None:
    """The table as pandas, or None when no job has written it yet."""
    if not lake.exists(table):
        return None
    return lake.read_pandas(table, columns=columns, filter=filter)


def _rows_on(lake: Lake, table: str, column: str, day: date) -> int:
    """Rows of one date partition, streamed: reads only that partition's files, never the whole column."""
    return sum(batch.num_rows for batch in lake.iter_batches(table, columns=[column], filter=_on(column, [day])))


def partition_days(lake: Lake, table: str, column: str, last: date, days: int, first_only: bool = False) -> dict:
    """Rows per date partition among the ``days`` days up to ``last``, latest first (stop at the first hit if asked).

    Date-partitioned snapshots (a full user table per feature_date) make reading the date column of
    a window as costly as reading the window; probing partition by partition stays cheap.
    """
    found = {}
    for offset in range(days):
        day = last - timedelta(days=offset)
        if rows := _rows_on(lake, table, column, day):
            found[day] = rows
            if first_only:
                break
    return found


def _on(column: str, values: Sequence[Any]):
    import pyarrow.compute as pc

    return pc.field(column).isin(list(values))


# ---- pure summaries -----------------------------------------------------------------------------


def summarise_volumes(accounting: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """Per dataset: the run date's counts next to the daily mean of the earlier days in the frame."""
    frame = accounting.fillna(
        {c: 0 for c in ("landed", "silver", "quarantined_clean", "quarantined_validate", "duplicates", "bots")}
    )
    frame = frame.assign(quarantined=frame["quarantined_clean"] + frame["quarantined_validate"])
    counts = ["landed", "silver", "quarantined", "duplicates", "bots"]
    today = frame[frame["landing_date"] == run_date].groupby("dataset")[counts].sum()
    before = frame[frame["landing_date"] < run_date]
    trailing = before.groupby("dataset")[["landed", "silver", "quarantined"]].sum()
    days = before.groupby("dataset")["landing_date"].nunique()
    trailing = trailing.div(days, axis=0).add_suffix("_trailing_mean")
    out = today.join(trailing, how="outer").reset_index()
    out["silver_change"] = out["silver"] / out["silver_trailing_mean"].where(out["silver_trailing_mean"] > 0) - 1
    return out.sort_values("dataset", ignore_index=True)


def summarise_quarantine(quarantine: pd.DataFrame, run_date: date, trailing_days: int) -> pd.DataFrame:
    """Rows quarantined per dataset, stage and reason on the run date and per day over the trailing week."""
    keys = ["dataset", "stage", "reason"]
    today = quarantine[quarantine["landing_date"] == run_date].groupby(keys).size().rename("rows")
    before = quarantine[quarantine["landing_date"] < run_date].groupby(keys).size() / trailing_days
    out = pd.concat([today, before.rename("trailing_daily_mean")], axis=1).fillna(0).reset_index()
    out["rows"] = out["rows"].astype("int64")
    return out.sort_values(
        ["rows", "trailing_daily_mean", *keys], ascending=[False, False, True, True, True]
    ).reset_index(drop=True)


def summarise_validation(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per suite (its latest validation only): expectations, failures by severity; and the failed expectations."""
    latest = results[results["validated_at"] == results.groupby("suite")["validated_at"].transform("max")]
    failed = latest[~latest["success"].astype(bool)]
    by_suite = latest.groupby("suite").agg(expectations=("expectation", "size"), passed=("success", "sum"))
    by_suite["critical_failed"] = failed[failed["severity"] == "critical"].groupby("suite").size()
    by_suite["warning_failed"] = failed[failed["severity"] != "critical"].groupby("suite").size()
    by_suite["unexpected_rows"] = failed.groupby("suite")["unexpected_count"].sum()
    by_suite = by_suite.fillna(0).astype("int64").reset_index()
    failures = failed[["suite", "expectation", "column", "severity", "unexpected_count", "observed_value"]]
    return by_suite, failures.sort_values(["severity", "suite", "expectation"], ignore_index=True)


def summarise_freshness(
    latest: Mapping[str, tuple[date | None, int] | None], run_date: date, max_lag_days: int
) -> pd.DataFrame:
    """Per table: latest date up to the run date, rows on it, lag in days and fresh/stale/not available.

    ``latest`` maps a table to None when it does not exist and to (None, 0) when it has no recent date.
    """
    rows = []
    for table, found in latest.items():
        day, count = found if found is not None else (None, None)
        lag = (run_date - day).days if day is not None else None
        if found is None:
            status = NOT_AVAILABLE
        elif lag is None:
            status = "none recent"
        else:
            status = "fresh" if lag <= max_lag_days else "stale"
        rows.append({"table": table, "latest": day, "rows": count, "lag_days": lag, "status": status})
    return pd.DataFrame(rows, columns=["table", "latest", "rows", "lag_days", "status"])


def metric_label(metric: str, k: Any) -> str:
    return metric if k is None or pd.isna(k) or "@" in metric else f"{metric}@{int(k)}"


def is_model(candidate: str, model_name: str) -> bool:
    """The trained model's rows (``model`` for the recommender, the model's name for the forecaster); the rest are baselines."""
    return candidate in ("model", model_name)


def _best(values: pd.Series, metric: str) -> str | None:
    values = values.dropna()
    if values.empty:
        return None
    name = metric.rsplit(".", 1)[-1]  # a head's metric: churn.brier
    if name.startswith("bias"):
        return str(values.abs().idxmin())
    return str(values.idxmin() if name.startswith(_LOWER_IS_BETTER) else values.idxmax())


def label_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics with a ``label`` (metric@k) and an ``is_model`` flag."""
    return metrics.assign(
        label=[metric_label(m, k) for m, k in zip(metrics["metric"], metrics["k"], strict=True)],
        is_model=[is_model(c, n) for c, n in zip(metrics["candidate"], metrics["model_name"], strict=True)],
    )


def date_metrics(
    metrics: pd.DataFrame, run_dates: Mapping[tuple[str, str], date], run_id: str, run_date: date
) -> pd.DataFrame:
    """Metrics with ``run_date``, the logical date of the run that evaluated each row, and none after ``run_date``.

    ``run_dates`` maps (model_name, model_version) to the date the version was trained for. The run's own
    rows keep ``run_date`` when their version is unknown; other rows of unknown date are left out, since
    nothing says whether they come before the run.
    """
    dated = metrics.assign(
        run_date=[
            run_dates.get((name, version), run_date if evaluated_by == run_id else None)
            for name, version, evaluated_by in zip(
                metrics["model_name"], metrics["model_version"], metrics["run_id"], strict=True
            )
        ]
    )
    known = dated[dated["run_date"].notna()]
    return known[known["run_date"] <= run_date].reset_index(drop=True)


def evaluations_as_of(metrics: pd.DataFrame, run_id: str, run_date: date) -> pd.DataFrame:
    """One model's evaluations up to the run (columns run_id, run_date, evaluated_at, promoted), oldest first.

    ``metrics`` holds one model's rows with their ``run_date`` (see ``date_metrics``). Evaluations are
    ordered by logical date; ``evaluated_at`` only orders reruns of the same date. The last one is the
    run's own, or the latest up to ``run_date`` when the run evaluated nothing; later ones are left out.
    """
    overall = metrics[(metrics["segment"] == "overall") & (metrics["run_date"] <= run_date)]
    runs = (
        overall.assign(promoted_model=overall["promoted"].astype(bool) & overall["is_model"])
        .groupby(["run_id", "run_date"], as_index=False)
        .agg(evaluated_at=("evaluated_at", "min"), promoted=("promoted_model", "any"))
        .sort_values(["run_date", "evaluated_at", "run_id"], ignore_index=True)
    )
    own = runs.index[(runs["run_id"] == run_id) & (runs["run_date"] == run_date)]
    return runs.loc[: own[-1]] if len(own) else runs


def compare_metrics(metrics: pd.DataFrame, run_id: str, run_date: date) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One model's overall metrics of one evaluation against its best baseline and the previous promoted model.

    ``metrics`` holds one model's rows (see ``label_metrics`` and ``date_metrics``). The evaluation is
    ``run_id``'s of ``run_date``, or the latest up to ``run_date`` when that run evaluated nothing. The
    previous model is the last one promoted before it, by logical date (see ``evaluations_as_of``).
    """
    overall = metrics[metrics["segment"] == "overall"]
    runs = evaluations_as_of(metrics, run_id, run_date)
    if runs.empty:
        raise ValueError(f"no evaluation up to {run_date}")

    def rows_of(evaluation: Any) -> pd.DataFrame:
        return overall[(overall["run_id"] == evaluation.run_id) & (overall["run_date"] == evaluation.run_date)]

    current_run = runs.iloc[-1]
    current = rows_of(current_run)
    model_rows = current[current["is_model"]]
    earlier = runs.iloc[:-1]
    earlier = earlier[earlier["promoted"]]
    previous_run = earlier.iloc[-1] if not earlier.empty else None
    previous = pd.DataFrame(columns=["label", "value", "model_version"]).set_index("label")
    if previous_run is not None:
        previous_rows = rows_of(previous_run)
        previous = previous_rows[previous_rows["is_model"]].set_index("label")
    baselines = current[~current["is_model"]].pivot_table(index="label", columns="candidate", values="value")
    rows = []
    for row in model_rows.sort_values("label").itertuples():
        best = _best(baselines.loc[row.label], row.label) if row.label in baselines.index else None
        baseline_value = baselines.loc[row.label, best] if best else None
        previous_value = previous["value"].get(row.label) if previous_run is not None else None
        rows.append(
            {
                "metric": row.label,
                "model": row.value,
                "best_baseline": best,
                "baseline_value": baseline_value,
                "vs_baseline": None if baseline_value is None else row.value - baseline_value,
                "previous_model": previous_value,
                "vs_previous": None if previous_value is None else row.value - previous_value,
            }
        )
    info = {
        "run_id": current_run["run_id"],
        "run_date": current_run["run_date"],
        "version": model_rows["model_version"].iloc[0] if not model_rows.empty else None,
        "promoted": bool(current_run["promoted"]),
        "evaluated_at": current_run["evaluated_at"],
        "previous_run": previous_run["run_id"] if previous_run is not None else None,
        "previous_run_date": previous_run["run_date"] if previous_run is not None else None,
        "previous_version": previous["model_version"].iloc[0] if previous_run is not None else None,
    }
    columns = ["metric", "model", "best_baseline", "baseline_value", "vs_baseline", "previous_model", "vs_previous"]
    return pd.DataFrame(rows, columns=columns), info


def metric_history(metrics: pd.DataFrame, evaluations: pd.DataFrame, label: str, runs: int) -> pd.DataFrame:
    """One metric per logical date (rows) and candidate (columns) over the last ``runs`` evaluations.

    ``evaluations`` are the model's evaluations up to the run (see ``evaluations_as_of``); of reruns of
    one date, the last one stands for the date.
    """
    shown = evaluations.drop_duplicates("run_date", keep="last").tail(runs)
    chosen = metrics[(metrics["segment"] == "overall") & (metrics["label"] == label)]
    chosen = chosen.merge(shown[["run_id", "run_date"]], on=["run_id", "run_date"])
    if chosen.empty:
        return pd.DataFrame()
    return chosen.pivot_table(index="run_date", columns="candidate", values="value").sort_index()


def pick_skus(
    units: pd.Series, candidates: Sequence[str], top: int, n_random: int, seed: str
) -> tuple[list[str], list[str]]:
    """The ``top`` best sellers (units per SKU, ties by SKU) and ``n_random`` others drawn reproducibly."""
    ranked = units[units > 0].reset_index().sort_values([units.name or 0, "sku"], ascending=[False, True])
    best = [str(sku) for sku in ranked["sku"].head(top)]
    rest = sorted(set(map(str, candidates)) - set(best))
    return best, sorted(random.Random(seed).sample(rest, min(n_random, len(rest))))


def forecast_accuracy(forecast: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Per SKU, over the days a past forecast overlaps actuals: units, P50 sum, WAPE and P10-P90 coverage."""
    joined = forecast.merge(actuals, left_on=["sku", "forecast_date"], right_on=["sku", "day"], how="inner")
    joined = joined.assign(
        abs_error=(joined["units"] - joined["p50"]).abs(),
        covered=(joined["units"] >= joined["p10"]) & (joined["units"] <= joined["p90"]),
    )
    out = joined.groupby("sku").agg(
        days=("day", "size"),
        actual=("units", "sum"),
        p50=("p50", "sum"),
        abs_error=("abs_error", "sum"),
        coverage_p10_p90=("covered", "mean"),
    )
    out["wape"] = out["abs_error"] / out["actual"].where(out["actual"] > 0)
    return out.drop(columns="abs_error").reset_index()


def count_statuses(plan: pd.DataFrame) -> pd.DataFrame:
    """SKUs per inventory status, every known status listed (zero when absent)."""
    counts = plan["status"].value_counts()
    statuses = list(PLAN_STATUSES) + sorted(set(counts.index) - set(PLAN_STATUSES))
    return pd.DataFrame({"status": statuses, "skus": [int(counts.get(s, 0)) for s in statuses]})


def published_date(version: str) -> date | None:
    """The scored date a serving version holds, from its id ``<YYYYMMDD>-<run hash>[-n]`` (None for other ids).

    The id is ``serving.publish.version_id``'s; ``ops.publish_audit`` has no date column of its own.
    """
    head, dash, _ = str(version).partition("-")
    if not (dash and len(head) == 8 and head.isdigit()):
        return None
    try:
        return datetime.strptime(head, "%Y%m%d").date()
    except ValueError:
        return None


def summarise_publishes(audit: pd.DataFrame, run_id: str, run_date: date) -> pd.DataFrame:
    """The run's publishes (or each dataset's latest up to ``run_date`` when it published nothing), with the previous key count.

    Publishes are ordered by the scored date of their version (``published_date``); ``published_at`` only
    orders publishes of the same date. The run's own rows of an unrecognised version id count as of
    ``run_date``; other rows of unknown date, and publishes of dates after ``run_date``, are left out.
    """
    audit = audit.assign(
        run_date=[
            published_date(version) or (run_date if published_by == run_id else None)
            for version, published_by in zip(audit["version"], audit["run_id"], strict=True)
        ]
    )
    audit = audit[audit["run_date"].notna()]
    audit = audit[audit["run_date"] <= run_date].sort_values(["run_date", "published_at"], ignore_index=True)
    audit["previous_key_count"] = audit.groupby("dataset")["key_count"].shift()
    chosen = audit[(audit["run_id"] == run_id) & (audit["run_date"] == run_date)]
    if chosen.empty:
        chosen = audit.groupby("dataset").tail(1)
    chosen = chosen.assign(
        key_change=(chosen["key_count"] - chosen["previous_key_count"])
        / chosen["previous_key_count"].where(chosen["previous_key_count"] > 0)
    )
    columns = ["dataset", "version", "key_count", "previous_key_count", "key_change", "checksum", "duration_s"]
    return chosen[[*columns, "triggered_by", "run_id", "run_date", "published_at"]].sort_values(
        "dataset", ignore_index=True
    )


# ---- rendering ----------------------------------------------------------------------------------


def _figure(nrows: int = 1, ncols: int = 1, width: float = 9.0, height: float = 3.2) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def _date_axis(ax, days: Sequence[Any]) -> None:
    """Concise date ticks, and a few days of room when there is a single date (matplotlib would span years)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if len(set(days)) == 1:
        ax.set_xlim(days[0] - timedelta(days=2), days[0] + timedelta(days=2))


def _img(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _format(value: Any) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _table(frame: pd.DataFrame, percent: Sequence[str] = ()) -> str:
    """An HTML table; ``percent`` columns show as signed percentages."""
    if frame.empty:
        return "<p>No rows.</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            text = _format(value)
            if column in percent and text != "–":
                text = f"{value:+.1%}"
            numeric = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            opening = '<td class="num">' if numeric else "<td>"
            cells.append(f"{opening}{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _missing(*tables: str) -> str:
    return (
        f'<p class="na">{NOT_AVAILABLE}: {", ".join(f"<code>{t}</code>" for t in tables)} has not been written yet.</p>'
    )


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


# ---- sections -----------------------------------------------------------------------------------
# Each section returns its status and HTML body; ``build_section`` adds the title and catches failures.

Body = tuple[Status, str]


def section_volumes(run: ReportRun) -> Body:
    first = run.run_date - timedelta(days=run.config.trailing_days)
    window = date_window("landing_date", run.run_date, first)
    accounting = _read(run.lake, OPS_ROW_ACCOUNTING, filter=window)
    quarantine = _read(run.lake, OPS_QUARANTINE, columns=["dataset", "landing_date", "stage", "reason"], filter=window)
    if accounting is None and quarantine is None:
        return NOT_AVAILABLE, _missing(OPS_ROW_ACCOUNTING, OPS_QUARANTINE)
    parts, status = [], "ok"
    if accounting is None:
        parts.append(_missing(OPS_ROW_ACCOUNTING))
    elif accounting.empty:
        parts.append(_p(f"No landings between {first} and {run.run_date}."))
    else:
        volumes = summarise_volumes(accounting, run.run_date)
        if (volumes["silver"].fillna(0) == 0).any():
            status = "attention"
        days = run.config.trailing_days
        parts.append(_p(f"Rows of landing date {run.run_date} against the daily mean of the {days} days before."))
        parts.append(_table(volumes, percent=("silver_change",)))
        parts.append(_plot_volumes(accounting, run.run_date))
    parts.append("<h3>Quarantine by reason</h3>")
    if quarantine is None:
        parts.append(_missing(OPS_QUARANTINE))
    else:
        reasons = summarise_quarantine(quarantine, run.run_date, run.config.trailing_days)
        parts.append(_table(reasons.head(25)) if not reasons.empty else _p("Nothing quarantined in the window."))
    return status, "".join(parts)


def _plot_volumes(accounting: pd.DataFrame, run_date: date) -> str:
    datasets = sorted(accounting["dataset"].unique())
    figure, axes = _figure(1, len(datasets), width=4.2 * len(datasets), height=3.0)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = accounting[accounting["dataset"] == dataset].sort_values("landing_date")
        labels = [day.strftime("%m-%d") for day in part["landing_date"]]
        silver = part["silver"].fillna(0).to_numpy()
        quarantined = (part["quarantined_clean"].fillna(0) + part["quarantined_validate"].fillna(0)).to_numpy()
        ax.bar(labels, silver, color=_COLOURS["model"], label="silver")
        ax.bar(labels, quarantined, bottom=silver, color=_COLOURS["quarantine"], label="quarantined")
        for tick, day in zip(ax.get_xticklabels(), part["landing_date"], strict=True):
            tick.set_fontweight("bold" if day == run_date else "normal")
        ax.set_title(dataset)
        ax.tick_params(axis="x", labelrotation=45)
    axes[0][0].legend(loc="upper left", fontsize="small")
    return _img(figure, "rows per landing date: silver and quarantined")


def section_validation(run: ReportRun) -> Body:
    results = _read(run.lake, OPS_VALIDATION_RESULTS, filter=_on("landing_date", [run.run_date]))
    if results is None:
        return NOT_AVAILABLE, _missing(OPS_VALIDATION_RESULTS)
    if results.empty:
        return "attention", _p(f"No validation ran for landing date {run.run_date}.")
    # The run's own validation of its date; a later run that revalidated the date (late data) must not replace it.
    own = results[results["run_id"] == run.run_id]
    by_suite, failures = summarise_validation(own if not own.empty else results)
    failed = int(by_suite["critical_failed"].sum() + by_suite["warning_failed"].sum())
    whose = f"run {run.run_id}" if not own.empty else f"no validation by run {run.run_id}; latest per suite"
    summary = f"{int(by_suite['expectations'].sum())} expectations on {run.run_date} ({whose}): {failed} failed."
    body = _p(summary) + _table(by_suite)
    if not failures.empty:
        failures = failures.assign(observed_value=failures["observed_value"].astype(str).str.slice(0, 120))
        body += "<h3>Failed expectations</h3>" + _table(failures)
    return ("attention" if failed else "ok"), body


def latest_dates(lake: Lake, run_date: date, lookback_days: int) -> dict[str, tuple[date | None, int] | None]:
    """Per freshness table: its latest date within the lookback up to ``run_date`` and the rows on it.

    None when the table does not exist, (None, 0) when it has no date in the lookback.
    """
    found: dict[str, tuple[date | None, int] | None] = {}
    for table, column in FRESHNESS_TABLES.items():
        if not lake.exists(table):
            found[table] = None
            continue
        latest = partition_days(lake, table, column, run_date, lookback_days, first_only=True)
        found[table] = next(iter(latest.items()), (None, 0))
    return found


def section_freshness(run: ReportRun) -> Body:
    latest = latest_dates(run.lake, run.run_date, run.config.lookback_days)
    freshness = summarise_freshness(latest, run.run_date, run.config.max_feature_lag_days)
    if (freshness["status"] == NOT_AVAILABLE).all():
        return NOT_AVAILABLE, _missing(*FRESHNESS_TABLES)
    status = "attention" if freshness["status"].isin(["stale", "none recent"]).any() else "ok"
    intro = (
        f"Latest feature_date / scored_date per table up to {run.run_date}; stale when more than "
        f"{run.config.max_feature_lag_days} day(s) behind, none recent when nothing in {run.config.lookback_days} days."
    )
    return status, _p(intro) + _table(freshness)


def model_run_dates(models_root: Path, versions: pd.DataFrame) -> dict[tuple[str, str], date]:
    """The logical date each (model_name, model_version) was trained for, from its registry metadata.

    Versions the registry does not hold (or that record no ``run_date``) are left out.
    """
    registry, found = ModelRegistry(models_root), {}
    for name, version in versions[["model_name", "model_version"]].drop_duplicates().itertuples(index=False):
        if not isinstance(name, str) or not isinstance(version, str) or not version:
            continue
        try:
            recorded = registry.get(name, version).metadata.get("run_date")
            if recorded:
                found[(name, version)] = date.fromisoformat(str(recorded))
        except (RegistryError, OSError, ValueError):
            log.warning("no logical date for %s version %s in the registry at %s", name, version, models_root)
    return found


def section_models(run: ReportRun) -> Body:
    metrics = _read(run.lake, OPS_MODEL_METRICS)
    if metrics is None or metrics.empty:
        return NOT_AVAILABLE, _missing(OPS_MODEL_METRICS)
    run_dates = model_run_dates(run.lake.settings.models, metrics)
    metrics = label_metrics(date_metrics(metrics, run_dates, run.run_id, run.run_date))
    if metrics.empty:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: no model evaluated up to {run.run_date}.")
    parts, status = [], "ok"
    for model_name in sorted(metrics["model_name"].unique()):
        rows = metrics[metrics["model_name"] == model_name]
        evaluations = evaluations_as_of(rows, run.run_id, run.run_date)
        if evaluations.empty:
            continue
        table, info = compare_metrics(rows, run.run_id, run.run_date)
        if not info["promoted"]:
            status = "attention"
        ours = info["run_id"] == run.run_id and info["run_date"] == run.run_date
        evaluation = (
            f"run {info['run_id']} of {info['run_date']}"
            if ours
            else f"no evaluation by run {run.run_id}; latest: run {info['run_id']} of {info['run_date']}"
        )
        verdict = "promoted" if info["promoted"] else "not promoted (gated)"
        previous = (
            f"previous promoted model {info['previous_version']} (run {info['previous_run']} of "
            f"{info['previous_run_date']})"
            if info["previous_run"] is not None
            else "no earlier promoted model"
        )
        parts.append(f"<h3>{html.escape(model_name)}</h3>")
        parts.append(
            _p(
                f"Candidate {info['version']} ({evaluation}, evaluated {_format(info['evaluated_at'])}): "
                f"{verdict}; {previous}."
            )
        )
        parts.append(_table(table))
        label = run.config.primary_metrics.get(model_name) or (table["metric"].iloc[0] if not table.empty else None)
        history = metric_history(rows, evaluations, label, run.config.history_runs) if label else pd.DataFrame()
        if not history.empty:
            promoted = set(evaluations.loc[evaluations["promoted"], "run_date"]) & set(history.index)
            parts.append(_plot_history(history, sorted(promoted), model_name, label))
    if not parts:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: no model evaluated up to {run.run_date}.")
    return status, "".join(parts)


def _plot_history(history: pd.DataFrame, promoted: Sequence[date], model_name: str, label: str) -> str:
    """The metric per logical date, the model bold, its promoted evaluations ringed."""
    figure, axes = _figure(width=9.0, height=3.2)
    ax = axes[0][0]
    x = list(history.index)
    for candidate in history.columns:
        model = is_model(candidate, model_name)
        ax.plot(
            x,
            history[candidate],
            marker="o",
            linewidth=2.2 if model else 1.0,
            color=_COLOURS["model"] if model else None,
            alpha=1.0 if model else 0.7,
            label=f"{candidate} (model)" if model else candidate,
        )
    model_column = next((c for c in history.columns if is_model(c, model_name)), None)
    if promoted and model_column is not None:
        ax.scatter(
            list(promoted),
            history.loc[list(promoted), model_column],
            s=120,
            facecolors="none",
            edgecolors="green",
            label="promoted",
            zorder=3,
        )
    ax.set_title(f"{model_name}: {label} per run date")
    ax.legend(fontsize="small", ncols=2)
    _date_axis(ax, x)
    return _img(figure, f"{model_name} {label} over time against baselines")


def _read_actuals(lake: Lake, first: date, last: date) -> tuple[pd.DataFrame | None, str]:
    """Units sold per SKU and day (columns day, sku, units): the demand table, else the order lines."""
    demand = _read(
        lake,
        GOLD_SKU_DAILY_DEMAND,
        columns=["feature_date", "sku", "units"],
        filter=date_window("feature_date", last, first),
    )
    if demand is not None:
        return demand.rename(columns={"feature_date": "day"}), GOLD_SKU_DAILY_DEMAND
    lines = _read(
        lake,
        SILVER_ORDER_LINES,
        columns=["event_date", "sku", "quantity", "line_type"],
        filter=date_window("event_date", last, first),
    )
    if lines is None:
        return None, ""
    purchases = lines[lines["line_type"] == "purchase"]
    units = purchases.groupby(["event_date", "sku"], as_index=False)["quantity"].sum()
    units = units.rename(columns={"event_date": "day", "quantity": "units"}).astype({"units": "float64"})
    return units, "silver.order_lines (purchases)"


def choose_origins(dates: Sequence[date], run_date: date, past_origin_days: int) -> tuple[date, date | None]:
    """The latest forecast origin, and a past one whose horizon overlaps actuals (None when there is only one)."""
    dates = sorted(dates)
    current = dates[-1]
    old_enough = [day for day in dates if day <= run_date - timedelta(days=past_origin_days)]
    past = old_enough[-1] if old_enough else dates[0]
    return current, (past if past < current else None)


def section_forecasts(run: ReportRun) -> Body:
    lake, run_date, config = run.lake, run.run_date, run.config
    if not lake.exists(GOLD_DEMAND_FORECASTS):
        return NOT_AVAILABLE, _missing(GOLD_DEMAND_FORECASTS)
    first = run_date - timedelta(days=config.lookback_days - 1)
    origins = partition_days(lake, GOLD_DEMAND_FORECASTS, "scored_date", run_date, config.lookback_days)
    if not origins:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: no forecast made between {first} and {run_date}.")
    current, past = choose_origins(list(origins), run_date, config.past_origin_days)
    actuals, source = _read_actuals(lake, first, run_date)
    current_skus = lake.read_pandas(GOLD_DEMAND_FORECASTS, columns=["sku"], filter=_on("scored_date", [current]))
    units = actuals.groupby("sku")["units"].sum() if actuals is not None else pd.Series(name="units", dtype="float64")
    top, drawn = pick_skus(
        units, current_skus["sku"].unique(), config.top_skus, config.random_skus, f"{run.seed}:{run_date}"
    )
    skus = top + drawn
    if not skus:
        return "attention", _p(f"The forecast made {current} has no SKUs to plot.")
    forecasts = lake.read_pandas(
        GOLD_DEMAND_FORECASTS,
        columns=["sku", "forecast_date", "p10", "p50", "p90", "scored_date"],
        filter=_on("scored_date", [day for day in (current, past) if day is not None]) & _on("sku", skus),
    )
    intro = f"Current forecast made {current}" + (f"; past forecast made {past}, compared with actuals" if past else "")
    parts = [
        _p(f"{intro}. Top {len(top)} SKUs by units over {config.lookback_days} days and {len(drawn)} drawn at random.")
    ]
    if actuals is None:
        parts.append(_missing(GOLD_SKU_DAILY_DEMAND, SILVER_ORDER_LINES))
        actuals = pd.DataFrame({"day": [], "sku": [], "units": []})
    else:
        actuals = actuals[actuals["sku"].isin(skus)]
        parts.append(_p(f"Actuals from {source}."))
        if past is not None:
            parts.append(_table(forecast_accuracy(forecasts[forecasts["scored_date"] == past], actuals)))
    parts.append(_plot_forecasts(forecasts, actuals, top, drawn, (current, past), run_date))
    return "ok", "".join(parts)


def _plot_forecasts(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    top: list[str],
    drawn: list[str],
    origins: tuple[date, date | None],
    run_date: date,
) -> str:
    skus = top + drawn
    ncols = min(3, len(skus))
    figure, axes = _figure(math.ceil(len(skus) / ncols), ncols, width=4.0 * ncols, height=2.8)
    flat = [ax for row in axes for ax in row]
    current, past = origins
    for ax, sku in zip(flat, skus, strict=False):
        for origin, colour, name in ((past, _COLOURS["past"], "past"), (current, _COLOURS["model"], "current")):
            if origin is None:
                continue
            part = forecasts[(forecasts["sku"] == sku) & (forecasts["scored_date"] == origin)]
            part = part.sort_values("forecast_date")
            days = list(part["forecast_date"])
            ax.fill_between(days, part["p10"], part["p90"], color=colour, alpha=0.2)
            ax.plot(days, part["p50"], color=colour, linestyle="--", label=f"P50 {name} ({origin:%m-%d})")
        observed = actuals[actuals["sku"] == sku].sort_values("day")
        ax.plot(list(observed["day"]), observed["units"], color=_COLOURS["actual"], marker=".", label="actual")
        ax.axvline(run_date, color="grey", linewidth=0.8)
        ax.set_title(f"{sku} ({'top' if sku in top else 'random'})", fontsize="medium")
        _date_axis(ax, [run_date])
        ax.set_xlim(min(observed["day"], default=run_date), max(forecasts["forecast_date"], default=run_date))
    for ax in flat[len(skus) :]:
        ax.set_visible(False)
    flat[0].legend(fontsize="x-small")
    return _img(figure, "forecast bands against actual units per SKU")


def section_inventory(run: ReportRun) -> Body:
    if not run.lake.exists(GOLD_INVENTORY_PLAN):
        return NOT_AVAILABLE, _missing(GOLD_INVENTORY_PLAN) + _p("Shops without an inventory feed have no plan.")
    days = run.config.lookback_days
    found = partition_days(run.lake, GOLD_INVENTORY_PLAN, "scored_date", run.run_date, days, first_only=True)
    if not found:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: no inventory plan in the {days} days up to {run.run_date}.")
    latest = next(iter(found))
    plan = run.lake.read_pandas(GOLD_INVENTORY_PLAN, filter=_on("scored_date", [latest]))
    counts = count_statuses(plan)
    figure, axes = _figure(width=6.0, height=2.6)
    axes[0][0].bar(counts["status"], counts["skus"], color=_COLOURS["model"])
    axes[0][0].set_title(f"SKUs per status, plan of {latest}")
    late = "" if latest == run.run_date else f" (no plan for {run.run_date})"
    body = _p(f"Plan of {latest}{late}: {len(plan)} SKUs.") + _table(counts) + _img(figure, "SKUs per inventory status")
    at_risk = plan[plan["status"] == "at_risk"].sort_values(["stockout_probability", "sku"], ascending=[False, True])
    if not at_risk.empty and run.config.at_risk_rows:
        columns = ["sku", "on_hand", "on_order", "reorder_point", "recommended_order_qty", "days_of_cover"]
        body += f"<h3>Most at risk (top {run.config.at_risk_rows})</h3>"
        body += _table(at_risk[[*columns, "stockout_probability"]].head(run.config.at_risk_rows))
    return ("ok" if not late and at_risk.empty else "attention"), body


def latest_customer_evaluation(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of the customer model's newest evaluation (calibration bins and lift deciles included)."""
    newest = metrics.sort_values("evaluated_at")["run_id"].iloc[-1]
    return metrics[metrics["run_id"] == newest]


def section_customers(run: ReportRun) -> Body:
    if not run.lake.exists(GOLD_CUSTOMER_SCORES):
        return NOT_AVAILABLE, _missing(GOLD_CUSTOMER_SCORES)
    days = run.config.lookback_days
    found = partition_days(run.lake, GOLD_CUSTOMER_SCORES, "scored_date", run.run_date, days, first_only=True)
    if not found:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: no customer scores in the {days} days up to {run.run_date}.")
    latest = next(iter(found))
    scores = run.lake.read_pandas(GOLD_CUSTOMER_SCORES, filter=_on("scored_date", [latest]))
    active = scores["p_churn_90d"].notna()
    summary = pd.DataFrame(
        [
            {
                "customers": len(scores),
                "mean_p_purchase_30d": scores["p_purchase_30d"].mean(),
                "active_90d": int(active.sum()),
                "at_risk (p_churn_90d > 0.5)": int((scores["p_churn_90d"] > 0.5).sum()),
                "expected_revenue_90d": scores["expected_revenue_90d"].sum(),
                "scored_by": scores["scored_by"].iloc[0],
            }
        ]
    )
    figure, axes = _figure(ncols=3, width=10.0, height=2.6)
    for ax, column in zip(axes[0], ("p_purchase_30d", "p_churn_90d", "expected_revenue_90d"), strict=True):
        values = scores[column].dropna()
        ax.hist(np.log10(values + 1) if column == "expected_revenue_90d" else values, bins=20, color=_COLOURS["model"])
        ax.set_title("log10(1 + expected_revenue_90d)" if column == "expected_revenue_90d" else column)
    late = "" if latest == run.run_date else f" (no scores for {run.run_date})"
    body = _p(f"Scores of {latest}{late}.") + _table(summary) + _img(figure, "Customer score distributions")
    metrics = _read(run.lake, OPS_MODEL_METRICS, filter=_on("model_name", ["customer"]))
    if metrics is not None and not metrics.empty:
        body += _plot_customer_evaluation(latest_customer_evaluation(metrics))
    return ("ok" if not late else "attention"), body


def _plot_customer_evaluation(rows: pd.DataFrame) -> str:
    """Calibration of each classifier head (model and BG/NBD) and the value head's lift by decile."""
    heads = sorted({m.split(".")[0] for m in rows["metric"] if m.endswith(".calibration_observed")})
    lift = rows[rows["metric"] == "value.lift"]
    figure, axes = _figure(ncols=len(heads) + (not lift.empty), width=10.0, height=3.0)
    for ax, head in zip(axes[0], heads, strict=False):
        for candidate in ("model", "bgnbd"):
            mine = rows[rows["candidate"] == candidate].pivot_table(index="segment", columns="metric", values="value")
            if f"{head}.calibration_predicted" in mine:
                ax.plot(
                    mine[f"{head}.calibration_predicted"], mine[f"{head}.calibration_observed"], "o-", label=candidate
                )
        ax.plot([0, 1], [0, 1], ":", color="#999")
        ax.set(title=f"{head}: calibration", xlabel="predicted", ylabel="observed")
        ax.legend(fontsize=7)
    if not lift.empty:
        ax = axes[0][-1]
        for candidate, group in lift.groupby("candidate"):
            ax.plot(range(1, len(group) + 1), group.sort_values("segment")["value"], "o-", label=candidate)
        ax.set(title="value: lift by decile", xlabel="decile (1 = highest predicted)", ylabel="lift")
        ax.legend(fontsize=7)
    version = rows["model_version"].iloc[0]
    return (
        "<h3>Evaluation of the newest candidate</h3>"
        + _p(f"Candidate {version}.")
        + _img(figure, "Calibration and lift")
    )


def section_publish(run: ReportRun) -> Body:
    audit = _read(run.lake, OPS_PUBLISH_AUDIT)
    if audit is None or audit.empty:
        return NOT_AVAILABLE, _missing(OPS_PUBLISH_AUDIT)
    publishes = summarise_publishes(audit, run.run_id, run.run_date)
    if publishes.empty:
        return NOT_AVAILABLE, _p(f"{NOT_AVAILABLE}: nothing published for a date up to {run.run_date}.")
    ours = bool(((publishes["run_id"] == run.run_id) & (publishes["run_date"] == run.run_date)).any())
    intro = f"Published by run {run.run_id}." if ours else f"Nothing published by run {run.run_id}; latest per dataset."
    publishes = publishes.assign(checksum=publishes["checksum"].str.slice(0, 12))
    return ("ok" if ours else "attention"), _p(intro) + _table(publishes, percent=("key_change",))


SECTIONS: tuple[tuple[str, Callable[[ReportRun], Body]], ...] = (
    ("Data volumes and quarantine", section_volumes),
    ("Validation results", section_validation),
    ("Feature freshness", section_freshness),
    ("Model metrics", section_models),
    ("Forecast vs actual", section_forecasts),
    ("Inventory status", section_inventory),
    ("Customer scores", section_customers),
    ("Published to serving", section_publish),
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;white-space:nowrap}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;display:block;margin:.6rem 0}
.na{color:#777;font-style:italic}.meta{color:#555}
.status{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-size:.8rem;margin-left:.4rem;vertical-align:middle}
.ok{background:#e3f4e1}.attention{background:#fdf0c8}.not-available{background:#eee}.failed{background:#f9d6d5}
"""


def build_section(title: str, builder: Callable[[ReportRun], Body], run: ReportRun) -> Section:
    """One section; a failure becomes a visible "failed" section (and a logged traceback), not a lost report."""
    try:
        status, body = builder(run)
    except Exception as exc:
        log.exception("report section %r failed for %s", title, run.run_date)
        return Section(title, "failed", _p(f"This section failed: {type(exc).__name__}: {exc}"))
    return Section(title, status, body)


def render_page(run_date: date, run_id: str, sections: Sequence[Section], generated_at: datetime) -> str:
    """The whole page: header, contents with each section's status, then the sections."""

    def badge(status: str) -> str:
        return f'<span class="status {status.replace(" ", "-")}">{html.escape(status)}</span>'

    contents = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a>{badge(s.status)}</li>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}{badge(s.status)}</h2>{s.body}</section>' for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>shopml nightly report {run_date}</title><style>{_CSS}</style></head><body>"
        f"<h1>Nightly run report {run_date}</h1>"
        f'<p class="meta">Run {html.escape(run_id)} · generated {generated_at:%Y-%m-%d %H:%M} UTC</p>'
        f"<ul>{contents}</ul>{body}</body></html>"
    )


def report_path(run_date: date, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).reports / run_date.isoformat() / "index.html"


def build_report(
    run_date: date, run_id: str, settings: Settings | None = None, config: ReportConfig | None = None
) -> Path:
    """Write ``<reports_root>/<run_date>/index.html`` for the run and return its path (rewritten on reruns)."""
    settings = settings or get_settings()
    run = ReportRun(Lake(settings), run_date, run_id, config or settings.report, settings.seed)
    sections = [build_section(title, builder, run) for title, builder in SECTIONS]
    path = report_path(run_date, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".html.tmp")
    scratch.write_text(render_page(run_date, run_id, sections, datetime.now(UTC)), encoding="utf-8")
    os.replace(scratch, path)  # a reader never sees half a page
    failed = [section.title for section in sections if section.status == "failed"]
    if failed:
        log.error("report sections failed (tracebacks above): %s", ", ".join(failed))
    log.info("nightly report for %s (run %s): %s", run_date, run_id, path.resolve().as_uri())
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.report", description="Build the nightly run report of a date."
    )
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="run date YYYY-MM-DD")
    parser.add_argument("--run-id", default="manual", help="run whose model metrics and publishes are shown")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.stdout.write(f"{build_report(args.date, args.run_id)}\n")


if __name__ == "__main__":
    main()
