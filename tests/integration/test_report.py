"""The nightly report on a tiny hand-made lake: every section's numbers, graceful gaps, and a real browser."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from jobs.report import (
    NOT_AVAILABLE,
    build_report,
    choose_origins,
    compare_metrics,
    count_statuses,
    date_metrics,
    evaluations_as_of,
    forecast_accuracy,
    label_metrics,
    main,
    partition_days,
    pick_skus,
    published_date,
    summarise_freshness,
    summarise_publishes,
    summarise_quarantine,
    summarise_validation,
    summarise_volumes,
)
from models.registry import ModelRegistry, ModelVersion
from serving.publish import version_id
from shopml.catalog import spec
from shopml.config.report import ReportConfig
from shopml.lake import Lake

RUN_DATE = date(2026, 3, 10)
RUN_ID = "scheduled__2026-03-10T00:00:00+00:00"
# A past-dated run (``make run`` on the sample shop, a backfill): logical dates years before the wall clock.
PAST_DATE = date(2010, 12, 9)
PAST_RUNS = {offset: f"backfill__{PAST_DATE + timedelta(days=offset)}T00:00:00+00:00" for offset in (-7, 0, 1)}
PAST_RUN = PAST_RUNS[0]
CHROMIUM = Path("/usr/bin/chromium")
CONFIG = ReportConfig(top_skus=2, random_skus=2)


def _day(offset: int) -> date:
    return RUN_DATE + timedelta(days=offset)


def _past(offset: int) -> date:
    return PAST_DATE + timedelta(days=offset)


def _at(offset: int, hour: int = 3) -> datetime:
    return datetime.combine(_day(offset), datetime.min.time(), UTC) + timedelta(hours=hour)


def _write(lake: Lake, table: str, rows: list[dict], schema: pa.Schema | list[tuple[str, pa.DataType]]) -> None:
    lake.write_arrow(pa.Table.from_pylist(rows, schema=pa.schema(schema)), table)


# ---- the tiny lake --------------------------------------------------------------------------------

COUNTS = ("landed", "quarantined_clean", "bots", "duplicates", "staged", "quarantined_validate", "silver")


def _accounting(dataset: str, day: date, landed, silver, q_clean, q_validate, duplicates, bots) -> dict:
    return {
        "dataset": dataset,
        "landing_date": day,
        "landed": landed,
        "quarantined_clean": q_clean,
        "bots": bots,
        "duplicates": duplicates,
        "staged": landed - q_clean - bots - duplicates,
        "quarantined_validate": q_validate,
        "silver": silver,
        "run_id": "r",
        "updated_at": _at(0),
    }


ACCOUNTING = [
    _accounting("events", _day(-2), 100, 80, 10, 5, 3, 2),
    _accounting("events", _day(-1), 120, 100, 10, 5, 3, 2),
    _accounting("events", _day(0), 110, 90, 6, 2, 1, 11),
    _accounting("products", _day(0), 5, 5, 0, 0, 0, 0),
]


def _quarantine_rows() -> list[dict]:
    rows = [("events", _day(0), "clean", "malformed_json")] * 2 + [
        ("events", _day(0), "validate", "invalid_type:quantity")
    ]
    rows += [("events", _day(-1), "clean", "malformed_json")] * 7
    return [
        {
            "dataset": dataset,
            "landing_date": day,
            "stage": stage,
            "reason": reason,
            "record_key": f"e{i}",
            "payload": "{}",
            "source_file": "f.jsonl",
            "run_id": "r",
            "quarantined_at": _at(0),
        }
        for i, (dataset, day, stage, reason) in enumerate(rows)
    ]


def _validation_rows() -> list[dict]:
    def row(suite, expectation, severity, success, unexpected, validated_at):
        return {
            "suite": suite,
            "landing_date": RUN_DATE,
            "run_id": "r",
            "expectation": expectation,
            "column": "quantity",
            "severity": severity,
            "success": success,
            "element_count": 100,
            "unexpected_count": unexpected,
            "observed_value": "null",
            "validated_at": validated_at,
        }

    earlier, latest = _at(0, 1), _at(0, 2)
    return [
        # An earlier validation of the same suite and date (a cleared and rerun task) is superseded.
        row("silver_events", "expect_table_row_count_to_be_between", "critical", False, 0, earlier),
        row("silver_events", "expect_column_values_to_not_be_null", "critical", True, 0, latest),
        row("silver_events", "expect_column_values_to_be_between", "warning", False, 3, latest),
        row("silver_events", "expect_column_values_to_be_in_set", "warning", True, 0, latest),
        row("products", "expect_column_values_to_be_unique", "critical", True, 0, latest),
        row("products", "expect_column_values_to_not_be_null", "warning", True, 0, latest),
    ]


SKUS = ["A", "B", "C", "D", "E", "F", "G"]
# Units per SKU on each of the 7 days 03-04..03-10: A sells most, then B; the others little.
UNITS = {"A": [8, 12, 10, 10, 10, 10, 10], "B": [5] * 7, **{sku: [1] * 7 for sku in SKUS[2:]}}


def _demand_rows() -> list[dict]:
    rows = [
        {"feature_date": _day(offset - 6), "sku": sku, "category": "c", "units": float(units[offset])}
        for sku, units in UNITS.items()
        for offset in range(7)
    ]
    # A day after the run date (a later backfill) is neither fresh data for this run nor an actual.
    return [*rows, {"feature_date": _day(1), "sku": "A", "category": "c", "units": 99.0}]


def _forecast_rows() -> list[dict]:
    rows = []
    for origin in (_day(-7), _day(0)):
        for sku in SKUS:
            level = 10.0 if sku == "A" else 1.0
            for step in range(1, 8):
                rows.append(
                    {
                        "sku": sku,
                        "forecast_date": origin + timedelta(days=step),
                        "horizon_day": step,
                        "p10": level * 0.8,
                        "p50": level,
                        "p90": level * 1.2,
                        "model_version": "v1",
                        "run_id": "r",
                        "generated_at": _at(0),
                        "scored_date": origin,
                    }
                )
    return rows


def _metric(
    run_id, model_name, version, candidate, metric, k, value, promoted, evaluated_at, run_date=RUN_DATE
) -> dict:
    """One ops.model_metrics row; ``run_date`` (the run's logical date, not a column of the table) is for the pure tests."""
    return {
        "run_id": run_id,
        "model_name": model_name,
        "model_version": version,
        "candidate": candidate,
        "metric": metric,
        "k": k,
        "segment": "overall",
        "value": value,
        "promoted": promoted,
        "evaluated_at": evaluated_at,
        "run_date": run_date,
    }


def _metric_rows() -> list[dict]:
    old, new = ("r-old", "v1", _at(-7), _day(-7)), (RUN_ID, "v2", _at(0), RUN_DATE)
    rows = []
    for (run_id, version, at, day), promoted, values in (
        (old, True, {"forecaster": 0.5, "seasonal_naive": 0.6, "moving_average": 0.55}),
        (new, False, {"forecaster": 0.45, "seasonal_naive": 0.5, "moving_average": 0.48}),
    ):
        for candidate, value in values.items():
            rows.append(_metric(run_id, "forecaster", version, candidate, "wape", None, value, promoted, at, day))
    for candidate, value in {"forecaster": -0.1, "seasonal_naive": 0.05, "moving_average": -0.2}.items():
        rows.append(_metric(RUN_ID, "forecaster", "v2", candidate, "bias", None, value, False, _at(0)))
    rows.append(_metric(RUN_ID, "recommender", "r1", "model", "ndcg", 10, 0.2, True, _at(0)))
    rows.append(_metric(RUN_ID, "recommender", "r1", "popular", "ndcg", 10, 0.1, False, _at(0)))
    return rows


PLAN_STATUS = {"A": "ok", "B": "ok", "C": "at_risk", "D": "reorder"}


def _register(lake: Lake, rows: list[dict]) -> None:
    """Registry metadata of every model version in metric rows: the training run and its logical date."""
    registry = ModelRegistry(lake.settings.models)
    for name, version, run_id, day in {(r["model_name"], r["model_version"], r["run_id"], r["run_date"]) for r in rows}:
        path = registry.root / name / version
        path.mkdir(parents=True, exist_ok=True)
        registry.save_metadata(ModelVersion(name, version, path), {"run_id": run_id, "run_date": day.isoformat()})


def _audit(dataset, version, key_count, run_id, at) -> dict:
    return {
        "dataset": dataset,
        "version": version,
        "key_count": key_count,
        "checksum": "0123456789abcdef0123",
        "duration_s": 1.5,
        "triggered_by": "nightly_retrain",
        "run_id": run_id,
        "published_at": at,
    }


def build_tiny_lake(lake: Lake) -> None:
    """Every table the report reads, a handful of rows each (no inventory-feed gaps: see the other tests)."""
    ts = pa.timestamp("us", tz="UTC")
    _write(
        lake,
        "ops.row_accounting",
        ACCOUNTING,
        [("dataset", pa.string()), ("landing_date", pa.date32())]
        + [(c, pa.int64()) for c in COUNTS]
        + [("run_id", pa.string()), ("updated_at", ts)],
    )
    _write(
        lake,
        "ops.quarantine",
        _quarantine_rows(),
        [
            ("dataset", pa.string()),
            ("landing_date", pa.date32()),
            ("stage", pa.string()),
            ("reason", pa.string()),
            ("record_key", pa.string()),
            ("payload", pa.string()),
            ("source_file", pa.string()),
            ("run_id", pa.string()),
            ("quarantined_at", ts),
        ],
    )
    _write(
        lake,
        "ops.validation_results",
        _validation_rows(),
        spec("ops.validation_results").arrow_schema(),
    )
    _write(
        lake,
        "gold.user_features",
        [{"feature_date": _day(0), "user_id": u} for u in ("u1", "u2")],
        [("feature_date", pa.date32()), ("user_id", pa.string())],
    )
    _write(
        lake,
        "gold.item_features",
        [{"feature_date": _day(-1), "sku": "A"}],
        [("feature_date", pa.date32()), ("sku", pa.string())],
    )
    _write(
        lake,
        "gold.sku_daily_demand",
        _demand_rows(),
        [("feature_date", pa.date32()), ("sku", pa.string()), ("category", pa.string()), ("units", pa.float64())],
    )
    _write(
        lake,
        "gold.demand_forecasts",
        _forecast_rows(),
        [
            ("sku", pa.string()),
            ("forecast_date", pa.date32()),
            ("horizon_day", pa.int32()),
            ("p10", pa.float64()),
            ("p50", pa.float64()),
            ("p90", pa.float64()),
            ("model_version", pa.string()),
            ("run_id", pa.string()),
            ("generated_at", ts),
            ("scored_date", pa.date32()),
        ],
    )
    _write(
        lake,
        "gold.inventory_plan",
        [
            {
                "sku": sku,
                "on_hand": 5,
                "on_order": 0,
                "lead_time_days": 3,
                "reorder_point": 6.0,
                "recommended_order_qty": 4.0,
                "days_of_cover": 2.0,
                "stockout_probability": 0.7 if status == "at_risk" else 0.1,
                "status": status,
                "scored_date": RUN_DATE,
            }
            for sku, status in PLAN_STATUS.items()
        ],
        [
            ("sku", pa.string()),
            ("on_hand", pa.int32()),
            ("on_order", pa.int32()),
            ("lead_time_days", pa.int32()),
            ("reorder_point", pa.float64()),
            ("recommended_order_qty", pa.float64()),
            ("days_of_cover", pa.float64()),
            ("stockout_probability", pa.float64()),
            ("status", pa.string()),
            ("scored_date", pa.date32()),
        ],
    )
    _write(
        lake,
        "ops.model_metrics",
        _metric_rows(),
        spec("ops.model_metrics").arrow_schema(),
    )
    _register(lake, _metric_rows())
    _write(
        lake,
        "ops.publish_audit",
        [
            _audit("recommendations", "20260309-1", 100, "r-old", _at(-1)),
            _audit("recommendations", "20260310-1", 110, RUN_ID, _at(0)),
            _audit("forecasts", "20260310-1", 50, RUN_ID, _at(0)),
        ],
        spec("ops.publish_audit").arrow_schema(),
    )


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory) -> Lake:
    from shopml.settings import load_settings

    lake = Lake(load_settings(var_root=tmp_path_factory.mktemp("report") / "var"))
    build_tiny_lake(lake)
    return lake


@pytest.fixture(scope="module")
def report(tiny_lake: Lake) -> Path:
    return build_report(RUN_DATE, RUN_ID, tiny_lake.settings, CONFIG)


def _sections(page: str) -> dict[str, tuple[str, str]]:
    """Section id -> (status, inner HTML)."""
    found = re.findall(r'<section id="([^"]+)"><h2>.*?<span class="status ([^"]+)">.*?</h2>(.*?)</section>', page, re.S)
    return {anchor: (status, body.replace(' class="num"', "")) for anchor, status, body in found}


# ---- pure summaries -------------------------------------------------------------------------------


def test_volumes_compare_the_run_date_with_the_trailing_mean():
    volumes = summarise_volumes(pd.DataFrame(ACCOUNTING), RUN_DATE).set_index("dataset")
    events = volumes.loc["events"]
    assert (events["landed"], events["silver"], events["quarantined"], events["bots"]) == (110, 90, 8, 11)
    assert events["silver_trailing_mean"] == 90.0  # (80 + 100) / 2 earlier days
    assert events["quarantined_trailing_mean"] == 15.0
    assert events["silver_change"] == pytest.approx(0.0)
    assert pd.isna(volumes.loc["products", "silver_trailing_mean"])


def test_quarantine_counts_per_reason_against_the_week():
    reasons = summarise_quarantine(pd.DataFrame(_quarantine_rows()), RUN_DATE, trailing_days=7)
    assert reasons.to_dict("records") == [
        {"dataset": "events", "stage": "clean", "reason": "malformed_json", "rows": 2, "trailing_daily_mean": 1.0},
        {
            "dataset": "events",
            "stage": "validate",
            "reason": "invalid_type:quantity",
            "rows": 1,
            "trailing_daily_mean": 0.0,
        },
    ]


def test_validation_keeps_each_suites_latest_results():
    by_suite, failures = summarise_validation(pd.DataFrame(_validation_rows()))
    assert by_suite.to_dict("records") == [
        {
            "suite": "products",
            "expectations": 2,
            "passed": 2,
            "critical_failed": 0,
            "warning_failed": 0,
            "unexpected_rows": 0,
        },
        {
            "suite": "silver_events",
            "expectations": 3,
            "passed": 2,
            "critical_failed": 0,
            "warning_failed": 1,
            "unexpected_rows": 3,
        },
    ]
    assert failures["expectation"].tolist() == ["expect_column_values_to_be_between"]


def test_freshness_flags_stale_old_and_missing_tables():
    frame = summarise_freshness(
        {"fresh": (RUN_DATE, 3), "stale": (_day(-2), 1), "old": (None, 0), "missing": None}, RUN_DATE, 0
    )
    assert frame["status"].tolist() == ["fresh", "stale", "none recent", NOT_AVAILABLE]
    assert frame["lag_days"].tolist()[:2] == [0, 2]


def test_model_metrics_against_best_baseline_and_previous_promoted_model():
    metrics = label_metrics(pd.DataFrame(_metric_rows()))
    table, info = compare_metrics(metrics[metrics["model_name"] == "forecaster"], RUN_ID, RUN_DATE)
    wape = table.set_index("metric").loc["wape"]
    assert wape["model"] == 0.45
    assert wape["best_baseline"] == "moving_average"  # lower WAPE is better
    assert wape["vs_baseline"] == pytest.approx(-0.03)
    assert wape["previous_model"] == 0.5
    assert wape["vs_previous"] == pytest.approx(-0.05)
    assert table.set_index("metric").loc["bias", "best_baseline"] == "seasonal_naive"  # closest to zero
    assert info | {"evaluated_at": None} == {
        "run_id": RUN_ID,
        "run_date": RUN_DATE,
        "version": "v2",
        "promoted": False,
        "evaluated_at": None,
        "previous_run": "r-old",
        "previous_run_date": _day(-7),
        "previous_version": "v1",
    }
    table, info = compare_metrics(metrics[metrics["model_name"] == "recommender"], "another-run", RUN_DATE)
    assert table.to_dict("records")[0] | {"vs_baseline": round(table["vs_baseline"][0], 6)} == {
        "metric": "ndcg@10",
        "model": 0.2,
        "best_baseline": "popular",
        "baseline_value": 0.1,
        "vs_baseline": 0.1,
        "previous_model": None,
        "vs_previous": None,
    }
    assert info["run_id"] == RUN_ID and info["previous_run"] is None  # falls back to the latest evaluation


def test_sku_choice_is_top_sellers_plus_a_reproducible_draw():
    units = pd.Series({sku: float(sum(values)) for sku, values in UNITS.items()}, name="units").rename_axis("sku")
    top, drawn = pick_skus(units, SKUS, top=2, n_random=2, seed="0:2026-03-10")
    assert top == ["A", "B"]
    assert len(drawn) == 2 and set(drawn) <= {"C", "D", "E", "F", "G"}
    assert pick_skus(units, SKUS, 2, 2, "0:2026-03-10") == (top, drawn)
    assert pick_skus(units, SKUS, 2, 10, "x")[1] == ["C", "D", "E", "F", "G"]


def test_origins_and_forecast_accuracy():
    assert choose_origins([_day(-9), _day(-7), _day(-3), _day(0)], RUN_DATE, 7) == (_day(0), _day(-7))
    assert choose_origins([_day(-3), _day(0)], RUN_DATE, 7) == (_day(0), _day(-3))
    assert choose_origins([_day(0)], RUN_DATE, 7) == (_day(0), None)
    forecast = pd.DataFrame(
        {"sku": "A", "forecast_date": [_day(-1), _day(0), _day(1)], "p10": 8.0, "p50": 10.0, "p90": 12.0}
    )
    actuals = pd.DataFrame({"day": [_day(-1), _day(0)], "sku": "A", "units": [13.0, 10.0]})
    accuracy = forecast_accuracy(forecast, actuals).iloc[0]
    assert (accuracy["days"], accuracy["actual"], accuracy["p50"]) == (2, 23.0, 20.0)
    assert accuracy["wape"] == pytest.approx(3 / 23)
    assert accuracy["coverage_p10_p90"] == 0.5


def test_status_counts_and_publishes():
    counts = count_statuses(pd.DataFrame({"status": list(PLAN_STATUS.values())}))
    assert dict(zip(counts["status"], counts["skus"], strict=True)) == {
        "ok": 2,
        "reorder": 1,
        "at_risk": 1,
        "overstock": 0,
    }
    audit = pd.DataFrame(
        [
            _audit("recommendations", "20260309-1", 100, "r-old", _at(-1)),
            _audit("recommendations", "20260310-1", 110, RUN_ID, _at(0)),
            _audit("forecasts", "20260309-1", 50, "r-old", _at(-1)),
            _audit("forecasts", "20260310-1", 50, RUN_ID, _at(0)),
        ]
    )
    ours = summarise_publishes(audit.iloc[[0, 1, 3]], RUN_ID, RUN_DATE).set_index("dataset")
    assert ours.loc["recommendations", "previous_key_count"] == 100
    assert ours.loc["recommendations", "key_change"] == pytest.approx(0.10)
    assert pd.isna(ours.loc["forecasts", "previous_key_count"])
    latest = summarise_publishes(audit.iloc[[0, 2, 3]], "no-such-run", RUN_DATE)  # latest per dataset
    assert latest["version"].tolist() == ["20260310-1", "20260309-1"]


def _backfill_metrics(now: datetime) -> list[dict]:
    """Forecaster runs of 12-02, 12-09 and 12-10 evaluated out of order, all years after their logical dates."""
    runs = (
        # (run id, version, logical date, wall clock, promoted, model WAPE)
        (PAST_RUNS[-7], "f-old", _past(-7), now + timedelta(hours=2), True, 0.5),  # backfilled after the 12-09 run
        (PAST_RUN, "f-new", PAST_DATE, now, True, 0.4),
        (PAST_RUNS[1], "f-later", _past(1), now - timedelta(days=1), True, 0.3),  # the next night, run first
    )
    rows = []
    for run_id, version, day, at, promoted, wape in runs:
        for candidate, value in {"forecaster": wape, "seasonal_naive": wape + 0.05, "moving_average": 0.9}.items():
            rows.append(_metric(run_id, "forecaster", version, candidate, "wape", None, value, promoted, at, day))
    return rows


def _backfill_audit(now: datetime) -> list[dict]:
    return [
        _audit("recommendations", version_id(_past(-7), PAST_RUNS[-7]), 100, PAST_RUNS[-7], now + timedelta(hours=2)),
        _audit("recommendations", version_id(PAST_DATE, PAST_RUN), 120, PAST_RUN, now),
        _audit("recommendations", version_id(_past(1), PAST_RUNS[1]), 999, PAST_RUNS[1], now - timedelta(days=1)),
        _audit("forecasts", version_id(PAST_DATE, PAST_RUN), 50, PAST_RUN, now),
    ]


def test_metrics_are_ordered_by_logical_date_not_wall_clock():
    now = datetime.now(UTC)
    rows = pd.DataFrame(_backfill_metrics(now)).drop(columns="run_date")
    known = {("forecaster", "f-old"): _past(-7), ("forecaster", "f-later"): _past(1)}  # f-new: not in the registry
    metrics = label_metrics(date_metrics(rows, known, PAST_RUN, PAST_DATE))
    assert sorted(set(metrics["model_version"])) == ["f-new", "f-old"]  # the run's own, and none after its date
    runs = evaluations_as_of(metrics, PAST_RUN, PAST_DATE)
    assert runs["run_id"].tolist() == [PAST_RUNS[-7], PAST_RUN]
    table, info = compare_metrics(metrics, PAST_RUN, PAST_DATE)
    assert (info["run_id"], info["run_date"], info["version"], info["promoted"]) == (PAST_RUN, PAST_DATE, "f-new", True)
    assert (info["previous_run"], info["previous_version"]) == (PAST_RUNS[-7], "f-old")
    wape = table.set_index("metric").loc["wape"]
    assert (wape["model"], wape["previous_model"]) == (0.4, 0.5)
    # A run that evaluated nothing shows the latest evaluation up to its date, not the latest by wall clock.
    dated = label_metrics(date_metrics(rows, known | {("forecaster", "f-new"): PAST_DATE}, "another", _past(3)))
    assert compare_metrics(dated, "another", _past(3))[1]["version"] == "f-later"
    assert compare_metrics(dated, "another", PAST_DATE)[1]["version"] == "f-new"
    # Reruns of one logical date: evaluated_at orders them, and one evaluated after the run is not before it.
    rerun = rows[rows["model_version"] == "f-new"].assign(run_id="rerun", evaluated_at=now + timedelta(hours=5))
    both = label_metrics(
        date_metrics(pd.concat([rows, rerun]), known | {("forecaster", "f-new"): PAST_DATE}, "x", PAST_DATE)
    )
    assert evaluations_as_of(both, PAST_RUN, PAST_DATE)["run_id"].tolist() == [PAST_RUNS[-7], PAST_RUN]
    assert evaluations_as_of(both, "rerun", PAST_DATE)["run_id"].tolist() == [PAST_RUNS[-7], PAST_RUN, "rerun"]


def test_publishes_are_ordered_by_logical_date_not_wall_clock():
    audit = pd.DataFrame(_backfill_audit(datetime.now(UTC)))
    ours = summarise_publishes(audit, PAST_RUN, PAST_DATE).set_index("dataset")
    assert ours["version"].to_dict() == {
        "forecasts": version_id(PAST_DATE, PAST_RUN),
        "recommendations": version_id(PAST_DATE, PAST_RUN),
    }
    assert ours.loc["recommendations", "previous_key_count"] == 100  # 12-02's, published later by the wall clock
    assert ours.loc["recommendations", "key_change"] == pytest.approx(0.2)
    latest = summarise_publishes(audit, "no-such-run", _past(-1)).set_index("dataset")
    assert latest["key_count"].to_dict() == {"recommendations": 100}  # nothing of 12-09 or 12-10 yet
    assert published_date(version_id(PAST_DATE, PAST_RUN)) == PAST_DATE
    assert published_date(version_id(PAST_DATE, PAST_RUN) + "-2") == PAST_DATE  # a rerun's new content
    assert published_date("v1") is None and published_date("20101332-x") is None


def test_partition_days_probes_date_partitions(tiny_lake: Lake):
    assert partition_days(tiny_lake, "gold.demand_forecasts", "scored_date", RUN_DATE, 28) == {
        RUN_DATE: 49,
        _day(-7): 49,
    }
    assert partition_days(tiny_lake, "gold.sku_daily_demand", "feature_date", RUN_DATE, 28, first_only=True) == {
        RUN_DATE: 7  # the row of 03-11 lies after the run date
    }
    assert partition_days(tiny_lake, "gold.item_features", "feature_date", _day(-2), 5) == {}


# ---- the page ---------------------------------------------------------------------------------------


def test_report_lands_under_reports_root_by_date(report: Path):
    assert report.name == "index.html" and report.parent.name == "2026-03-10"
    assert report.parent.parent.name == "reports"
    assert not list(report.parent.glob("*.tmp"))


def test_every_section_is_present_with_its_status(report: Path):
    sections = _sections(report.read_text())
    assert {anchor: status for anchor, (status, _) in sections.items()} == {
        "data-volumes-and-quarantine": "ok",
        "validation-results": "attention",  # one warning expectation failed
        "feature-freshness": "attention",  # item_features is a day behind
        "model-metrics": "attention",  # the forecaster was gated
        "forecast-vs-actual": "ok",
        "inventory-status": "attention",  # C is at risk
        "customer-scores": "not-available",  # no customer model in this lake
        "published-to-serving": "ok",
    }
    freshness = sections["feature-freshness"][1]
    assert re.search(r"gold\.user_features</td><td>2026-03-10</td><td>2</td><td>0</td><td>fresh", freshness)
    assert re.search(r"gold\.item_features</td><td>2026-03-09</td><td>1</td><td>1</td><td>stale", freshness)
    assert re.search(r"gold\.sku_daily_demand</td><td>2026-03-10</td><td>7</td>", freshness)  # 03-11 is ignored
    assert re.search(r"gold\.similar_items</td><td>–</td><td>–</td><td>–</td><td>not available", freshness)
    models = sections["model-metrics"][1]
    assert "Candidate v2" in models and "not promoted (gated)" in models and "previous promoted model v1" in models
    forecasts = sections["forecast-vs-actual"][1]
    assert "past forecast made 2026-03-03" in forecasts and "Actuals from gold.sku_daily_demand" in forecasts
    assert "<td>A</td><td>7</td><td>70</td><td>70</td><td>1</td><td>0.05714</td>" in forecasts
    publish = sections["published-to-serving"][1]
    assert (
        "<td>recommendations</td><td>20260310-1</td><td>110</td><td>100</td><td>+10.0%</td><td>0123456789ab</td>"
        in publish
    )


def test_plots_are_embedded_pngs(report: Path):
    sources = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([^"]+)"', report.read_text())
    # volumes, two models over time, the forecast grid, inventory statuses
    assert len(sources) == 5
    for source in sources:
        assert base64.b64decode(source)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in report.read_text()


def test_missing_tables_say_not_available(tmp_path: Path):
    """A shop's first night: nothing modelled, no inventory feed, only validation has run."""
    from shopml.settings import load_settings

    settings = load_settings(var_root=tmp_path / "var")
    lake = Lake(settings)
    _write(
        lake,
        "ops.validation_results",
        _validation_rows()[-2:],
        spec("ops.validation_results").arrow_schema(),
    )
    sections = _sections(build_report(RUN_DATE, RUN_ID, settings, CONFIG).read_text())
    statuses = {anchor: status for anchor, (status, _) in sections.items()}
    assert statuses.pop("validation-results") == "ok"
    assert set(statuses.values()) == {"not-available"}
    assert "<code>gold.inventory_plan</code> has not been written yet" in sections["inventory-status"][1]
    assert "<code>ops.model_metrics</code> has not been written yet" in sections["model-metrics"][1]


def test_a_past_dated_run_reports_its_own_models_publishes_and_validation(tmp_path: Path):
    """``make run`` on a shop whose data ends in 2010: every row is stamped years after the logical date."""
    from shopml.settings import load_settings

    settings = load_settings(var_root=tmp_path / "var")
    lake = Lake(settings)
    now = datetime.now(UTC)
    metrics = _backfill_metrics(now)
    _write(lake, "ops.model_metrics", metrics, spec("ops.model_metrics").arrow_schema())
    _register(lake, metrics)
    _write(lake, "ops.publish_audit", _backfill_audit(now), spec("ops.publish_audit").arrow_schema())
    own = [
        {**row, "landing_date": PAST_DATE, "run_id": PAST_RUN, "success": True, "validated_at": now}
        for row in _validation_rows()
    ]
    # The next night revalidated 12-09 (late data) after this run and failed it; this run's report keeps its own.
    later = {**own[0], "run_id": PAST_RUNS[1], "success": False, "validated_at": now + timedelta(hours=1)}
    _write(lake, "ops.validation_results", [*own, later], spec("ops.validation_results").arrow_schema())

    sections = _sections(build_report(PAST_DATE, PAST_RUN, settings, CONFIG).read_text())
    statuses = {anchor: status for anchor, (status, _) in sections.items()}
    assert (statuses["model-metrics"], statuses["published-to-serving"], statuses["validation-results"]) == (
        "ok",
        "ok",
        "ok",
    )
    models = sections["model-metrics"][1]
    assert f"Candidate f-new (run {PAST_RUN} of 2010-12-09, evaluated " in models
    assert f"promoted; previous promoted model f-old (run {PAST_RUNS[-7]} of 2010-12-02)." in models
    assert (
        "<td>wape</td><td>0.4</td><td>seasonal_naive</td><td>0.45</td><td>-0.05</td><td>0.5</td><td>-0.1</td>" in models
    )
    assert "f-later" not in models
    publish = sections["published-to-serving"][1]
    assert f"Published by run {PAST_RUN}." in publish
    recommendations = version_id(PAST_DATE, PAST_RUN)
    assert f"<td>recommendations</td><td>{recommendations}</td><td>120</td><td>100</td><td>+20.0%</td>" in publish
    assert f"<td>forecasts</td><td>{recommendations}</td><td>50</td><td>–</td>" in publish
    assert "999" not in publish
    assert f"6 expectations on 2010-12-09 (run {PAST_RUN}): 0 failed." in sections["validation-results"][1]


def test_cli_writes_the_report(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("SHOPML_VAR_ROOT", str(tmp_path / "var"))
    from shopml.settings import get_settings

    get_settings.cache_clear()
    try:
        main(["--date", "2026-03-10", "--run-id", "manual"])
    finally:
        get_settings.cache_clear()
    written = Path(capsys.readouterr().out.strip())
    assert written == tmp_path / "var" / "reports" / "2026-03-10" / "index.html"
    assert "Nightly run report 2026-03-10" in written.read_text()


# ---- a real browser ----------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


class DevTools:
    """A minimal Chrome DevTools Protocol client: numbered calls, with every event kept for inspection."""

    def __init__(self, socket) -> None:
        self.socket, self.calls, self.events = socket, 0, []

    def _receive(self) -> dict:
        return json.loads(self.socket.recv(timeout=60))

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self.calls:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> None:
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._receive())

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (failed loads, blocked resources)."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            elif event.get("method") == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"]["text"])
            elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found


def load_in_chromium(page: Path, profile: Path) -> tuple[list[str], list[dict]]:
    """Open ``page`` in headless Chromium; return its console errors and each image's load state."""
    from websockets.sync.client import connect

    browser = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while len(port_file.read_text().splitlines() if port_file.exists() else []) < 2:
            assert browser.poll() is None, f"chromium exited with {browser.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its debugging port within 60s"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            target = next(t for t in json.load(response) if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            tools = DevTools(socket)
            for domain in ("Page", "Runtime", "Log"):
                tools.call(f"{domain}.enable")
            tools.call("Page.navigate", url=page.as_uri())
            tools.wait_for("Page.loadEventFired")
            images = tools.call(
                "Runtime.evaluate",
                expression="Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth}))",
                returnByValue=True,
            )["result"]["value"]
            return tools.errors(), images
    finally:
        browser.terminate()
        browser.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path):
    errors, images = load_in_chromium(report, tmp_path / "profile")
    assert errors == []
    assert len(images) == 5
    assert all(image["complete"] and image["width"] > 0 for image in images), images


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_the_browser_check_sees_broken_pages(tmp_path: Path):
    """The check above would catch a report that regressed: a broken image, a missing file, a console error."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>'
        '<img alt="bad" src="data:image/png;base64,AAAA"><img alt="gone" src="missing.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    errors, images = load_in_chromium(page, tmp_path / "profile")
    assert "boom" in errors
    assert any("Failed to load resource" in error for error in errors)
    assert [image["width"] for image in images] == [0, 0]
