"""The one Spark-session factory: reuse the active session, else build one from settings."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

from shopml.settings import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MIN_JAVA = 17
JAVA_HELP = (
    "Spark needs Java {min}+ and none was found{found}. Install a JDK, for example "
    "`sudo apt-get install openjdk-17-jre-headless` (Debian/Ubuntu) or `brew install openjdk@17` (macOS), "
    "then make `java` available on PATH or set JAVA_HOME."
)


def java_major_version() -> int | None:
    """Major version of the `java` Spark would use, or None when there is none."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require_java() -> None:
    """Fail early, with how-to-fix, when the JVM Spark needs is missing or too old."""
    major = java_major_version()
    if major is None or major < MIN_JAVA:
        found = "" if major is None else f" (found Java {major})"
        raise RuntimeError(JAVA_HELP.format(min=MIN_JAVA, found=found))


def driver_java_options(settings: Settings) -> str:
    """The driver's JVM options: the configured ones, and Derby's home under var_root."""
    return f"{settings.spark_driver_java_options} -Dderby.system.home={(settings.var_root / 'derby').resolve()}".strip()


def get_spark(settings: Settings | None = None, app_name: str = "shopml") -> SparkSession:
    """Return the active SparkSession, or start one configured from settings.

    Local mode is tuned for a small machine (few shuffle partitions, no UI,
    UTC session time zone so timestamps are unambiguous); on a cluster the
    master and jars come from settings or spark-submit.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    require_java()
    settings = settings or get_settings()
    builder = (
        SparkSession.builder.config("spark.sql.shuffle.partitions", settings.spark_shuffle_partitions)
        .config("spark.default.parallelism", settings.spark_shuffle_partitions)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.warehouse.dir", str((settings.var_root / "spark-warehouse").resolve()))
        .config("spark.driver.extraJavaOptions", driver_java_options(settings))
    )
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # under spark-submit, --master, --name and --conf decided
        builder = builder.master(settings.spark_master).appName(app_name)
        if settings.spark_master.startswith("local"):
            # Stay on loopback: the host name may resolve to an interface nothing else should reach.
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    if settings.spark_jars_packages:
        builder = builder.config("spark.jars.packages", settings.spark_jars_packages)
    if settings.spark_jars:
        builder = builder.config("spark.jars", settings.spark_jars)
    if settings.delta_engine == "spark" or (
        settings.delta_engine == "auto" and (settings.spark_jars_packages or settings.spark_jars)
    ):
        builder = builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension").config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("started Spark %s on %s", spark.version, spark.sparkContext.master)
    return spark
