"""The one I/O layer for Delta tables: every read and write of the lake goes through here.

Two engines write the same Delta format. When the delta-spark JVM classes are
on Spark's classpath (docker/cluster), Spark reads and writes Delta natively
and distributes the work. Otherwise (the embedded default: Maven, and so the
Delta jars, may be out of reach) the delta-rs ``deltalake`` package commits
Arrow data written from Spark, and Spark reads a table's current (or
time-travelled) files as Parquet. Neither engine uses deletion vectors or
column mapping here, so each reads what the other wrote.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shopml.catalog import spec
from shopml.errors import PermanentError
from shopml.settings import TASK_ENV, Settings, get_settings
from shopml.spark import get_spark
from shopml.stages import check_access

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]


class TableNotFoundError(PermanentError, LookupError):
    """A table was read before any job wrote it."""


def date_window(column: str, last: date, first: date | None = None) -> pa.compute.Expression:
    """Rows whose date ``column`` lies in ``first``..``last`` (no lower bound without ``first``): an Arrow filter
    for ``Lake.read_arrow``, pruning date partitions."""
    import pyarrow as pa
    import pyarrow.compute as pc

    window = pc.field(column) <= pa.scalar(last, pa.date32())
    return window if first is None else window & (pc.field(column) >= pa.scalar(first, pa.date32()))


class Lake:
    """Reads and writes the platform's Delta tables by catalog name (``silver.events``)."""

    def __init__(self, settings: Settings | None = None, spark: SparkSession | None = None) -> None:
        self.settings = settings or get_settings()
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = get_spark(self.settings)
        return self._spark

    @cached_property
    def engine(self) -> Literal["spark", "rs"]:
        """``spark`` when delta-spark's classes load in this JVM (or are forced), else ``rs``.

        Without a running Spark session and without Delta jars configured the answer is
        ``rs`` at once: model and publish steps never start a JVM just to ask.
        """
        if self.settings.delta_engine != "auto":
            return self.settings.delta_engine  # type: ignore[return-value]
        if self._spark is None and not (self.settings.spark_jars or self.settings.spark_jars_packages):
            from pyspark.sql import SparkSession

            if SparkSession.getActiveSession() is None:
                return "rs"
        try:
            self.spark._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")
        except Exception:
            return "rs"
        return "spark"

    def _trace(self, kind: Literal["read", "write"], table: str) -> None:
        """Refuse a table the running stage does not declare; append the access to ``settings.lineage_log`` (if set)."""
        check_access(kind, table)
        if self.settings.lineage_log is None:
            return
        entry = {"task": os.environ.get(TASK_ENV, ""), "kind": kind, "table": table}
        with open(self.settings.lineage_log, "a") as log_file:
            log_file.write(json.dumps(entry) + "\n")

    def path(self, table: str) -> str:
        spec(table)
        layer, name = table.split(".", 1)
        return str(Path(self.settings.lake) / layer / name)

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.path(table))

    def _delta(self, table: str, version: int | None = None):
        from deltalake import DeltaTable

        if not self.exists(table):
            raise TableNotFoundError(f"Delta table {table} does not exist yet at {self.path(table)}")
        return DeltaTable(self.path(table), version=version)

    def version(self, table: str) -> int:
        """Current version of a table (what a training run records to be rebuilt exactly)."""
        self._trace("read", table)
        return self._delta(table).version()

    # ---- reads -----------------------------------------------------------------------------

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """The table as a Spark DataFrame, optionally as of an older version (time travel)."""
        self._trace("read", table)
        if self.engine == "spark":
            if not self.exists(table):
                raise TableNotFoundError(f"Delta table {table} does not exist yet at {self.path(table)}")
            reader = self.spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            return reader.load(self.path(table))
        from pyspark.sql.pandas.types import from_arrow_schema

        delta = self._delta(table, version)
        schema = from_arrow_schema(self._arrow_schema(delta))
        files = delta.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        frame = self.spark.read.schema(schema).option("basePath", self.path(table)).parquet(*files)
        return frame.select(*schema.fieldNames())

    def read_or_empty(self, table: str, schema) -> DataFrame:
        """The table, or an empty frame of ``schema`` when nothing has written it yet."""
        if self.exists(table):
            return self.read(table)
        return self.spark.createDataFrame([], schema)

    def read_arrow(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        filter: pa.compute.Expression | None = None,
        version: int | None = None,
    ) -> pa.Table:
        """The table as Arrow, without Spark (model training, serving, analysts' DuckDB)."""
        return self.arrow_dataset(table, version).to_table(columns=columns, filter=filter)

    def read_pandas(self, table: str, columns: Sequence[str] | None = None, filter=None, version=None) -> pd.DataFrame:
        return self.read_arrow(table, columns=columns, filter=filter, version=version).to_pandas()

    def iter_batches(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        filter=None,
        batch_size: int = 50_000,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table in bounded-size Arrow batches (publishing never holds a whole table)."""
        dataset = self.arrow_dataset(table)
        yield from dataset.to_batches(columns=columns, filter=filter, batch_size=batch_size)

    def arrow_dataset(self, table: str, version: int | None = None) -> pa.dataset.Dataset:
        """The table's files as an Arrow dataset, read through Arrow's own local filesystem.

        delta-rs's default filesystem is a Python handler that Arrow's reader threads call back into;
        they can outlive the interpreter and abort the process at exit ("terminate called without an
        active exception", exit 134, after all work is done).
        """
        import pyarrow.fs as pafs

        self._trace("read", table)
        filesystem = pafs.SubTreeFileSystem(str(Path(self.path(table)).resolve()), pafs.LocalFileSystem())
        return self._delta(table, version).to_pyarrow_dataset(filesystem=filesystem)

    @staticmethod
    def _arrow_schema(delta) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(delta.schema().to_arrow())

    # ---- writes ----------------------------------------------------------------------------

    def write(
        self,
        df: DataFrame,
        table: str,
        mode: WriteMode = "overwrite",
        replace_where: str | None = None,
    ) -> int:
        """Write a Spark DataFrame and return the rows written.

        ``replace_where`` overwrites only the matching rows, which makes reruns of a date idempotent.
        """
        partition_by = list(spec(table).partition_by) or None
        self._trace("write", table)
        if self.engine == "spark":
            writer = df.write.format("delta").mode(mode).option("overwriteSchema", "false")
            if replace_where:
                writer = writer.option("replaceWhere", replace_where)
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(self.path(table))
            from delta.tables import DeltaTable as SparkDeltaTable

            last = SparkDeltaTable.forPath(self.spark, self.path(table)).history(1).first()
            return int(last["operationMetrics"].get("numOutputRows", 0))
        with self._arrow_stream(df) as (stream, rows):
            return self.write_arrow(stream, table, mode=mode, replace_where=replace_where, rows=rows)

    @contextmanager
    def _arrow_stream(self, df: DataFrame) -> Iterator[tuple[pa.RecordBatchReader, int]]:
        """Hand a Spark DataFrame to delta-rs as a stream of Arrow batches.

        Spark writes Parquet in parallel to a scratch folder and delta-rs reads it
        back batch by batch, so neither the driver JVM nor Python ever holds the
        whole frame (``toArrow()`` would collect it all on the driver).
        """
        import pyarrow.dataset as ds
        from pyspark.sql.pandas.types import to_arrow_schema

        scratch_root = self.settings.var_root / "tmp"
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch_root, prefix="lake-write-") as scratch:
            df.write.mode("overwrite").parquet(scratch)
            schema = to_arrow_schema(df.schema, timezone="UTC", prefers_large_types=False)
            dataset = ds.dataset(scratch, format="parquet", schema=schema)
            yield dataset.scanner(batch_size=65_536).to_reader(), dataset.count_rows()

    def write_arrow(
        self,
        data: pa.Table | pa.RecordBatchReader,
        table: str,
        mode: WriteMode = "overwrite",
        replace_where: str | None = None,
        rows: int | None = None,
    ) -> int | None:
        """Write Arrow data through delta-rs (also used by model and publish steps that run without Spark).

        ``rows`` is the count of a stream (a table knows its own), for the log and the return value.
        """
        from deltalake import write_deltalake

        self._trace("write", table)
        table_spec = spec(table)
        write_deltalake(
            self.path(table),
            data,
            mode=mode,
            partition_by=list(table_spec.partition_by) or None,
            predicate=replace_where if mode == "overwrite" else None,
            description=table_spec.description if not self.exists(table) else None,
            # New columns (a table gaining one) merge into appends and partition replacements alike.
            schema_mode="merge" if mode == "append" or replace_where else None,
        )
        rows = getattr(data, "num_rows", rows)
        log.info("wrote %s rows to %s (%s%s)", rows, table, mode, f" where {replace_where}" if replace_where else "")
        return rows

    def merge(self, df: DataFrame, table: str, keys: Sequence[str], update: bool = True) -> None:
        """Upsert on ``keys``: matched rows are updated (or left alone when ``update`` is False), new rows inserted."""
        self._trace("write", table)
        if not self.exists(table):
            self.write(df, table)
            return
        condition = " AND ".join(f"t.{key} = s.{key}" for key in keys)
        if self.engine == "spark":
            from delta.tables import DeltaTable as SparkDeltaTable

            merger = SparkDeltaTable.forPath(self.spark, self.path(table)).alias("t").merge(df.alias("s"), condition)
            if update:
                merger = merger.whenMatchedUpdateAll()
            merger.whenNotMatchedInsertAll().execute()
            return
        with self._arrow_stream(df) as (stream, _):
            merger = self._delta(table).merge(stream, condition, source_alias="s", target_alias="t")
            if update:
                merger = merger.when_matched_update_all()
            merger.when_not_matched_insert_all().execute()

    def purge_history(self, table: str) -> None:
        """Vacuum with no retention: data files no longer in the current version are deleted, so rows removed
        from the table (an erasure) cannot be read back by time travel."""
        if self.engine == "spark":
            from delta.tables import DeltaTable as SparkDeltaTable

            key = "spark.databricks.delta.retentionDurationCheck.enabled"
            self.spark.conf.set(key, "false")
            try:
                SparkDeltaTable.forPath(self.spark, self.path(table)).vacuum(0)
            finally:
                self.spark.conf.unset(key)
            return
        self._delta(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)

    def delete(self, table: str, predicate: str) -> None:
        if not self.exists(table):
            return
        self._trace("write", table)
        if self.engine == "spark":
            from delta.tables import DeltaTable as SparkDeltaTable

            SparkDeltaTable.forPath(self.spark, self.path(table)).delete(predicate)
            return
        self._delta(table).delete(predicate)
