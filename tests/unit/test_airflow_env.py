"""`make airflow`'s local Airflow: loopback only, a generated admin password only its owner can read."""

from __future__ import annotations

import stat
from pathlib import Path

from shopml.airflow_env import admin_password, airflow_env
from shopml.settings import load_settings


def test_the_local_airflow_listens_on_loopback_with_a_generated_password(tmp_path):
    settings = load_settings(var_root=tmp_path / "var")
    env = airflow_env(settings)
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])

    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    password = admin_password(passwords.parent)
    assert password != "admin" and len(password) >= 16
    airflow_env(settings)
    assert admin_password(passwords.parent) == password, "generated once, kept across starts"
