"""``make run``: the nightly pipeline, for real, on sample data (or your own landing zone).

With no landing data, lands the deterministic sample shop first. Then runs the
``nightly_retrain`` DAG through real Airflow (``airflow dags test``, SQLite
metadata DB under ./var) for the latest landed date, with every landed date
not yet processed in its backfill window, so a fresh lake gets its whole
history in order. Finally prints what the run produced and what is now served:
each model's gate verdict, each published dataset (or why it was skipped) and the
commands to read it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from shopml.catalog import GOLD_RECOMMENDATIONS, OPS_VALIDATION_RESULTS
from shopml.settings import Settings, get_settings, load_settings

if TYPE_CHECKING:
    from shopml.airflow_env import DagRunOutcome

log = logging.getLogger(__name__)

# The sample shop `make run` lands: enough history for 28-day features and three 14-day backtest folds.
SAMPLE = {"users": 2000, "skus": 400, "days": 90, "events_per_day": 8000}


def landed_dates(landing: Path) -> list[date]:
    events = landing / "events"
    if not events.is_dir():
        return []
    return sorted(date.fromisoformat(p.name.removeprefix("date=")) for p in events.glob("date=*") if p.is_dir())


def processed_dates(settings: Settings) -> set[date]:
    """Landing dates whose events already reached silver."""
    from shopml.catalog import OPS_ROW_ACCOUNTING
    from shopml.lake import Lake

    lake = Lake(settings)
    if not lake.exists(OPS_ROW_ACCOUNTING):
        return set()
    rows = lake.read_arrow(OPS_ROW_ACCOUNTING, columns=["dataset", "landing_date", "silver"]).to_pylist()
    return {row["landing_date"] for row in rows if row["dataset"] == "events" and row["silver"] is not None}


def plan_window(landed: list[date], processed: set[date], until: date | None) -> tuple[date, date]:
    """The run's logical date (latest landed, or ``until``) and the first date it must (re)process."""
    if not landed:
        raise SystemExit("nothing has landed: no events/date=YYYY-MM-DD folders under the landing root")
    last = until or landed[-1]
    if last not in landed:
        raise SystemExit(f"no events landed for {last}; landed dates run {landed[0]}..{landed[-1]}")
    pending = [day for day in landed if day <= last and day not in processed]
    return (min(pending) if pending else last), last


def summarise(settings: Settings, first: date, last: date) -> str:
    """What the run produced: tables and rows, quarantine reasons, validation verdict, row accounting."""
    import pyarrow.compute as pc

    from shopml.catalog import OPS_QUARANTINE, OPS_ROW_ACCOUNTING, TABLES
    from shopml.lake import Lake

    lake = Lake(settings)
    lines = [f"Nightly pipeline for landing dates {first}..{last}; lake at {settings.lake.resolve()}", "", "Tables:"]
    for name in TABLES:
        if lake.exists(name):
            rows = lake.read_arrow(name, columns=[]).num_rows
            lines.append(f"  {name:<32} {rows:>12,} rows  (Delta version {lake.version(name)})")
    in_window = (pc.field("landing_date") >= first) & (pc.field("landing_date") <= last)
    if lake.exists(OPS_QUARANTINE):
        reasons = lake.read_arrow(OPS_QUARANTINE, columns=["dataset", "reason"], filter=in_window)
        counts = reasons.group_by(["dataset", "reason"]).aggregate([("reason", "count")]).sort_by("reason_count")
        lines += ["", "Quarantined rows by reason:"]
        lines += [
            f"  {r['dataset']:<10} {r['reason']:<32} {r['reason_count']:>8,}" for r in reversed(counts.to_pylist())
        ]
    if lake.exists(OPS_ROW_ACCOUNTING):
        rows = lake.read_arrow(OPS_ROW_ACCOUNTING, filter=in_window).to_pylist()
        lines += ["", "Row accounting (landed = silver + quarantined + duplicates + bots):"]
        for dataset in ("events", "products", "inventory"):
            picked = [r for r in rows if r["dataset"] == dataset]
            if picked:
                total = {k: sum(r[k] or 0 for r in picked) for k in ("landed", "silver", "duplicates", "bots")}
                quarantined = sum((r["quarantined_clean"] or 0) + (r["quarantined_validate"] or 0) for r in picked)
                ok = total["landed"] == total["silver"] + quarantined + total["duplicates"] + total["bots"]
                lines.append(
                    f"  {dataset:<10} landed {total['landed']:,} = silver {total['silver']:,} + quarantined "
                    f"{quarantined:,} + duplicates {total['duplicates']:,} + bots {total['bots']:,}  "
                    f"[{'reconciled' if ok else 'MISMATCH'}]"
                )
    if lake.exists(OPS_VALIDATION_RESULTS):
        results = lake.read_arrow(OPS_VALIDATION_RESULTS, filter=pc.field("landing_date") == last).to_pylist()
        failed = [r for r in results if not r["success"]]
        verdict = "all expectations passed" if not failed else f"{len(failed)} expectation(s) quarantined rows"
        lines += ["", f"Validation ({len(results)} expectations): {verdict}"]
        lines += [
            f"  {r['suite']}: {r['expectation']}({r['column'] or ''}) {r['unexpected_count']} rows" for r in failed
        ]
        lines.append(
            f"  Data Docs: {(settings.var_root / 'gx/gx/uncommitted/data_docs/local_site/index.html').resolve()}"
        )
    return "\n".join(lines) + "\n"


GATE_TASKS = {
    "recommender": "recommender.evaluate_and_gate",
    "forecaster": "forecaster.backtest_and_gate",
    "customer": "customer.evaluate_and_gate",
}
PUBLISH_TASK = "publish.publish_{dataset}"


def served(settings: Settings, run: DagRunOutcome, last: date) -> str:
    """What the storefront gets after the run: each model's gate verdict, each served dataset, how to read it."""
    from serving.datasets import DATASETS

    lines = ["", "Models:"]
    for model, task_id in GATE_TASKS.items():
        task = run.tasks.get(task_id)
        verdict = ((task.result or {}).get("reason") or task.skip_reason) if task else None
        lines.append(f"  {model:<12} {verdict or (task.state if task else 'not in this run')}")
    lines += ["", f"Served ({settings.serving.split('://', 1)[0]} serving store):"]
    for dataset in DATASETS:
        task = run.tasks.get(PUBLISH_TASK.format(dataset=dataset))
        if task is None:
            continue
        if task.skip_reason:
            lines.append(f"  {dataset:<16} skipped: {task.skip_reason}")
        elif isinstance(task.result, dict):
            kept = " (same content as before: re-pointed)" if task.result.get("reused") else ""
            lines.append(f"  {dataset:<16} version {task.result['version']}: {task.result['key_count']:,} keys{kept}")
    user = _served_user(settings, last)
    lines += ["", "Next:", "  make api    # the storefront read API on http://127.0.0.1:8000 (OpenAPI at /docs)"]
    if user:
        lines.append(f"  curl http://127.0.0.1:8000/v1/recommendations/{user}")
    published = run.tasks.get(PUBLISH_TASK.format(dataset="buy_again"))
    if published is not None and isinstance(published.result, dict):
        buyer = _served_user(settings, last, "buy_again")
        if buyer:
            lines.append(f"  curl 'http://127.0.0.1:8000/v1/recommendations/{buyer}?list=buy_again'")
    if user and isinstance(getattr(run.tasks.get(PUBLISH_TASK.format(dataset="customers")), "result", None), dict):
        lines.append(f"  curl http://127.0.0.1:8000/v1/customers/{user}")
    return "\n".join(lines) + "\n"


def _served_user(settings: Settings, last: date, served_list: str = "all") -> str | None:
    """A real customer with a personal ``served_list`` from this run, for the curl example."""
    import pyarrow.compute as pc

    from shopml.lake import Lake

    lake = Lake(settings)
    if not lake.exists(GOLD_RECOMMENDATIONS):
        return None
    where = (pc.field("scored_date") == last) & ~pc.field("is_fallback") & (pc.field("rank") == 1)
    where &= pc.field("list") == served_list
    rows = lake.read_arrow(GOLD_RECOMMENDATIONS, columns=["user_id"], filter=where)
    return rows["user_id"][0].as_py() if rows.num_rows else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, help="landing root with your own data (default: the sample shop)")
    parser.add_argument("--date", type=date.fromisoformat, help="logical date to run (default: latest landed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(landing_root=args.landing) if args.landing else get_settings()

    from shopml.airflow_env import test_dag

    if args.landing is None and not landed_dates(settings.landing):
        from sample_shop.generate import GeneratorConfig, generate

        log.info("no landing data under %s: landing the sample shop %s", settings.landing, SAMPLE)
        generate(GeneratorConfig(**SAMPLE, seed=settings.seed), settings.landing)
    first, last = plan_window(landed_dates(settings.landing), processed_dates(settings), args.date)
    run = test_dag("nightly_retrain", last, {"backfill_from": first.isoformat()}, settings=settings)
    sys.stdout.write(summarise(settings, first, last) + served(settings, run, last))


if __name__ == "__main__":
    main()
