"""The stream watermark: how far each stream's micro-batch files have been processed, in ``ops.stream_watermark``.

One row per stream. A row names the last micro-batch file a run processed (file names sort by
time: ``batch-YYYYMMDDTHHMMSSZ-NNNN.jsonl``) and the serving versions its results were written into.
A run replaces its stream's row in one Delta commit, and only after the serving store accepted its
results, so a run that fails anywhere before leaves the row as it was and the next run reads the
same files again (every step after it is idempotent).

Producer contract: a file appears atomically (written under another name, then renamed) and never
sorts before a file that is already there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from shopml.lake import Lake

log = logging.getLogger(__name__)

WATERMARK_TABLE = "ops.stream_watermark"
SCHEMA = pa.schema(
    [
        ("stream", pa.string()),
        ("last_file", pa.string()),
        ("files", pa.int64()),
        ("events", pa.int64()),
        ("served_versions", pa.map_(pa.string(), pa.string())),
        ("run_id", pa.string()),
        ("committed_at", pa.timestamp("us", tz="UTC")),
    ]
)


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
    if not lake.exists(WATERMARK_TABLE):
        return Watermark(stream)
    rows = lake.read_arrow(WATERMARK_TABLE, filter=pc.field("stream") == stream).to_pylist()
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
    lake.write_arrow(pa.Table.from_pylist([row], schema=SCHEMA), WATERMARK_TABLE, replace_where=f"stream = '{stream}'")
    log.info("watermark of %s now at %s (run %s)", watermark.stream, watermark.last_file, watermark.run_id)


def pending_files(folder: Path, after: str | None, limit: int, suffixes: tuple[str, ...]) -> list[Path]:
    """The first ``limit`` batch files of ``folder`` whose names sort after ``after``, oldest first.

    Files being written (hidden, ``_``-prefixed or with a suffix not in ``suffixes``, like the producer's
    ``.tmp``) are not ready yet.
    """
    if not folder.is_dir():
        return []
    ready = sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith((".", "_"))
        and path.name.endswith(suffixes)
        and (after is None or path.name > after)
    )
    return ready[:limit]
