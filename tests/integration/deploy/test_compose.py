"""docker-compose.yml, .env.example and docker/Dockerfile checked against each other and against the code.

No Docker engine here, so the stack is not started: these checks catch what breaks a deployment
before anyone runs it — an unpinned image, a service without a healthcheck, a volume nobody
declared, a ``SHOPML_*`` variable the settings model would reject, a ``${VAR}`` missing from
.env.example, Airflow components on different metadata databases, jars for another Spark version.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from shopml.deployment import FERNET_KEY, SECRETS, secret_problems
from shopml.settings import ENV_PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "docker" / "Dockerfile"
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}
ONE_SHOT = {"airflow-init"}  # runs to completion; others wait for it instead of health-checking it
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_PINNED_TAG = re.compile(r"^[^:@\s]+:(?!latest$)[^:\s]*\d[^:\s]*$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` against .env.example; ``$$`` is a literal $."""

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise AssertionError(f"compose would refuse to start: {name} unset ({argument})")
        return argument or ""

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


def _environment(service: dict, env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(str(value), env) for key, value in (service.get("environment") or {}).items()}


def _airflow_component(service: dict) -> str | None:
    command = service.get("command")
    return command if isinstance(command, str) and command in AIRFLOW_COMPONENTS else None


def test_every_service_runs_a_pinned_image_or_one_built_here(services):
    stages = set(re.findall(r"^FROM \S+ AS (\w+)$", DOCKERFILE.read_text(), flags=re.MULTILINE))
    for name, service in services.items():
        image = service.get("image", "")
        assert _PINNED_TAG.match(re.sub(r"\$\{[^}]+\}", "1", image)), f"{name}: image {image!r} is not pinned"
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file(), name
            assert build["target"] in stages, f"{name}: no stage {build['target']!r} in {DOCKERFILE.name}"
            assert image.startswith("shopml-"), f"{name}: images built here are named shopml-*"
        else:
            assert "${" not in image, f"{name}: a third-party image's tag must be literal"


def test_every_base_image_is_pinned():
    text = DOCKERFILE.read_text()
    images = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, flags=re.MULTILINE))
    for source in re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE):
        name = source.strip("${}")
        if name in images:
            assert _PINNED_TAG.match(images[name]), f"{name}={images[name]} is not pinned"
        else:
            assert source in {"uv", "jars", "spark", "airflow"}, f"FROM {source}: neither a pinned ARG nor a stage"


def test_long_running_services_have_healthchecks_and_dependencies_wait_for_them(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert "healthcheck" not in service and "restart" not in service, name
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, f"{name} → {dependency}"


def test_every_named_volume_is_declared_and_used(compose, services):
    used = set()
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert not source.startswith((".", "/", "~")), f"{name}: bind mount {source}; use a named volume"
            assert target.startswith("/"), name
            used.add(source)
    assert used == set(compose["volumes"]), "declared volumes and used volumes differ"


def _settings_values(environment: dict[str, str]) -> dict:
    """``SHOPML_*`` variables as load_settings takes them; ``SHOPML_<COMPONENT>__<KEY>`` nests, and a JSON
    list or object is decoded, as the environment source decodes complex fields."""
    values: dict = {}
    for key, value in environment.items():
        if key.startswith(ENV_PREFIX):
            *parents, leaf = key[len(ENV_PREFIX) :].lower().split("__")
            target = values
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = json.loads(value) if value.startswith(("[", "{")) else value
    return values


def test_shopml_variables_are_settings_the_model_accepts(services, env_example):
    environments = {".env.example": env_example}
    environments |= {name: _environment(service, env_example) for name, service in services.items()}
    for name, environment in environments.items():
        values = _settings_values(environment)
        unknown = set(values) - set(Settings.model_fields)
        assert not unknown, f"{name}: {sorted(unknown)} are not settings (load_settings would refuse to start)"
        if values:
            load_settings(**values)  # types, patterns and nested component keys validate


def test_every_compose_variable_is_in_env_example_and_no_secret_is(env_example):
    used = {match.group(1) for match in _VARIABLE.finditer(COMPOSE_FILE.read_text())}
    assert used - set(env_example) == set(), "add these to .env.example"
    assert set(env_example) - used == set(), ".env.example sets variables compose never reads"
    for key, value in env_example.items():
        if re.search(r"PASSWORD|SECRET|FERNET", key):
            assert value == "change-me", f"{key} must be a placeholder in .env.example"


def test_the_stack_refuses_to_start_on_the_placeholder_secrets(services, env_example):
    init = services["airflow-init"]
    script = init["command"][-1]
    assert script.index("shopml.deployment check-secrets") < script.index("airflow db migrate")
    placeholders = _environment(init, env_example)
    problems = secret_problems(placeholders)
    assert len(problems) == len(SECRETS) + 1 and all("placeholder" in p or "Fernet" in p for p in problems)
    generated = dict.fromkeys(SECRETS, secrets.token_urlsafe(24)) | {FERNET_KEY: Fernet.generate_key().decode()}
    assert secret_problems(placeholders | generated) == []
    assert secret_problems(placeholders | generated | {"REDIS_PASSWORD": "short"}) == [
        "REDIS_PASSWORD has 5 characters; at least 16 are required"
    ]


def test_airflow_components_share_one_metadata_database(services, env_example):
    airflow = {name: s for name, s in services.items() if _airflow_component(s) or name == "airflow-init"}
    assert {_airflow_component(s) for s in airflow.values()} - {None} == AIRFLOW_COMPONENTS
    urls = {name: _environment(s, env_example)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] for name, s in airflow.items()}
    assert len(set(urls.values())) == 1, urls
    url = urlsplit(next(iter(urls.values())))
    postgres = _environment(services["postgres"], env_example)
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        f"/{postgres['POSTGRES_DB']}",
    )
    for name, service in airflow.items():
        environment = _environment(service, env_example)
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        api = urlsplit(environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert api.hostname == "airflow-api-server" and api.hostname in services, name
        assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/shopml/app/dags", name
    assert (REPO / "dags").is_dir()


def test_spark_connection_and_settings_point_at_the_master(services, env_example, monkeypatch):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    master_command = services["spark-master"]["command"]
    port = master_command[master_command.index("--port") + 1]
    expected = f"spark://spark-master:{port}"
    scheduler = _environment(services["airflow-scheduler"], env_example)
    assert scheduler["SHOPML_SPARK_MASTER"] == expected
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", scheduler["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert SparkSubmitHook(conn_id="spark_default")._resolve_connection()["master"] == expected
    assert services["spark-worker"]["command"][-1] == expected
    # Executors reach the driver (which runs in the scheduler under LocalExecutor) by its service name.
    assert scheduler["SPARK_LOCAL_HOSTNAME"] == services["airflow-scheduler"]["hostname"] == "airflow-scheduler"


def test_read_api_serves_from_the_redis_service(services, env_example, monkeypatch):
    api = services["api"]
    assert api["command"][:2] == ["uvicorn", "serving.api:app"]
    assert "--limit-concurrency" in api["command"]
    environment = _environment(api, env_example)
    hosts = "SHOPML_SERVING_STORE__API_ALLOWED_HOSTS"
    monkeypatch.setenv(hosts, environment[hosts])
    assert "api" in load_settings().serving_store.api_allowed_hosts, "the service name must be an allowed Host"
    url = urlsplit(environment["SHOPML_SERVING_URL"])
    redis = _environment(services["redis"], env_example)
    assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
    assert url.password == redis["REDISCLI_AUTH"], "the API must use the password Redis is started with"
    redis_command = " ".join(services["redis"]["command"])
    assert "--requirepass" in redis_command and "--appendonly yes" in redis_command
    assert "/data" in {mount.split(":")[1] for mount in services["redis"]["volumes"]}


def test_lake_volume_is_mounted_where_settings_put_var_root(services, env_example):
    for name in ("airflow-scheduler", "spark-worker", "spark-master"):
        mounts = dict(mount.split(":")[:2] for mount in services[name].get("volumes", []))
        if name == "spark-master":
            assert "shopml-var" not in mounts  # the master schedules; it never touches data
            continue
        assert mounts["shopml-var"] == "/opt/shopml/var", name
    scheduler = _environment(services["airflow-scheduler"], env_example)
    assert scheduler["SHOPML_VAR_ROOT"] == "/opt/shopml/var"
    assert scheduler["SHOPML_LAKE_ROOT"].startswith(scheduler["SHOPML_VAR_ROOT"])


def test_gpu_trainer_is_optional_and_reserves_a_gpu(services):
    gpu = services["spark-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert all("profiles" not in s for name, s in services.items() if name != "spark-worker-gpu")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    script = re.search(r"discoveryScript=(\S+)", gpu["environment"]["SPARK_WORKER_OPTS"]).group(1)
    local = REPO / Path(script).relative_to("/opt/shopml/app")
    assert local.is_file() and local.stat().st_mode & stat.S_IXUSR


def test_gpu_discovery_script_prints_what_spark_expects(tmp_path):
    fake = tmp_path / "nvidia-smi"  # stands in for the driver's tool: prints two GPU indexes
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [str(REPO / "docker" / "gpu-discovery.sh")], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert json.loads(out) == {"name": "gpu", "addresses": ["0", "1"]}


def test_images_match_the_python_packages(dockerfile_args):
    """The jars and the cluster must be the versions the drivers' Python packages speak."""
    import pyspark

    args = dockerfile_args
    spark_tag = args["SPARK_IMAGE"].split(":", 1)[1]
    assert args["SPARK_VERSION"] == version("pyspark") == spark_tag.split("-")[0]
    assert args["DELTA_VERSION"] == version("delta-spark")
    airflow_tag = args["AIRFLOW_IMAGE"].split(":", 1)[1]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert airflow_tag == f"{version('apache-airflow')}-python{python}"
    assert args["PYTHON_VERSION"] == python, "executors must run the drivers' Python minor version"
    assert f"java{args['JAVA_MAJOR']}" in spark_tag.split("-")
    jars = {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    assert f"hadoop-client-api-{args['HADOOP_VERSION']}.jar" in jars
    scala = next(name for name in jars if name.startswith("scala-library-"))
    assert scala.removeprefix("scala-library-").startswith(args["SCALA_BINARY_VERSION"] + ".")
    assert f"scala{args['SCALA_BINARY_VERSION']}" in spark_tag
    assert re.search(r"^torch==", (REPO / "constraints.txt").read_text(), flags=re.MULTILINE)


def test_build_context_leaves_local_state_out():
    ignored = (REPO / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git"} <= set(ignored)
    for source in re.findall(r"^COPY (?!--from)(?:--chown=\S+ )?(\S+) ", DOCKERFILE.read_text(), flags=re.MULTILINE):
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
