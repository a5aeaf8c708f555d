"""A self-contained Airflow for this repository: metadata DB, DAGs folder, connections under ./var.

``python -m shopml.airflow_env standalone`` starts the UI (``make airflow``);
``test <dag_id> <date> [conf-json]`` runs one DAG run for real through
``airflow dags test`` (what ``make run`` does). Nothing here needs a server:
the metadata DB is SQLite under ``<var_root>/airflow``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shopml.errors import SKIP_REASON_KEY
from shopml.settings import Settings, get_settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"


def admin_password(home: Path) -> str:
    """The local admin's password: generated once, in a file only its owner may read (``make airflow`` prints it)."""
    passwords = home / "passwords.json"
    if not passwords.exists():
        descriptor = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump({ADMIN_USER: secrets.token_urlsafe(16)}, stream)
    passwords.chmod(0o600)
    return json.loads(passwords.read_text())[ADMIN_USER]


def airflow_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment for the airflow CLI: absolute ./var paths, SQLite metadata DB, spark_default → settings' master.

    The UI and API listen on loopback only (``AIRFLOW__API__HOST``), with the generated admin password.
    """
    settings = settings or get_settings()
    var = settings.var_root.resolve()
    home = var / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    admin_password(home)
    passwords = home / "passwords.json"
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")]),
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p),
            # Absolute paths, so Spark jobs and DAG parsing see the same lake whatever their working directory.
            "SHOPML_VAR_ROOT": str(var),
        }
    )
    if settings.serving_url:
        env["SHOPML_SERVING_URL"] = settings.serving_url
    for name in ("lake_root", "landing_root", "models_root", "reports_root"):
        value = getattr(settings, name)
        if value is not None and "://" not in str(value):
            env[f"SHOPML_{name.upper()}"] = str(Path(value).resolve())
    # OpenMP threads that spin while waiting make XGBoost many times slower on a shared small machine.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": settings.spark_master}))
    return env


def airflow(
    *args: str, settings: Settings | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the airflow CLI of this venv with this project's environment."""
    command = [str(Path(sys.executable).parent / "airflow"), *args]
    log.info("$ %s", " ".join(command))
    return subprocess.run(command, env=env or airflow_env(settings), check=check)


# Metadata databases this process has migrated: a process's later DAG runs skip the ~8 s CLI call.
_MIGRATED: set[str] = set()


def migrate(settings: Settings | None = None) -> None:
    database = airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if database not in _MIGRATED:
        airflow("db", "migrate", settings=settings)
        _MIGRATED.add(database)


def test_dag(
    dag_id: str,
    logical_date: date,
    conf: dict[str, Any] | None = None,
    settings: Settings | None = None,
    skip_tasks: str | None = None,
) -> DagRunOutcome:
    """One real DAG run (``airflow dags test``): tasks execute, state lands in the metadata DB.

    Fails unless every task succeeded or was skipped for a stated reason: ``dags test`` exits 0
    for a run that created no task at all.

    ``skip_tasks`` is a regex of task ids to mark successful without running them: rerunning
    only the failed part of a night, as clearing those tasks in the UI would.
    """
    migrate(settings)
    env = airflow_env(settings)
    # Airflow 3.3.2's `dags test` cannot finish a run of a DAG with a deadline alert
    # (DeadlineAlertModel.get_by_id is handed the serialized dict): test runs go without one.
    env["SHOPML_NOTIFY__DEADLINE_HOURS"] = "0"
    args = ["dags", "test", dag_id, logical_date.isoformat()]
    if conf:
        args += ["-c", json.dumps(conf)]
    if skip_tasks:
        args += ["--mark-success-pattern", skip_tasks]
    result = airflow(*args, settings=settings, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"DAG {dag_id} failed for {logical_date} (airflow dags test exit {result.returncode}); see the task logs above"
        )
    run = latest_run(dag_id, logical_date, settings)
    if run is None or not run.tasks:
        raise RuntimeError(
            f"DAG {dag_id} ran no task for {logical_date}: is the date before the DAG's start_date? "
            "Airflow reports such a run as successful with nothing done"
        )
    if run.unfinished:
        raise RuntimeError(
            f"DAG {dag_id} for {logical_date} left work undone: "
            + ", ".join(f"{task.task_id} ({task.state or 'never ran'})" for task in run.unfinished)
        )
    return run


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str
    state: str | None
    skip_reason: str | None = None
    result: Any = None


@dataclass(frozen=True)
class DagRunOutcome:
    """What one DAG run did, task by task, read from the metadata DB."""

    run_id: str
    state: str
    tasks: dict[str, TaskOutcome]

    @property
    def unfinished(self) -> list[TaskOutcome]:
        """Tasks that neither succeeded nor were skipped for a stated reason."""
        return [
            task
            for task in self.tasks.values()
            if not (task.state == "success" or (task.state == "skipped" and task.skip_reason))
        ]


def latest_run(dag_id: str, logical_date: date, settings: Settings | None = None) -> DagRunOutcome | None:
    """The newest run of ``dag_id`` for ``logical_date`` in this project's embedded metadata DB."""
    database = Path(airflow_env(settings)["AIRFLOW_HOME"]) / "airflow.db"
    with closing(sqlite3.connect(database)) as db:
        found = db.execute(
            "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? AND date(logical_date) = ? ORDER BY id DESC LIMIT 1",
            (dag_id, _utc_day(logical_date).isoformat()),
        ).fetchone()
        if found is None:
            return None
        run_pk, run_id, state = found
        xcoms = {
            (task_id, key): value
            for task_id, key, value in db.execute(
                "SELECT task_id, key, value FROM xcom WHERE dag_run_id = ? AND key IN (?, 'return_value')",
                (run_pk, SKIP_REASON_KEY),
            )
        }
        tasks = {
            task_id: TaskOutcome(
                task_id,
                state,
                _json(xcoms.get((task_id, SKIP_REASON_KEY))),
                _json(xcoms.get((task_id, "return_value"))),
            )
            for task_id, state in db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
            )
        }
    return DagRunOutcome(run_id, state, tasks)


def _utc_day(logical_date: date) -> date:
    """The UTC day of a logical date (Airflow stores logical dates in UTC); a plain date is its own day."""
    if isinstance(logical_date, datetime):
        return logical_date.astimezone(UTC).date() if logical_date.tzinfo else logical_date.date()
    return logical_date


def _json(value: str | bytes | None) -> Any:
    return None if value is None else json.loads(value)


def standalone(settings: Settings | None = None) -> None:
    migrate(settings)
    env = airflow_env(settings)
    password = admin_password(Path(env["AIRFLOW_HOME"]))
    sys.stdout.write(
        f"Airflow UI: http://127.0.0.1:8080  login {ADMIN_USER} / {password} "
        f"(generated; kept in {env['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE']}, mode 600)\n"
    )
    os.execvpe(str(Path(sys.executable).parent / "airflow"), ["airflow", "standalone"], env)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["standalone"]:
        standalone()
    elif args[:1] == ["test"] and len(args) in (3, 4):
        test_dag(args[1], date.fromisoformat(args[2]), json.loads(args[3]) if len(args) == 4 else None)
    else:
        sys.exit("usage: python -m shopml.airflow_env standalone | test <dag_id> <YYYY-MM-DD> [conf-json]")


if __name__ == "__main__":
    main()
