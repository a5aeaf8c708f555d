"""Knobs of the 5-minute incremental refresh, apart from the job so the settings model can nest them cheaply.

``settings.incremental`` (``SHOPML_INCREMENTAL__MAX_FILES_PER_RUN=24``, or an ``incremental:`` mapping in the
YAML file). Importing ``jobs.incremental.refresh`` loads Spark, pandas, torch and XGBoost; this module loads only
pydantic, because the settings model is imported wherever a DAG file is parsed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IncrementalConfig(BaseModel):
    """Knobs of the 5-minute refresh (``jobs.incremental``, DAG ``incremental_refresh``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: str = Field("events", description="Name of the stream in ops.stream_watermark.")
    stream_folder: str = Field("events/stream", description="Folder of the micro-batch files under the landing root.")
    max_files_per_run: int = Field(
        12,
        ge=1,
        description="Most files one run reads (an hour of 5-minute batches): after an outage the backlog is "
        "worked off in bounded runs that each fit the task timeout.",
    )
    activity_window_minutes: int = Field(60, ge=1, description="Window of the last-hour activity and trending SKUs.")
    trending_top_n: int = Field(20, ge=1, description="Trending SKUs reported per run.")
    spark_master: str | None = Field(
        "local[2]",
        description="Spark master for micro-batches; local mode by default even where the nightly uses a cluster "
        "(a cluster's executor start-up costs more than a micro-batch's work). None or empty: Settings.spark_master.",
    )
    shuffle_partitions: int = Field(2, ge=1, description="spark.sql.shuffle.partitions for micro-batches.")
    publish_attempts: int = Field(
        2,
        ge=1,
        description="Rebuilds when a newer nightly version became current while the run computed "
        "(its overlays are refused); then the run fails and the watermark stays.",
    )
