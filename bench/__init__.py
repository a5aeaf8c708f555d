"""Benchmarks: speed and memory targets live here, not in timed tests. ``make bench`` runs them all."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Save a benchmark's figures as ``bench/results/<name>.json`` (git-ignored).

    The load average at the end goes with them: other work on the machine inflates every wall time.
    """
    result = result | {"load_average_1m_at_end": round(os.getloadavg()[0], 2)}
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def jvm_peak_mib(spark) -> float:
    """Peak resident memory (VmHWM) of the Spark session's JVM in MiB; NaN where /proc does not say."""
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
