"""Command-line frame shared by the Spark jobs, so each is a plain ``spark-submit``-able app."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any


def parse_job_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="logical date, YYYY-MM-DD")
    parser.add_argument("--run-id", default="manual", help="Airflow run id (recorded with every row written)")
    return parser.parse_args(argv)


def run_job(description: str, job: Callable[..., dict[str, Any]], argv: Sequence[str] | None = None) -> None:
    """Parse ``--date/--run-id``, run ``job(run_date=, run_id=)`` and print its summary as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_job_args(description, argv)
    summary = job(run_date=args.date, run_id=args.run_id)
    sys.stdout.write(json.dumps(summary, default=str, indent=2) + "\n")
