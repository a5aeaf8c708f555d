"""Serving benchmark: publish throughput into Redis against a naive loop, value encodings, API read latency.

    python -m bench.bench_serving            # 1M users x 20 recommendations
    python -m bench.bench_serving --quick    # 20k users

Starts its own throwaway redis-server (no persistence) on a free loopback port and the API under
uvicorn in a subprocess; nothing shared is touched. Figures go to stdout and bench/results/serving.json.

- publish: ``publish_dataset`` end to end (Delta read in key-range passes, Arrow JSON encoding,
  pipelined HSET batches, verification, pointer flip) in keys/s.
- naive: one ``SET`` per key, one round trip each, with values already encoded (so it only measures
  the write strategy and flatters the naive side); timed on a subset and extrapolated.
- pipelined: the same subset through the store's batched writes, for a like-for-like ratio.
- encoding: the Arrow column-wise JSON the publisher uses against per-value ``json.dumps``; msgpack
  and orjson are measured only when installed.
- api: open-loop load at 500, 1,000 and 2,000 requests/s over keep-alive connections against the API as
  deployed (2 uvicorn workers, ``--limit-concurrency 512``); latency counts from each request's
  scheduled send time, so a stalled server cannot hide queueing (no coordinated omission).
- api_hung_store: the same load against a Redis port that accepts and never answers: every read
  is a 503, and its latency shows what the timeout and the circuit breaker leave of a hung store.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serving.datasets import DATASETS
from serving.encoding import encode_entities
from serving.publish import publish_dataset, version_id
from serving.store import RedisStore, open_store
from shopml.catalog import GOLD_RECOMMENDATIONS
from shopml.config.serving import ServingConfig
from shopml.lake import Lake
from shopml.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "serving.json"
RUN_DATE = date(2026, 1, 2)
RUN_ID = "bench-run"
ITEMS_PER_USER = 20
REASONS = np.array(["trending", "retrieval", "similar_to:SKU-000123", "popular_in:home"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout_s}s")


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def ping() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    _wait_for(ping, 10, "redis-server")
    return process, url


def recommendation_chunk(first_user: int, users: int, rng: np.random.Generator) -> pa.Table:
    """``users`` users x 20 ranked items, shaped like gold.recommendations (user-contiguous, as scorers write)."""
    n = users * ITEMS_PER_USER
    user_ids = np.char.add("u", np.char.zfill(np.arange(first_user, first_user + users).astype(str), 7))
    scores = np.sort(rng.random((users, ITEMS_PER_USER)), axis=1)[:, ::-1].ravel()
    return pa.table(
        {
            "user_id": pa.array(np.repeat(user_ids, ITEMS_PER_USER)),
            "rank": pa.array(np.tile(np.arange(1, ITEMS_PER_USER + 1, dtype=np.int32), users)),
            "sku": pa.array(np.char.add("SKU-", np.char.zfill(rng.integers(0, 50_000, n).astype(str), 6))),
            "score": pa.array(scores),
            "reason": pa.array(REASONS[rng.integers(0, len(REASONS), n)]),
            "is_fallback": pa.array(np.zeros(n, dtype=bool)),
            "model_version": pa.array(["rec-bench"] * n),
            "run_id": pa.array([RUN_ID] * n),
            "generated_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")),
            "scored_date": pa.array([RUN_DATE] * n, pa.date32()),
        }
    )


def write_recommendations(lake: Lake, users: int, chunk_users: int = 100_000) -> float:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for first in range(0, users, chunk_users):
        chunk = recommendation_chunk(first, min(chunk_users, users - first), rng)
        if first == 0:  # the fallback list for unknown users
            default = recommendation_chunk(0, 1, rng)
            default = default.set_column(0, "user_id", pa.array(["__default__"] * ITEMS_PER_USER))
            chunk = pa.concat_tables([chunk, default])
        lake.write_arrow(chunk, GOLD_RECOMMENDATIONS, mode="append")
    return time.perf_counter() - started


def sample_values(store: RedisStore, version: str, count: int) -> list[tuple[bytes, bytes]]:
    key = store.key("recommendations", "data", version)
    pairs: list[tuple[bytes, bytes]] = []
    for entity, value in store._redis.hscan_iter(key, count=1000):
        pairs.append((entity, value))
        if len(pairs) >= count:
            break
    return pairs


def bench_naive_vs_pipelined(
    store: RedisStore, pairs: list[tuple[bytes, bytes]], config: ServingConfig
) -> dict[str, float]:
    client = store._redis
    started = time.perf_counter()
    for entity, value in pairs:
        client.set(b"naive:" + entity, value)
    naive_s = time.perf_counter() - started
    batch = pa.table({"entity": [e.decode() for e, _ in pairs], "payload": [v for _, v in pairs]})
    mean_bytes = sum(len(v) for _, v in pairs) / len(pairs)
    batch_size = max(1, min(config.batch_size, int(config.batch_bytes // mean_bytes)))  # as publish_dataset does
    started = time.perf_counter()
    for i in range(0, len(pairs), batch_size):
        store.write_batch("bench-subset", "v", batch.slice(i, batch_size))
    pipelined_s = time.perf_counter() - started
    return {
        "subset_keys": len(pairs),
        "naive_set_loop_keys_per_s": len(pairs) / naive_s,
        "pipelined_batches_keys_per_s": len(pairs) / pipelined_s,
        "pipelined_vs_naive": naive_s / pipelined_s,
        "pipelined_keys_per_batch": batch_size,
    }


def bench_encodings(lake: Lake, users: int) -> dict[str, Any]:
    """Arrow column-wise JSON against per-value encoders on the same users."""
    import pyarrow.compute as pc

    spec = DATASETS["recommendations"]
    rows = lake.read_arrow(
        spec.table,
        columns=spec.source_columns,
        filter=(pc.field("user_id") < f"u{users:07d}") & (pc.field("scored_date") == pa.scalar(RUN_DATE)),
    )
    started = time.perf_counter()
    encoded = encode_entities(rows, spec)
    arrow_s = time.perf_counter() - started
    json_values = encoded["payload"].to_pylist()
    started = time.perf_counter()
    documents = [json.loads(v) for v in json_values]
    decode_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "users": len(json_values),
        "json_bytes_per_value": sum(map(len, json_values)) / len(json_values),
        "json_arrow_encode_us_per_value": arrow_s / len(json_values) * 1e6,
        "json_stdlib_decode_us_per_value": decode_s / len(json_values) * 1e6,
    }
    started = time.perf_counter()
    [json.dumps(d, separators=(",", ":")).encode() for d in documents]
    out["json_stdlib_encode_us_per_value"] = (time.perf_counter() - started) / len(documents) * 1e6
    for name in ("msgpack", "orjson"):
        if importlib.util.find_spec(name) is None:
            out[f"{name}"] = "not installed"
            continue
        module = __import__(name)
        pack = module.packb if name == "msgpack" else module.dumps
        unpack = module.unpackb if name == "msgpack" else module.loads
        started = time.perf_counter()
        packed = [pack(d) for d in documents]
        out[f"{name}_encode_us_per_value"] = (time.perf_counter() - started) / len(documents) * 1e6
        started = time.perf_counter()
        [unpack(p) for p in packed]
        out[f"{name}_decode_us_per_value"] = (time.perf_counter() - started) / len(documents) * 1e6
        out[f"{name}_bytes_per_value"] = sum(map(len, packed)) / len(packed)
    return out


async def _load(port: int, paths: list[str], rate: float, connections: int) -> tuple[list[float], int]:
    """Open-loop load: request i is due at start + i / rate; latency counts from that moment."""
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            item = await queue.get()
            if item is None:
                break
            due, path = item
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.2
    for i, path in enumerate(paths):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, path))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, errors


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_api(var_root: Path, url: str, users: int, rate: float, duration_s: float, workers: int) -> dict[str, Any]:
    """Open-loop load on the API as deployed (``workers`` uvicorn processes, the compose concurrency limit)."""
    port = _free_port()
    env = {**os.environ, "SHOPML_VAR_ROOT": str(var_root), "SHOPML_SERVING_URL": url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--limit-concurrency",
            "512",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        _wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True, 30, "uvicorn")
        rng = random.Random(11)
        # 95% known users, 5% unknown ones served the fallback list.
        paths = [
            f"/v1/recommendations/u{rng.randrange(users):07d}?k=20"
            if rng.random() < 0.95
            else f"/v1/recommendations/new{rng.randrange(10**6)}?k=20"
            for _ in range(int(rate * duration_s))
        ]
        asyncio.run(_load(port, paths[:200], rate, 32))  # warm-up
        started = time.perf_counter()
        latencies, errors = asyncio.run(_load(port, paths, rate, 32))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "non_200": errors,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "p999_ms": float(np.percentile(ms, 99.9)),
        "max_ms": float(ms.max()),
        "api_workers": workers,
    }


@contextmanager
def hung_redis() -> Iterator[str]:
    """A Redis URL whose port accepts connections (the kernel's listen backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(512)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k users instead of 1M")
    parser.add_argument("--users", type=int, help="override the number of users")
    parser.add_argument("--naive-subset", type=int, help="keys timed with the naive loop (default 20k / 50k)")
    parser.add_argument(
        "--rates", default="500,1000,2000", help="API request rates per second, comma-separated (quick: 500)"
    )
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn workers, as compose's API_WORKERS")
    parser.add_argument("--duration", type=float, help="API load seconds (default 5 quick / 20 full)")
    args = parser.parse_args(argv)
    users = args.users or (20_000 if args.quick else 1_000_000)
    subset = min(users, args.naive_subset or (20_000 if args.quick else 50_000))
    duration = args.duration or (5.0 if args.quick else 20.0)
    rates = [500.0] if args.quick else [float(rate) for rate in args.rates.split(",")]

    load_at_start = os.getloadavg()[0]  # other work on the machine skews every wall-clock figure
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    redis_process, url = start_redis(workdir / "redis")
    try:
        settings = load_settings(var_root=workdir / "var", serving_url=url)
        lake = Lake(settings)
        write_s = write_recommendations(lake, users)
        config = ServingConfig()
        cpu_before, redis_before = resource.getrusage(resource.RUSAGE_SELF), _cpu_seconds(redis_process.pid)
        started = time.perf_counter()
        result = publish_dataset("recommendations", RUN_DATE, RUN_ID, settings=settings, config=config)
        publish_s = time.perf_counter() - started
        cpu_after, redis_after = resource.getrusage(resource.RUSAGE_SELF), _cpu_seconds(redis_process.pid)
        publish_cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        store = open_store(url, config)
        assert isinstance(store, RedisStore)
        pairs = sample_values(store, version_id(RUN_DATE, RUN_ID), subset)
        writes = bench_naive_vs_pipelined(store, pairs, config)
        memory = store._redis.info("memory")["used_memory"]
        store.close()
        figures: dict[str, Any] = {
            "users": users,
            "rows": users * ITEMS_PER_USER,
            "delta_write_s": write_s,
            "publish": {
                "keys": result.key_count,
                "seconds": publish_s,
                "keys_per_s": result.key_count / publish_s,
                "rows_per_s": users * ITEMS_PER_USER / publish_s,
                "publisher_cpu_s": publish_cpu_s,
                "redis_cpu_s": redis_after - redis_before,
                "redis_used_memory_mb": memory / 2**20,
                "batch_bytes": config.batch_bytes,
                "rows_per_pass": config.rows_per_pass,
            },
            "writes_on_subset": writes,
            "naive_extrapolated_full_s": result.key_count / writes["naive_set_loop_keys_per_s"],
            "publish_end_to_end_vs_naive": (result.key_count / publish_s) / writes["naive_set_loop_keys_per_s"],
            "encoding": bench_encodings(lake, min(users, 20_000)),
            "api": {
                f"{rate:.0f}_per_s": bench_api(workdir / "var", url, users, rate, duration, args.api_workers)
                for rate in rates
            },
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": os.getloadavg()[0],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        with hung_redis() as hung_url:  # every read fails: the timeout and the circuit breaker answer
            figures["api_hung_store"] = bench_api(
                workdir / "var", hung_url, users, rates[0], min(duration, 10.0), args.api_workers
            )
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
