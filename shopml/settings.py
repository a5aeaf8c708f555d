"""One typed settings model for the whole platform.

Values come from environment variables prefixed ``SHOPML_`` (for example
``SHOPML_LAKE_ROOT``), optionally from a YAML file named by ``SHOPML_CONFIG``
(``${VAR}`` references are expanded), and otherwise from the defaults below,
which are the embedded defaults ``make run`` uses: everything under ``./var``,
Spark in local mode, SQLite as the serving store. Unknown keys are rejected.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopml.config.customer import CustomerConfig
from shopml.config.distributed import DistributedConfig
from shopml.config.features import FeaturesConfig
from shopml.config.forecast import ForecastConfig
from shopml.config.incremental import IncrementalConfig
from shopml.config.notify import NotifyConfig
from shopml.config.recommend import RecommendConfig
from shopml.config.report import ReportConfig
from shopml.config.serving import ServingConfig
from shopml.errors import PermanentError

ENV_PREFIX = "SHOPML_"


# The Airflow task a process runs, named in the lineage log: Airflow's own context variable, which
# shopml/orchestration.py also sets for python tasks and spark-submit (SHOPML_* would be read as a setting).
TASK_ENV = "AIRFLOW_CTX_TASK_ID"


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class SettingsError(PermanentError, ValueError):
    """Raised when configuration is invalid; the message names the bad key."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    var_root: Path = Field(Path("var"), description="Root of all local state (lake, landing, models, reports).")
    lineage_log: Path | None = Field(
        None,
        description="When set, every table read or written is appended here as a JSON line (task, read|write, "
        "table): the DAG tests hold each task to the inlets and outlets it declares.",
    )
    lake_root: Path | None = Field(None, description="Delta Lake root; default <var_root>/lake. May be s3://…")
    landing_root: Path | None = Field(None, description="Raw landing zone; default <var_root>/landing.")
    models_root: Path | None = Field(None, description="Model registry root; default <var_root>/models.")
    reports_root: Path | None = Field(None, description="Nightly reports and GX Data Docs; default <var_root>/reports.")

    spark_master: str = Field("local[*]", description="Spark master URL.")
    spark_shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions; small for one machine.")
    spark_driver_memory: str = Field("4g", description="Driver memory for local mode.")
    spark_driver_java_options: str = Field(
        "-XX:TieredStopAtLevel=1 -Xss16m",
        description="JVM options of the Spark driver (in local mode it runs the tasks too). The default keeps to "
        "the quick C1 compiler: a nightly job on one shop runs for seconds to minutes, in which the optimising "
        "compiler's threads cost more CPU than they save (clean: 35 % less CPU; drop it for hour-long jobs); "
        "and gives threads 16 MB stacks, as MLlib ALS's task lineage overflowed 1 MB (25 iterations with either "
        "compiler, 10 with C1).",
    )
    spark_jars_packages: str = Field("", description="spark.jars.packages, e.g. io.delta:delta-spark_2.13:4.0.0.")
    spark_jars: str = Field("", description="Comma-separated local jar paths added to Spark's classpath.")
    delta_engine: str = Field(
        "auto", pattern="^(auto|spark|rs)$", description="auto: delta-spark if its classes load, else delta-rs."
    )

    serving_url: str = Field("", description="sqlite:///path or redis://…; default sqlite under var_root.")
    device: Device = Field(Device.AUTO, description="Training device: auto (cuda when available), cpu or cuda.")
    seed: int = Field(42, description="Seed for sample data and model training.")

    late_event_max_days: int = Field(
        7, ge=0, description="Events older than this many days before their landing date are quarantined."
    )
    bot_max_events_per_session: int = Field(
        200, ge=1, description="Sessions with more events than this in one landing day are treated as bots."
    )
    non_product_skus: tuple[str, ...] = Field(
        (
            *("POST", "DOT", "C2", "DISCOUNT", "D", "M", "MANUAL", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "S"),
            *("B", "ADJUST", "ADJUST2", "TEST001", "TEST002"),  # bad-debt and stock adjustments, test lines
        ),
        description="SKUs of order lines that are not products (postage, discounts, fees, adjustments, tests), "
        "kept out of product data (case-insensitive).",
    )
    volume_min_ratio: float = Field(
        0.25, gt=0, description="Smallest allowed ratio of a day's valid events to its expected (same-weekday) volume."
    )
    volume_max_ratio: float = Field(
        4.0, gt=0, description="Largest allowed ratio of a day's valid events to its expected (same-weekday) volume."
    )
    volume_reference_weeks: int = Field(
        4, ge=2, description="Weeks of the same weekday whose median is a day's expected event volume."
    )

    landing_max_file_bytes: int = Field(
        4 << 30, ge=1, description="A landed file over this size is rejected (quarantined by name), not ingested."
    )
    landing_max_line_bytes: int = Field(
        1 << 20, ge=1_024, description="A landed file with a line over this size is rejected, not ingested."
    )

    task_retries: int = Field(2, ge=0, description="Airflow task retries (exponential backoff between them).")
    task_retry_delay_s: int = Field(30, ge=0, description="First retry delay in seconds; doubles each retry.")

    # Component knobs, each a typed model next to its code: SHOPML_RECOMMEND__TOP_K=30, or nested YAML.
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    customer: CustomerConfig = Field(default_factory=CustomerConfig)
    incremental: IncrementalConfig = Field(default_factory=IncrementalConfig)
    serving_store: ServingConfig = Field(default_factory=ServingConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("spark_master")
    @classmethod
    def _master_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def _under_var(self, value: Path | None, name: str) -> Path:
        return value if value is not None else self.var_root / name

    @property
    def lake(self) -> Path:
        return self._under_var(self.lake_root, "lake")

    @property
    def landing(self) -> Path:
        return self._under_var(self.landing_root, "landing")

    @property
    def models(self) -> Path:
        return self._under_var(self.models_root, "models")

    @property
    def reports(self) -> Path:
        return self._under_var(self.reports_root, "reports")

    @property
    def serving(self) -> str:
        return self.serving_url or f"sqlite:///{(self.var_root / 'serving.db').as_posix()}"


def _without(values: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """``values`` less each key path in ``paths`` (nested blocks keep their other keys)."""
    kept = {}
    for key, value in values.items():
        inner = [path[1:] for path in paths if path[0] == key]
        if any(not rest for rest in inner):
            continue
        kept[key] = _without(value, inner) if inner and isinstance(value, dict) else value
    return kept


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {key: _expand(item) for key, item in value.items()}
    return value


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings from env, an optional YAML file and explicit overrides.

    Precedence: overrides > environment > YAML file > defaults. Errors name the
    offending key so a typo in a deployment's env is found at start-up.
    """
    path = config_file or os.environ.get(f"{ENV_PREFIX}CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        file_values = _expand(loaded)
    env_paths = [
        tuple(key[len(ENV_PREFIX) :].lower().split("__"))
        for key in os.environ
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG"
    ]
    unknown = {path[0] for path in env_paths} - set(Settings.model_fields)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) in environment: {', '.join(sorted(ENV_PREFIX + k.upper() for k in unknown))}"
        )
    # File values arrive as init arguments, which outrank the environment: drop exactly what the
    # environment sets, so SHOPML_INCREMENTAL__X replaces field x and keeps the file's other fields.
    values = _without(file_values, env_paths)
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
