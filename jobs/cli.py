"""Command-line frame shared by the Spark jobs, so each is a plain ``spark-submit``-able app.

Every job takes the logical date (``--date``) and, for backfills and first
runs, an optional ``--from`` date: landing dates ``from..date`` are then
processed as one batch, in one Spark application.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from shopml.errors import PERMANENT_EXIT_CODE, PermanentError
from shopml.stages import Stage, running


def parse_job_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="logical date, YYYY-MM-DD")
    parser.add_argument(
        "--from", dest="from_date", type=date.fromisoformat, help="first landing date of a backfill (default: --date)"
    )
    parser.add_argument("--run-id", default="manual", help="Airflow run id (recorded with every row written)")
    args = parser.parse_args(argv)
    if args.from_date and args.from_date > args.date:
        parser.error(f"--from {args.from_date} is after --date {args.date}")
    return args


def run_job(
    description: str, job: Callable[..., dict[str, Any]], stage: Stage, argv: Sequence[str] | None = None
) -> None:
    """Parse the arguments, run ``job(run_date=, run_id=, from_date=)`` held to ``stage``, print its summary as JSON.

    A ``PermanentError`` exits with ``PERMANENT_EXIT_CODE``, so the DAG fails the task without retries.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_job_args(description, argv)
    try:
        with running(stage):
            summary = job(run_date=args.date, run_id=args.run_id, from_date=args.from_date)
    except PermanentError as exc:
        logging.getLogger(job.__module__).exception("%s", exc)
        sys.exit(PERMANENT_EXIT_CODE)
    sys.stdout.write(json.dumps(summary, default=str, indent=2) + "\n")
