"""Erase a customer on request (GDPR Art. 17): ``python -m jobs.privacy erase --user U-000042``.

Deletes every row that names the customer from every Delta table of the lake (a ``user_id`` column, or
a raw ``payload`` line holding the id as a JSON string: bronze, staging, quarantine), then vacuums those
tables with no retention, so no older table version or data file still holds the rows; removes the
customer's key from every kept version of each serving dataset keyed by customer; and records the
request in ``ops.erasure_audit`` under a SHA-256 of the id (the audit must not keep what it erased).

Erasing changes history: the erased rows no longer add up in ``ops.row_accounting`` for their dates,
and time travel of the vacuumed tables starts at the erasure. Model artifacts trained on the rows are
replaced by the next nightly training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from serving.datasets import DATASETS
from serving.store import open_store
from shopml.catalog import OPS_ERASURE_AUDIT, TABLES, spec
from shopml.lake import Lake
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class Erasure:
    subject_sha256: str
    deleted_rows: dict[str, int] = field(default_factory=dict)
    serving_keys_removed: dict[str, int] = field(default_factory=dict)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _matches(schema: pa.Schema, user_id: str) -> tuple[pc.Expression, str] | None:
    """The Arrow filter and the SQL predicate of the rows naming ``user_id`` in a table of this schema."""
    arrow, sql = [], []
    if "user_id" in schema.names:
        arrow.append(pc.field("user_id") == user_id)
        sql.append(f"user_id = {_sql_string(user_id)}")
    if "payload" in schema.names:
        quoted = json.dumps(user_id, ensure_ascii=False)  # the id as a JSON string value, as a landed line holds it
        arrow.append(pc.match_substring(pc.field("payload"), quoted))
        literal = "".join("\\" + c if c in "%_\\" else c for c in quoted)
        sql.append(f"payload LIKE {_sql_string('%' + literal + '%')} ESCAPE '\\'")
    if not arrow:
        return None
    combined = arrow[0]
    for expression in arrow[1:]:
        combined = combined | expression
    return combined, " OR ".join(sql)


def erase_lake(lake: Lake, user_id: str) -> dict[str, int]:
    """Delete and vacuum away the customer's rows in every table; returns rows deleted per table."""
    deleted = {}
    for table in TABLES:
        if not lake.exists(table):
            continue
        dataset = lake.arrow_dataset(table)
        matches = _matches(dataset.schema, user_id)
        if matches is None:
            continue
        arrow_filter, predicate = matches
        rows = dataset.count_rows(filter=arrow_filter)
        if rows == 0:
            continue
        lake.delete(table, predicate)
        lake.purge_history(table)
        deleted[table] = rows
        log.info("erased %d rows from %s", rows, table)
    return deleted


def erase_serving(settings: Settings, user_id: str) -> dict[str, int]:
    """Remove the customer's key from every kept version of each customer-keyed dataset."""
    store = open_store(settings.serving, settings.serving_store)
    try:
        return {
            name: store.erase_entity(name, user_id) for name, dataset in DATASETS.items() if dataset.entity == "user_id"
        }
    finally:
        store.close()


def erase_customer(user_id: str, settings: Settings | None = None, requested_by: str = "cli") -> Erasure:
    """Erase ``user_id`` from the lake and the serving store and audit the request."""
    if not user_id or user_id.startswith("__"):
        raise ValueError(f"not a customer id: {user_id!r}")
    settings = settings or get_settings()
    lake = Lake(settings)
    erasure = Erasure(hashlib.sha256(user_id.encode()).hexdigest())
    erasure.deleted_rows = erase_lake(lake, user_id)
    erasure.serving_keys_removed = erase_serving(settings, user_id)
    row = {
        "subject_sha256": erasure.subject_sha256,
        "deleted_rows": json.dumps(erasure.deleted_rows, sort_keys=True),
        "serving_keys_removed": sum(erasure.serving_keys_removed.values()),
        "requested_by": requested_by,
        "erased_at": datetime.now(UTC),
    }
    lake.write_arrow(
        pa.Table.from_pylist([row], schema=spec(OPS_ERASURE_AUDIT).arrow_schema()), OPS_ERASURE_AUDIT, mode="append"
    )
    return erasure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.privacy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    erase = commands.add_parser("erase", help="erase one customer from the lake and the serving store")
    erase.add_argument("--user", required=True, help="the customer's user_id")
    erase.add_argument("--requested-by", default="cli", help="recorded in ops.erasure_audit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    erasure = erase_customer(args.user, requested_by=args.requested_by)
    summary: dict[str, Any] = {
        "subject_sha256": erasure.subject_sha256,
        "deleted_rows": erasure.deleted_rows,
        "serving_keys_removed": erasure.serving_keys_removed,
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
