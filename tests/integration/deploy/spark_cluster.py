"""A real Spark standalone cluster on loopback: one master and one worker process from the pyspark install.

The same daemons the compose file runs (``spark-class …master.Master`` / ``…worker.Worker``), kept
small for a shared 2-core machine: one worker with 1 core and 1 GiB, 256 MiB daemon heaps, no REST
server. Everything binds to 127.0.0.1 (``SPARK_LOCAL_IP``), so no traffic leaves the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def loopback_env(**extra: str) -> dict[str, str]:
    """Environment for Spark daemons and drivers: loopback only, this venv's Python on executors."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(BIN_DIR), os.environ.get("PATH", "")]),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_LOCAL_HOSTNAME": LOOPBACK,
        "PYSPARK_PYTHON": sys.executable,
        **extra,
    }


@dataclass
class LocalSparkCluster:
    master_url: str
    webui_url: str
    work_dir: Path
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def state(self) -> dict:
        """The master's own view (``/json/``): workers, cores, running and completed applications."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=5) as response:
            return json.loads(response.read())

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self.processes):  # worker first, then master
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _daemon(cluster: LocalSparkCluster, name: str, args: list[str], env: dict[str, str]) -> None:
    log = (cluster.logs / f"{name}.log").open("w")
    command = [str(BIN_DIR / "spark-class"), *args]
    cluster.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
    log.close()


def _wait_for(cluster: LocalSparkCluster, ready, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.processes):
            raise RuntimeError(f"a Spark daemon exited while waiting for {what}:\n{cluster.log_tail()}")
        try:
            if ready(cluster.state()):
                return
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no {what} after {timeout_s:.0f}s:\n{cluster.log_tail()}")


def start_cluster(root: Path, cores: int = 1, memory: str = "1g", timeout_s: float = 180) -> LocalSparkCluster:
    """Start a master and one worker and return once the worker has registered; stops both on failure."""
    port, webui_port, worker_webui_port = free_port(), free_port(), free_port()
    cluster = LocalSparkCluster(
        master_url=f"spark://{LOOPBACK}:{port}",
        webui_url=f"http://{LOOPBACK}:{webui_port}",
        work_dir=root / "work",
        logs=root / "logs",
    )
    cluster.work_dir.mkdir(parents=True, exist_ok=True)
    cluster.logs.mkdir(parents=True, exist_ok=True)
    env = loopback_env(
        SPARK_DAEMON_MEMORY="256m",
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
        SPARK_LOG_DIR=str(cluster.logs),
        SPARK_LOCAL_DIRS=str(root / "local"),
    )
    try:
        master = ["--host", LOOPBACK, "--port", str(port), "--webui-port", str(webui_port)]
        _daemon(cluster, "master", ["org.apache.spark.deploy.master.Master", *master], env)
        _wait_for(cluster, lambda state: state.get("status") == "ALIVE", "live master", timeout_s)
        worker = ["--host", LOOPBACK, "--cores", str(cores), "--memory", memory, "--webui-port", str(worker_webui_port)]
        worker += ["--work-dir", str(cluster.work_dir), cluster.master_url]
        _daemon(cluster, "worker", ["org.apache.spark.deploy.worker.Worker", *worker], env)
        _wait_for(cluster, lambda state: state.get("aliveworkers") == 1, "registered worker", timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster
