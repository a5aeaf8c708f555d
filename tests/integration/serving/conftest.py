"""Real stores for the serving tests: a throwaway redis-server (or REDIS_URL) and SQLite files.

Redis: ``REDIS_URL`` when set (keys are namespaced per test and removed after it, so a shared server
is safe), else a private ``redis-server`` on a free loopback port without persistence, stopped at the
end. The tests fail, with the reason, when neither can be had.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shopml.config.serving import ServingConfig
from shopml.lake import Lake
from shopml.settings import Settings, load_settings

REDIS_BINARY = "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (an unreachable store)."""
    return free_port()


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ping(url: str, timeout_s: float) -> Exception | None:
    import redis

    deadline, error = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
            client.ping()
            client.close()
            return None
        except redis.RedisError as exc:
            error = exc
            time.sleep(0.05)
    return error


def start_redis(workdir: Path, *extra: str) -> RedisServer:
    """A private redis-server on a free loopback port, no persistence."""
    binary = shutil.which(REDIS_BINARY) or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.fail(
            "no Redis for the serving tests: set REDIS_URL or install redis-server (apt-get install redis-server)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(f"redis://127.0.0.1:{port}/0", process)
    error = _ping(server.url, 10)
    if error is not None:
        server.stop()
        pytest.fail(f"could not start {binary} on port {port} for the serving tests: {error}")
    return server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        error = _ping(url, 5)
        if error is not None:
            pytest.fail(f"REDIS_URL={url} is set but unreachable: {error}")
        yield url
        return
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start dedicated servers a test may stop or starve (never the shared one)."""
    started: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        started.append(start_redis(tmp_path / f"redis-{len(started)}", *extra))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def serving_config(key_prefix: str) -> ServingConfig:
    # A generous API timeout: the suite's Spark jobs share the two cores with the local redis-server.
    return ServingConfig(key_prefix=key_prefix, batch_size=2, versions_to_keep=2, api_timeout_s=1.0)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _remove_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture
def serving_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, key_prefix: str
) -> Iterator[Settings]:
    """Settings whose serving store is the backend under test (SQLite under the test's var root)."""
    if backend == "sqlite":
        yield load_settings(var_root=tmp_path / "var")
        return
    url = request.getfixturevalue("redis_url")
    yield load_settings(var_root=tmp_path / "var", serving_url=url)
    _remove_keys(url, key_prefix)


@pytest.fixture
def serving_lake(serving_settings: Settings) -> Lake:
    """A Lake without Spark: the serving stage reads and writes through delta-rs only."""
    return Lake(serving_settings)


@pytest.fixture
def live_api() -> Iterator[Callable[[Settings, ServingConfig], str]]:
    """Run the real API under uvicorn on a free loopback port (in a thread); returns its base URL."""
    import uvicorn

    from serving.api import create_app

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: Settings, config: ServingConfig) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, config), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
