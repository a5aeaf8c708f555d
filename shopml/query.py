"""Analysts' SQL over the lake: run a ``sql/`` file or an ad-hoc query and print (or save) the result.

One read-only statement per run; it reads the lake's tables and nothing else (DuckDB's file access is
switched off and its configuration locked once the tables are registered; Spark's SQL-on-files too).

Every catalog table the lake holds is a view named ``<layer>_<name>``
(``silver_events``, ``gold_user_features``, ``ops_quarantine``); every
``sql/views/<name>.sql`` is a view named ``<name>`` (``orders``,
``latest_user_features``). Only the tables and views a query mentions are
opened.

Engines: DuckDB (default) scans the Delta tables through delta-rs and Arrow
(no DuckDB extension is downloaded); ``--engine spark`` runs the same SQL in
Spark SQL over ``Lake.read``. The files in ``sql/`` are written to run on both.

Time travel per table: ``--version gold.user_features=3`` or
``--as-of gold.user_features=2026-02-01T06:00:00+00:00``; ``--as-of TIMESTAMP``
alone applies to every table.

Examples::

    python -m shopml.query sql/daily_revenue.sql
    python -m shopml.query -e "select count(*) as users from gold_user_features" --engine spark
    python -m shopml.query sql/top_products_by_category.sql --out top.csv
    python -m shopml.query --list
    python -m shopml.query --describe gold.user_features
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shopml.catalog import TABLES, spec
from shopml.lake import Lake

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
VIEWS_DIR = SQL_DIR / "views"
Engine = Literal["duckdb", "spark"]


class QueryError(RuntimeError):
    """The query failed; the message names tables it mentions that the lake does not hold yet."""


def view_name(table: str) -> str:
    """SQL name of a catalog table: ``gold.user_features`` → ``gold_user_features``."""
    return table.replace(".", "_")


@dataclass(frozen=True)
class TimeTravel:
    """Which version of each table to read: an explicit version, a timestamp, or (default) the latest."""

    versions: dict[str, int] = field(default_factory=dict)
    as_of: dict[str, datetime] = field(default_factory=dict)
    default_as_of: datetime | None = None

    def version(self, lake: Lake, table: str) -> int | None:
        if table in self.versions:
            return self.versions[table]
        moment = self.as_of.get(table, self.default_as_of)
        if moment is None:
            return None
        delta = lake._delta(table)
        delta.load_as_version(moment)
        return delta.version()


def read_sql(name_or_path: str) -> str:
    """A query file's text without the trailing semicolon (both engines run one statement)."""
    return Path(name_or_path).read_text().strip().rstrip(";")


def _mentions(sql: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", sql, flags=re.IGNORECASE) is not None


def _sql_views() -> dict[str, str]:
    return {path.stem: read_sql(str(path)) for path in sorted(VIEWS_DIR.glob("*.sql"))}


@dataclass
class _Plan:
    """What a query needs registered: tables (by catalog name) and sql/views in dependency order."""

    tables: list[str] = field(default_factory=list)
    views: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _plan(lake: Lake, sql: str) -> _Plan:
    plan = _Plan()
    views = _sql_views()

    def visit(text: str, seen: tuple[str, ...]) -> None:
        for table in TABLES:
            if _mentions(text, view_name(table)) and table not in plan.tables + plan.missing:
                (plan.tables if lake.exists(table) else plan.missing).append(table)
        for name, body in views.items():
            if name not in seen and _mentions(text, name) and name not in [v for v, _ in plan.views]:
                visit(body, (*seen, name))
                plan.views.append((name, body))

    visit(sql, ())
    return plan


# Statement kinds an analyst's query may be: reading only, one at a time.
_QUERY_KINDS = ("SELECT", "EXPLAIN")
_QUERY_START = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(select|with|from|values|table|explain)\b", re.IGNORECASE)


def check_one_query(sql: str) -> None:
    """Refuse anything but one read-only statement: ``COPY … TO``, ``CREATE``, ``ATTACH`` or a second
    statement after a ``;`` would write files or change the session the lake's tables are registered in."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.ParserException:
        # Spark SQL that DuckDB cannot parse: at least one statement that starts as a query.
        if ";" in sql or not _QUERY_START.match(sql):
            raise QueryError("only one read-only query (SELECT, WITH …) may be run") from None
        return
    if len(statements) != 1:
        raise QueryError(f"only one statement may be run; got {len(statements)}")
    kind = statements[0].type.name
    if kind not in _QUERY_KINDS:
        raise QueryError(f"only read-only queries may be run; got a {kind} statement")


def _fail(exc: Exception, plan: _Plan) -> QueryError:
    hint = f" (not in the lake yet: {', '.join(plan.missing)})" if plan.missing else ""
    return QueryError(f"{exc}{hint}")


def _run_duckdb(lake: Lake, sql: str, plan: _Plan, travel: TimeTravel) -> pa.Table:
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table in plan.tables:
            dataset = lake.arrow_dataset(table, travel.version(lake, table))
            con.register(view_name(table), dataset)
        try:
            for name, body in plan.views:
                con.execute(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {body}")
            # The lake's tables are registered: from here on the query reads them and nothing else.
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            result = con.sql(sql).arrow()
        except duckdb.Error as exc:
            raise _fail(exc, plan) from exc
        return result.read_all() if hasattr(result, "read_all") else result
    finally:
        con.close()


def _run_spark(lake: Lake, sql: str, plan: _Plan, travel: TimeTravel) -> pa.Table:
    from pyspark.errors import PySparkException

    for table in plan.tables:
        lake.read(table, version=travel.version(lake, table)).createOrReplaceTempView(view_name(table))
    files_key = "spark.sql.runSQLOnFiles"  # SELECT * FROM csv.`/any/path`
    saved = lake.spark.conf.get(files_key)
    lake.spark.conf.set(files_key, "false")
    try:
        for name, body in plan.views:
            lake.spark.sql(body).createOrReplaceTempView(name)
        return lake.spark.sql(sql).toArrow()
    except PySparkException as exc:
        raise _fail(exc, plan) from exc
    finally:
        lake.spark.conf.set(files_key, saved)


def run_query(
    sql: str, engine: Engine = "duckdb", lake: Lake | None = None, travel: TimeTravel | None = None
) -> pa.Table:
    """Run one SQL statement over the lake's tables and ``sql/views`` and return the result as Arrow."""
    lake = lake or Lake()
    sql = sql.strip().rstrip(";")
    check_one_query(sql)
    plan = _plan(lake, sql)
    log.info("%s query over %s", engine, ", ".join(plan.tables + [name for name, _ in plan.views]) or "no tables")
    runner = _run_duckdb if engine == "duckdb" else _run_spark
    return runner(lake, sql, plan, travel or TimeTravel())


def describe(lake: Lake, table: str) -> str:
    """Table description, partitioning and every column with its type and (catalog) meaning."""
    table_spec = spec(table)
    lines = [f"{table}: {table_spec.description}"]
    if table_spec.partition_by:
        lines.append(f"partitioned by {', '.join(table_spec.partition_by)}")
    if lake.exists(table):
        delta = lake._delta(table)
        lines.append(f"version {delta.version()}")
        for column in lake._arrow_schema(delta):
            lines.append(f"  {column.name:<28} {column.type!s:<28} {table_spec.docs.get(column.name, '')}")
    else:
        lines.append("(not in the lake yet)")
    return "\n".join(lines)


def list_tables(lake: Lake) -> str:
    """The SQL names analysts can query now, with what each holds."""
    lines = [f"{view_name(name):<32} {table.description}" for name, table in TABLES.items() if lake.exists(name)]
    lines += [f"{name:<32} view: sql/views/{name}.sql" for name in _sql_views()]
    return "\n".join(lines)


def format_table(table: pa.Table, max_rows: int) -> str:
    frame = table.to_pandas()
    shown = frame.to_string(index=False, max_rows=max_rows, max_colwidth=60) if len(frame.columns) else ""
    return f"{shown}\n({table.num_rows} row{'s' if table.num_rows != 1 else ''})"


def write_result(table: pa.Table, path: Path) -> None:
    """CSV (nested values as text) or Parquet, by the file suffix."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.suffix == ".csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        raise ValueError(f"--out must end in .csv or .parquet, got {path}")


def _table_value(text: str, option: str) -> tuple[str, str]:
    table, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{option} expects TABLE=VALUE, got {text!r}")
    spec(table)
    return table, value


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shopml.query",
        description="Run SQL over the Delta lake with DuckDB (default) or Spark SQL.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a .sql file, e.g. sql/daily_revenue.sql")
    source.add_argument("-e", "--execute", metavar="SQL", help="an ad-hoc query")
    source.add_argument("--list", action="store_true", help="list the tables and views that can be queried")
    source.add_argument("--describe", metavar="TABLE", help="show a table's columns, e.g. gold.user_features")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--out", type=Path, help="also write the result to this .csv or .parquet file")
    parser.add_argument("--max-rows", type=int, default=50, help="rows to print (default 50)")
    parser.add_argument("--version", action="append", default=[], metavar="TABLE=N", help="read TABLE at version N")
    parser.add_argument(
        "--as-of", action="append", default=[], metavar="[TABLE=]TIMESTAMP", help="read tables as of a time (UTC)"
    )
    return parser


def _travel(args: argparse.Namespace) -> TimeTravel:
    versions = {}
    for text in args.version:
        table, value = _table_value(text, "--version")
        versions[table] = int(value)
    as_of: dict[str, datetime] = {}
    default = None
    for text in args.as_of:
        if "=" in text:
            table, value = _table_value(text, "--as-of")
            as_of[table] = _timestamp(value)
        else:
            default = _timestamp(text)
    return TimeTravel(versions=versions, as_of=as_of, default_as_of=default)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lake = Lake()
    if args.list:
        sys.stdout.write(list_tables(lake) + "\n")
        return 0
    if args.describe:
        sys.stdout.write(describe(lake, args.describe) + "\n")
        return 0
    try:
        travel = _travel(args)
    except (argparse.ArgumentTypeError, KeyError, ValueError) as exc:
        parser.error(str(exc))
    sql = args.execute if args.execute is not None else read_sql(args.file)
    try:
        result = run_query(sql, engine=args.engine, lake=lake, travel=travel)
    except QueryError as exc:
        sys.stderr.write(f"query failed: {exc}\n")
        return 1
    sys.stdout.write(format_table(result, args.max_rows) + "\n")
    if args.out:
        write_result(result, args.out)
        sys.stdout.write(f"wrote {result.num_rows} rows to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
