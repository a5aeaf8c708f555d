"""Backfills and reruns (issue #8): a backfill window and past-day reruns give the tables the nightly runs gave.

One generated shop lands in one landing zone; its history is processed once, as
a first run does, and the lake copied, so two lakes start byte for byte the same.
Then the last two landing dates D-1..D are processed

* in lake ``nightly`` day by day: ingest → clean → validate → build_features for D-1, then D;
* in lake ``backfill`` as ONE window: every job with ``--from D-1 --date D``.

Every silver table and every gold feature table (every partition: the window's,
and the earlier dates both re-derive for late events) must hold the same rows,
run metadata aside, and the row accounting must reconcile for each of the two
dates in both lakes. Real Spark, Delta and GX; no Airflow.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pyarrow.compute as pc
import pytest

from jobs import features, stages
from sample_shop.generate import GeneratorConfig, generate
from shopml.accounting import COUNT_COLUMNS, reconcile
from shopml.catalog import OPS_QUARANTINE, OPS_ROW_ACCOUNTING
from shopml.lake import Lake
from shopml.settings import load_settings
from tests.shop import run_foundation, tiny_data_conf

# Four nightly pipelines' worth of Spark jobs (history, two nights, the backfill) and a rerun: minutes, not seconds.
pytestmark = pytest.mark.slow

# Ten days, seed 5: late events (1-3 days) land in the window for dates before it, and events are replayed
# both from the history into the window and from one window day into a later one. One bot session a day
# keeps the bot rule exercised but the days small.
SHOP = {
    "users": 300,
    "skus": 60,
    "categories": 6,
    "days": 10,
    "events_per_day": 600,
    "bot_sessions_per_day": 1,
    "seed": 5,
}
# Two days are a window: the second day's replays and late events reach the first (a third cost 80 s of Spark).
WINDOW_DAYS = 2
SILVER_TABLES = ("silver.events", "silver.order_lines", "silver.products", "silver.inventory_snapshots")
# Who wrote a row and when; everything else must be equal.
RUN_METADATA = {"run_id", "ingested_at", "quarantined_at", "updated_at", "validated_at", "corrected_at"}
# On days of a few hundred rows, adaptive execution and code generation cost more than the work itself.


def _nightly(lake: Lake, day, first=None, run_id: str = "nightly") -> None:
    """What one nightly_retrain run does before training: the four Spark jobs, for ``first``..``day``."""
    run_foundation(lake, day, first, run_id=run_id)
    features.run(run_date=day, run_id=run_id, from_date=first, lake=lake)


@pytest.fixture(scope="module")
def tiny_data_spark(spark) -> Iterator[None]:
    with tiny_data_conf(spark):
        yield


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, spark, tiny_data_spark) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("backfill")
    config = GeneratorConfig(**SHOP)
    manifest = generate(config, root / "landing")
    last = config.end_date
    window = [last - timedelta(days=offset) for offset in reversed(range(WINDOW_DAYS))]

    def lake(name: str) -> Lake:
        settings = load_settings(
            var_root=root / name, landing_root=root / "landing", spark_shuffle_partitions=2, spark_master="local[2]"
        )
        return Lake(settings, spark)

    nightly = lake("nightly")
    _nightly(nightly, window[0] - timedelta(days=1), config.start_date, run_id="history")
    shutil.copytree(root / "nightly", root / "backfill")
    backfill = lake("backfill")

    for day in window:
        _nightly(nightly, day, run_id=f"nightly-{day}")
    _nightly(backfill, last, window[0], run_id="backfill")
    return SimpleNamespace(nightly=nightly, backfill=backfill, window=window, manifest=manifest)


def _canonical(value: Any) -> Any:
    if isinstance(value, list):
        items = [_canonical(item) for item in value]
        # Arrow returns a map as (key, value) pairs in no promised order; arrays keep theirs.
        return sorted(items) if items and all(isinstance(item, tuple) for item in items) else items
    return value


def _rows(lake: Lake, table: str, filter: pc.Expression | None = None) -> list[str]:
    """The table's rows without run metadata, each as text, sorted: comparable across lakes."""
    data = lake.read_arrow(table, filter=filter)
    data = data.drop_columns([name for name in data.column_names if name in RUN_METADATA])
    return sorted(repr({name: _canonical(value) for name, value in row.items()}) for row in data.to_pylist())


def _assert_same_rows(table: str, nightly: list[str], backfill: list[str]) -> None:
    only_nightly = Counter(nightly) - Counter(backfill)
    only_backfill = Counter(backfill) - Counter(nightly)
    assert nightly == backfill, (
        f"{table}: {sum(only_nightly.values())} row(s) only after the nightly runs, "
        f"{sum(only_backfill.values())} only after the backfill; e.g.\n"
        f"  nightly:  {sorted(only_nightly)[:2]}\n  backfill: {sorted(only_backfill)[:2]}"
    )


def _assert_same_tables(nightly: Lake, backfill: Lake) -> None:
    for table in (*SILVER_TABLES, *stages.FEATURE_TABLES):
        _assert_same_rows(table, _rows(nightly, table), _rows(backfill, table))


def test_a_two_day_backfill_builds_the_tables_two_nightly_runs_built(lakes):
    window = pc.field("feature_date").isin(lakes.window)
    for table in stages.FEATURE_TABLES:
        built = {row["feature_date"] for row in lakes.backfill.read_arrow(table, filter=window).to_pylist()}
        assert built == set(lakes.window), table  # every date of the window, so equal is not trivially empty
    for table, column in (("silver.events", "event_date"), ("silver.products", "snapshot_date")):
        days = lakes.backfill.read_arrow(table, columns=[column]).column(column).unique().to_pylist()
        assert set(lakes.window) <= set(days), table
    # What makes a window differ from nights, if anything does: late events for days before the window,
    # and replays of events that landed earlier (before the window, or on an earlier day inside it).
    late = pc.field("landing_date").isin(lakes.window) & (pc.field("event_date") < lakes.window[0])
    assert lakes.backfill.read_arrow("silver.events", columns=["event_id"], filter=late).num_rows > 0
    assert sum(lakes.manifest["days"][str(day)]["events"]["replay"] for day in lakes.window) > 0
    _assert_same_tables(lakes.nightly, lakes.backfill)


def test_row_accounting_reconciles_for_every_date_of_the_window_in_both(lakes):
    in_window = pc.field("landing_date").isin(lakes.window)
    counts = {}
    for name, lake in (("nightly", lakes.nightly), ("backfill", lakes.backfill)):
        rows = lake.read_arrow(OPS_ROW_ACCOUNTING, filter=in_window).to_pylist()
        assert {(row["dataset"], row["landing_date"]) for row in rows} == {
            (dataset, day) for dataset in ("events", "products", "inventory") for day in lakes.window
        }, name
        for row in rows:
            reconcile(row)
            assert row["landed"] == lakes.manifest["days"][str(row["landing_date"])][row["dataset"]]["lines"], row
        counts[name] = sorted(
            (row["dataset"], row["landing_date"], *(row[column] for column in COUNT_COLUMNS)) for row in rows
        )
    assert counts["nightly"] == counts["backfill"]


def test_the_window_quarantines_the_same_rows_for_the_same_reasons(lakes):
    in_window = pc.field("landing_date").isin(lakes.window)
    nightly = _rows(lakes.nightly, OPS_QUARANTINE, in_window)
    assert nightly, "the generator plants malformed lines every day"
    _assert_same_rows(OPS_QUARANTINE, nightly, _rows(lakes.backfill, OPS_QUARANTINE, in_window))


def test_rerunning_a_past_day_after_later_days_changes_nothing(lakes):
    # D-1 again, after D ran: its replays of earlier landings and D's late events for it must not shift a row.
    _nightly(lakes.nightly, lakes.window[-2], run_id="rerun")
    _assert_same_tables(lakes.nightly, lakes.backfill)
    in_window = pc.field("landing_date").isin(lakes.window)
    _assert_same_rows(
        OPS_QUARANTINE,
        _rows(lakes.nightly, OPS_QUARANTINE, in_window),
        _rows(lakes.backfill, OPS_QUARANTINE, in_window),
    )
