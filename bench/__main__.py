"""Run every benchmark in turn (``make bench``; ``make bench QUICK=1`` for smoke sizes).

Each runs in its own process so one benchmark's Spark session, threads or
memory never colour the next one's figures.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "bench_pipeline",
    "bench_features",
    "bench_recommend",
    "bench_forecast",
    "bench_serving",
    "bench_incremental",
]


def main(argv: list[str]) -> int:
    failed = []
    for name in BENCHMARKS:
        sys.stdout.write(f"\n=== {name} ===\n")
        sys.stdout.flush()
        if subprocess.run([sys.executable, "-m", f"bench.{name}", *argv], check=False).returncode != 0:
            failed.append(name)
    if failed:
        sys.stdout.write(f"\nfailed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
