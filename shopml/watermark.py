"""Which micro-batch files each stream has processed (``ops.stream_files``, the ledger) and the serving
versions its results went into (``ops.stream_watermark``).

The ledger holds one row per processed file (name, size, SHA-256): a run takes every producer-named
file the ledger does not hold, whatever its name sorts to, so a late rename or a producer with a slower
clock loses nothing. A run appends its files to the ledger, then replaces its stream's watermark row,
only after the serving store accepted its results: a run that fails anywhere before leaves both as they
were and the next run reads the same files again (every step after it is idempotent).

Producer contract: a file appears atomically (written under another name, then renamed) and is named
``batch-YYYYMMDDTHHMMSSZ-NNNN.<jsonl|csv>[.gz]``; a finished file named otherwise is set aside by the
run (``jobs/incremental/``) with a quarantine row and an alert.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shopml import accounting
from shopml.catalog import OPS_STREAM_FILES, OPS_STREAM_WATERMARK, spec
from shopml.lake import Lake

log = logging.getLogger(__name__)

# The producer contract's file names: time-ordered batches, e.g. batch-20260106T100500Z-0000.jsonl.
BATCH_FILE = re.compile(r"^batch-\d{8}T\d{6}Z-\d+\.")


@dataclass(frozen=True)
class Watermark:
    """Where a stream stands: ``last_file`` processed and the serving versions its results went into."""

    stream: str
    last_file: str | None = None
    files: int = 0
    events: int = 0
    served_versions: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    committed_at: datetime | None = None


def read_watermark(lake: Lake, stream: str) -> Watermark:
    """The committed watermark of ``stream``; an empty one before its first run."""
    if not lake.exists(OPS_STREAM_WATERMARK):
        return Watermark(stream)
    rows = lake.read_arrow(OPS_STREAM_WATERMARK, filter=pc.field("stream") == stream).to_pylist()
    if not rows:
        return Watermark(stream)
    row = rows[0]
    return Watermark(
        stream=row["stream"],
        last_file=row["last_file"],
        files=row["files"],
        events=row["events"],
        served_versions=dict(row["served_versions"] or []),
        run_id=row["run_id"],
        committed_at=row["committed_at"],
    )


def commit_watermark(lake: Lake, watermark: Watermark) -> None:
    """Replace the stream's row in one Delta commit (readers see the old or the new row, never none)."""
    row = {
        "stream": watermark.stream,
        "last_file": watermark.last_file,
        "files": watermark.files,
        "events": watermark.events,
        "served_versions": sorted(watermark.served_versions.items()),
        "run_id": watermark.run_id,
        "committed_at": watermark.committed_at,
    }
    stream = watermark.stream.replace("'", "''")
    lake.write_arrow(
        pa.Table.from_pylist([row], schema=spec(OPS_STREAM_WATERMARK).arrow_schema()),
        OPS_STREAM_WATERMARK,
        replace_where=f"stream = '{stream}'",
    )
    log.info("watermark of %s now at %s (run %s)", watermark.stream, watermark.last_file, watermark.run_id)


def processed_files(lake: Lake, stream: str) -> set[tuple[str, int]]:
    """(name, size) of every file the ledger says ``stream`` has processed."""
    if not lake.exists(OPS_STREAM_FILES):
        return set()
    rows = lake.read_arrow(OPS_STREAM_FILES, columns=["file_name", "size_bytes"], filter=pc.field("stream") == stream)
    return set(zip(rows["file_name"].to_pylist(), rows["size_bytes"].to_pylist(), strict=True))


def _ready(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files the producer has finished: not hidden, ``_``-prefixed or with another suffix (its ``.tmp``)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith((".", "_")) and path.name.endswith(suffixes)
    )


def pending_files(folder: Path, processed: set[tuple[str, int]], limit: int, suffixes: tuple[str, ...]) -> list[Path]:
    """The first ``limit`` producer-named files of ``folder`` the ledger does not hold, oldest name first.

    A file renamed in late, or from a producer with a slower clock, sorts before files already processed
    and is still taken; a file rewritten under a processed name with another size is taken again.
    """
    ready = [p for p in _ready(folder, suffixes) if BATCH_FILE.match(p.name)]
    return [p for p in ready if (p.name, p.stat().st_size) not in processed][:limit]


def misnamed_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Finished files whose names break the producer contract (``batch-YYYYMMDDTHHMMSSZ-NNNN.<ext>``)."""
    return [p for p in _ready(folder, suffixes) if not BATCH_FILE.match(p.name)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_processed(
    lake: Lake, stream: str, files: list[Path], run_id: str, at: datetime, counts: Mapping[str, Mapping[str, Any]]
) -> None:
    """Append the run's files with their row accounting to the ledger (one Delta commit), after the serving
    store took their results; then rebuild ``ops.row_accounting`` of their landing dates from the ledger.

    ``counts`` maps each file name to its landing date and counts (``accounting.COUNT_COLUMNS``): summing
    the ledger, rather than adding to the accounting rows, keeps the rows right when a run is redone.
    """
    if not files:
        return
    rows = [
        {
            "stream": stream,
            "file_name": path.name,
            "size_bytes": path.stat().st_size,
            "sha256": _sha256(path),
            "run_id": run_id,
            "processed_at": at,
            **{column: counts[path.name][column] for column in ("landing_date", *accounting.COUNT_COLUMNS)},
        }
        for path in files
    ]
    schema = spec(OPS_STREAM_FILES).arrow_schema()
    lake.write_arrow(pa.Table.from_pylist(rows, schema=schema), OPS_STREAM_FILES, mode="append")
    dates = sorted({row["landing_date"] for row in rows})
    ledger = lake.read_arrow(
        OPS_STREAM_FILES,
        columns=["landing_date", *accounting.COUNT_COLUMNS],
        filter=(pc.field("stream") == stream) & pc.field("landing_date").isin(dates),
    )
    sums = ledger.group_by("landing_date").aggregate([(column, "sum") for column in accounting.COUNT_COLUMNS])
    per_date = {
        row["landing_date"]: {column: row[f"{column}_sum"] for column in accounting.COUNT_COLUMNS}
        for row in sums.to_pylist()
    }
    merged = accounting.merge_stage_counts(lake, accounting.STREAM_DATASET, run_id, per_date, reset=True)
    accounting.write_counts(lake, accounting.STREAM_DATASET, merged)
