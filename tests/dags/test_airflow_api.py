"""`make airflow`'s environment, for real: the API server lists every DAG with no import errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shopml.airflow_env import ADMIN_USER, admin_password, airflow_env
from shopml.settings import load_settings

DAG_IDS = {p.stem for p in (Path(__file__).resolve().parents[2] / "dags").glob("*.py")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_api_server_lists_every_dag_without_import_errors(tmp_path):
    env = airflow_env(load_settings(var_root=tmp_path / "var"))
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
    port = _free_port()
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen([airflow, "api-server", "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API server did not come up in 180 s"
            time.sleep(1)
        token = httpx.post(
            f"{base}/auth/token",
            json={"username": ADMIN_USER, "password": admin_password(Path(env["AIRFLOW_HOME"]))},
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        dags = httpx.get(f"{base}/api/v2/dags", headers=headers, timeout=10).json()
        assert {dag["dag_id"] for dag in dags["dags"]} >= DAG_IDS
        assert all(not dag["is_paused"] for dag in dags["dags"])
        errors = httpx.get(f"{base}/api/v2/importErrors", headers=headers, timeout=10).json()
        assert errors["total_entries"] == 0, errors
        refused = httpx.post(f"{base}/auth/token", json={"username": ADMIN_USER, "password": "admin"}, timeout=10)
        assert refused.status_code in (401, 403), "the local admin password is generated, never admin"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
