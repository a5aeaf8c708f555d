"""Benchmarks: speed and memory targets live here, not in timed tests. ``make bench`` runs them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Save a benchmark's figures as ``bench/results/<name>.json`` (git-ignored)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
