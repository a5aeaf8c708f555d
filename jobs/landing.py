"""What a landing folder holds: the files to ingest, the files rejected with a reason, and those skipped.

A producer may leave anything in the landing zone; one bad file must not fail the night, and no file
may be passed over unseen. Each entry of a ``<dataset>/date=D`` folder is

* **ingested**: a regular JSON Lines or CSV file (optionally gzipped) inside the landing root;
* **skipped** by the producer contract and counted: names starting with ``.`` or ``_`` (``_SUCCESS``
  markers, ``.part`` files still being written) and sub-folders;
* **rejected** with a reason, left where it is and recorded in ``ops.quarantine`` (stage ``ingest``),
  so a rerun rejects it again until the producer replaces it: symbolic links, paths resolving outside
  the landing root, unsupported types, files over ``landing_max_file_bytes``, gzip that does not
  decompress to the end, lines longer than ``landing_max_line_bytes``, and CSV whose header lacks a
  required column or names one twice (any column order is fine: CSV is read by header name).

Pure file-system reads, no Spark: the job turns the result into rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RejectedFile:
    path: Path
    reason: str
    detail: str


@dataclass
class LandingFolder:
    """One landing folder's entries, sorted by name."""

    json_files: list[str] = field(default_factory=list)
    csv_files: list[str] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: LandingFolder) -> None:
        self.json_files += other.json_files
        self.csv_files += other.csv_files
        self.rejected += other.rejected
        self.skipped += other.skipped


def longest_line(path: Path) -> int:
    """Bytes in the file's longest line, reading it to the end (through gzip when the name says so).

    Raises ``OSError``, ``EOFError`` or ``zlib.error`` when the file cannot be read to the end.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    longest = current = 0
    with opener(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            pieces = chunk.split(b"\n")
            current += len(pieces[0])
            if len(pieces) > 1:
                longest = max(longest, current, *map(len, pieces[1:-1]))
                current = len(pieces[-1])
    return max(longest, current)


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line (gzip by name, a UTF-8 byte-order mark dropped);
    empty for an empty file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        first = stream.readline()
    row = next(csv.reader(io.StringIO(first.decode("utf-8-sig", errors="replace"))), [])
    return [name.strip() for name in row]


def header_problem(header: list[str], required: tuple[str, ...]) -> str | None:
    """Why a CSV header cannot be read by name (a required column missing, a column named twice), or None."""
    missing = [name for name in required if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if not missing and not repeated:
        return None
    what = [f"lacks {', '.join(missing)}"] if missing else []
    what += [f"names {', '.join(repeated)} twice"] if repeated else []
    return f"the header {' and '.join(what)} (it reads: {','.join(header)[:500]})"


def _check_file(
    path: Path, root: Path, max_file_bytes: int, max_line_bytes: int, csv_required: tuple[str, ...]
) -> RejectedFile | None:
    if path.is_symlink():
        return RejectedFile(path, "symlink", f"a symbolic link (to {path.readlink()}); land the file itself")
    if not path.resolve().is_relative_to(root):
        return RejectedFile(path, "outside_landing_root", f"resolves to {path.resolve()}, outside {root}")
    if not path.is_file():
        return RejectedFile(path, "not_a_file", "not a regular file")
    if not path.name.endswith(JSON_SUFFIXES + CSV_SUFFIXES):
        return RejectedFile(
            path,
            "unsupported_type",
            f"landing accepts JSON Lines ({', '.join(JSON_SUFFIXES)}) and CSV with a header ({', '.join(CSV_SUFFIXES)})",
        )
    size = path.stat().st_size
    if size > max_file_bytes:
        return RejectedFile(path, "too_large", f"{size:,} bytes > landing_max_file_bytes={max_file_bytes:,}")
    try:
        longest = longest_line(path)
    except (OSError, EOFError, zlib.error) as exc:
        return RejectedFile(path, "unreadable", f"cannot be read to the end ({type(exc).__name__}: {exc})")
    if longest > max_line_bytes:
        return RejectedFile(
            path, "line_too_long", f"a line of {longest:,} bytes > landing_max_line_bytes={max_line_bytes:,}"
        )
    if path.name.endswith(CSV_SUFFIXES) and size and (problem := header_problem(csv_header(path), csv_required)):
        return RejectedFile(path, "csv_header", problem)
    return None


def scan_folder(
    folder: Path, root: Path, max_file_bytes: int, max_line_bytes: int, csv_required: tuple[str, ...] = ()
) -> LandingFolder:
    """Sort a landing folder's entries into ingested, rejected (with reasons) and skipped.

    ``csv_required``: the columns every CSV header of the dataset must name.
    """
    root = root.resolve()
    scanned = LandingFolder()
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")) or (path.is_dir() and not path.is_symlink()):
            scanned.skipped.append(str(path))
            continue
        rejection = _check_file(path, root, max_file_bytes, max_line_bytes, csv_required)
        if rejection is not None:
            log.error("rejected landing file %s: %s (%s)", path, rejection.reason, rejection.detail)
            scanned.rejected.append(rejection)
        elif path.name.endswith(JSON_SUFFIXES):
            scanned.json_files.append(str(path))
        else:
            scanned.csv_files.append(str(path))
    if scanned.skipped:
        log.warning("%s: skipped %d entries by the landing contract: %s", folder, len(scanned.skipped), scanned.skipped)
    return scanned
