"""Command line of the serving store: publish, rollback, list versions, garbage-collect.

    python -m serving publish recommendations --run-id manual__2026-01-02 --date 2026-01-02
    python -m serving publish buy_again --run-id manual__2026-01-02 --date 2026-01-02
    python -m serving rollback recommendations
    python -m serving versions recommendations
    python -m serving gc

Each command prints one JSON document; errors go to stderr with exit status 1. A publish with nothing
to publish for a stated reason (no inventory feed, a table written before its buy-again lists, a past
date while serving holds a later one: ``--force`` publishes it anyway) prints
``{"dataset": ..., "skipped": reason}`` and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from datetime import date
from typing import Any

from serving.datasets import DATASETS
from serving.publish import dataset_versions, gc_datasets, publish_dataset, rollback_dataset
from serving.store import ServingStoreError
from shopml.errors import Skipped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="publish one scored partition as the current version")
    publish.add_argument("dataset", choices=list(DATASETS))
    publish.add_argument("--run-id", required=True, help="run id; rerunning it republishes the same version")
    publish.add_argument("--date", required=True, type=date.fromisoformat, help="scored_date to publish")
    publish.add_argument("--triggered-by", default="cli", help="recorded in ops.publish_audit")
    publish.add_argument(
        "--force", action="store_true", help="make the date current even when serving holds a later one (audited)"
    )
    rollback = commands.add_parser("rollback", help="make the previously published version current again")
    rollback.add_argument("dataset", choices=list(DATASETS))
    rollback.add_argument("--triggered-by", default="cli")
    versions = commands.add_parser("versions", help="list the versions the store holds")
    versions.add_argument("dataset", choices=list(DATASETS))
    commands.add_parser("gc", help="remove orphaned and surplus versions of every dataset")
    return parser


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.command == "publish":
        try:
            result = publish_dataset(
                args.dataset, args.date, args.run_id, triggered_by=args.triggered_by, force=args.force
            )
        except Skipped as exc:
            return {"dataset": args.dataset, "skipped": str(exc)}
        return dataclasses.asdict(result)
    if args.command == "rollback":
        return {"dataset": args.dataset, "current": rollback_dataset(args.dataset, triggered_by=args.triggered_by)}
    if args.command == "versions":
        current, versions = dataset_versions(args.dataset)
        return {"dataset": args.dataset, "current": current, "versions": [v.to_fields() for v in versions]}
    return {"removed": gc_datasets()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        out = run(argv)
    except (ServingStoreError, KeyError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
