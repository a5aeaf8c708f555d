"""What ingest takes from a landing folder, rejects with a reason, or skips and counts (no Spark)."""

from __future__ import annotations

import gzip

import pytest

from jobs.landing import longest_line, scan_folder

LIMITS = {"max_file_bytes": 10_000, "max_line_bytes": 2_000}


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "landing"
    day = root / "events" / "date=2026-01-02"
    day.mkdir(parents=True)
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"a": 1}\n')
    (day / "part-1.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    # Columns in any order; the byte-order mark some exporters write is not part of the first name.
    (day / "part-2.csv.gz").write_bytes(gzip.compress("\ufeffsku,event_ts,event_id\ns1,t,e1\n".encode()))
    (day / "no-id.csv").write_text("sku,event_ts\ns1,t\n")
    (day / "twice.csv").write_text("sku,event_ts,event_id,sku\ns1,t,e1,s2\n")
    (day / "_SUCCESS").write_text("")
    (day / ".part-3.jsonl.inprogress").write_text('{"a": 3}\n')
    (day / "nested").mkdir()
    (day / "link.jsonl").symlink_to(outside)
    (day / "export.xlsx").write_bytes(b"PK\x03\x04")
    (day / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-12])
    (day / "plain.jsonl.gz").write_text('{"a": 1}\n')
    (day / "long.jsonl").write_text('{"a": "' + "x" * 3_000 + '"}\n')
    (day / "big.jsonl").write_text('{"a": 1}\n' * 2_000)
    return root, day


def test_each_entry_is_ingested_rejected_with_its_reason_or_skipped(folder):
    root, day = folder

    scanned = scan_folder(day, root, **LIMITS, csv_required=("event_id", "sku", "event_ts"))

    assert scanned.json_files == [str(day / "part-1.jsonl")]
    assert scanned.csv_files == [str(day / "part-2.csv.gz")]
    assert {r.path.name: r.reason for r in scanned.rejected} == {
        "big.jsonl": "too_large",
        "cut.jsonl.gz": "unreadable",
        "export.xlsx": "unsupported_type",
        "link.jsonl": "symlink",
        "long.jsonl": "line_too_long",
        "no-id.csv": "csv_header",
        "plain.jsonl.gz": "unreadable",
        "twice.csv": "csv_header",
    }
    assert sorted(name.rsplit("/", 1)[1] for name in scanned.skipped) == [
        ".part-3.jsonl.inprogress",
        "_SUCCESS",
        "nested",
    ]
    reasons = {r.path.name: r.detail for r in scanned.rejected}
    assert "landing_max_line_bytes=2,000" in reasons["long.jsonl"]
    assert "secret.jsonl" in reasons["link.jsonl"]
    assert reasons["no-id.csv"] == "the header lacks event_id (it reads: sku,event_ts)"
    assert reasons["twice.csv"].startswith("the header names sku twice")


def test_a_folder_reached_through_a_link_outside_the_root_is_rejected_file_by_file(tmp_path):
    root = tmp_path / "landing"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "part-1.jsonl").write_text('{"a": 1}\n')
    (root / "events").mkdir(parents=True)
    (root / "events" / "date=2026-01-02").symlink_to(elsewhere)

    scanned = scan_folder(root / "events" / "date=2026-01-02", root, **LIMITS)

    assert [r.reason for r in scanned.rejected] == ["outside_landing_root"] and not scanned.json_files


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", 0), (b"abc", 3), (b"ab\n", 2), (b"a\nbcd\nef", 3), (b"x" * 2_500_000 + b"\nyy", 2_500_000)],
)
def test_longest_line_across_read_chunks(tmp_path, content, expected):
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)

    assert longest_line(path) == expected
