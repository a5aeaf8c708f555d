"""Every file in sql/ runs on the feature scenario's lake with both engines, and the query command works."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shopml.query import SQL_DIR, QueryError, TimeTravel, main, read_sql, run_query

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))


def test_sql_dir_has_the_analyst_queries():
    names = {path.stem for path in SQL_FILES}
    assert {"daily_revenue", "top_products_by_category", "conversion_funnel", "cohort_retention"} <= names
    assert {"feature_freshness", "feature_null_rates", "validation_failures", "quarantine_trends"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", SQL_FILES, ids=lambda path: str(path.relative_to(SQL_DIR)))
def test_sql_file_returns_rows_on_both_engines(scenario, path: Path):
    sql = read_sql(str(path))
    duck = run_query(sql, engine="duckdb", lake=scenario.lake)
    spark = run_query(sql, engine="spark", lake=scenario.lake)
    assert duck.num_rows > 0
    assert (spark.num_rows, spark.column_names) == (duck.num_rows, duck.column_names)


def test_daily_revenue_matches_the_order_lines(scenario):
    result = run_query(read_sql(str(SQL_DIR / "daily_revenue.sql")), lake=scenario.lake).to_pylist()
    lines = scenario.lake.read_arrow("silver.order_lines").to_pylist()
    day = result[-1]["event_date"]
    purchases = [r for r in lines if r["event_date"] == day and r["line_type"] == "purchase"]
    assert result[-1]["orders"] == len({r["order_id"] for r in purchases})
    assert result[-1]["gross_revenue"] == pytest.approx(float(sum(r["revenue"] for r in purchases)))


def test_the_crm_export_holds_the_newest_scores_as_flat_csv(scenario, monkeypatch, tmp_path):
    from shopml.settings import get_settings

    monkeypatch.setenv("SHOPML_VAR_ROOT", str(scenario.settings.var_root))
    get_settings.cache_clear()
    out = tmp_path / "customers.csv"
    try:
        assert main([str(SQL_DIR / "customer_scores.sql"), "--out", str(out)]) == 0
    finally:
        get_settings.cache_clear()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("user_id,p_purchase_30d,p_churn_90d,expected_revenue_90d,rfm_segment,top_reasons")
    assert [line.split(",")[0] for line in lines[1:]] == ["u3", "u2", "u1"]  # most at risk first, lapsed last
    assert "recency_days=2 (+0.52); orders_90d=1 (-0.10)" in lines[1]


def test_time_travel_by_version_and_timestamp(scenario):
    sql = "select count(*) as n from gold_feature_corrections"
    # version 0: the first night wrote no corrections; the latest holds the late-data night's 10 rows
    assert run_query(sql, lake=scenario.lake).to_pylist() == [{"n": 10}]
    old = TimeTravel(versions={"gold.feature_corrections": 0})
    assert run_query(sql, lake=scenario.lake, travel=old).to_pylist() == [{"n": 0}]
    assert run_query(sql, engine="spark", lake=scenario.lake, travel=old).to_pylist() == [{"n": 0}]
    history = scenario.lake._delta("gold.feature_corrections").history()
    first_commit = min(history, key=lambda h: h["version"])["timestamp"]
    at_first = TimeTravel(default_as_of=datetime.fromtimestamp(first_commit / 1000, UTC))
    assert run_query(sql, lake=scenario.lake, travel=at_first).to_pylist() == [{"n": 0}]


def test_command_prints_and_writes_results(scenario, monkeypatch, capsys, tmp_path):
    from shopml.settings import get_settings

    monkeypatch.setenv("SHOPML_VAR_ROOT", str(scenario.settings.var_root))
    get_settings.cache_clear()
    try:
        out = tmp_path / "revenue.parquet"
        assert main([str(SQL_DIR / "daily_revenue.sql"), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "gross_revenue" in printed and f"wrote {pq.read_table(out).num_rows} rows" in printed
        assert main(["-e", "select count(*) as users from latest_user_features", "--out", str(tmp_path / "u.csv")]) == 0
        assert (tmp_path / "u.csv").read_text().splitlines() == ["users", "4"]
        assert main(["--version", "gold.feature_corrections=0", "-e", "select * from gold_feature_corrections"]) == 0
        assert "(0 rows)" in capsys.readouterr().out
        assert main(["-e", "select * from gold_recommendations"]) == 1
        assert "not in the lake yet: gold.recommendations" in capsys.readouterr().err
        assert main(["--describe", "gold.user_features"]) == 0
        assert "days_since_first_seen" in capsys.readouterr().out
        assert main(["--list"]) == 0
        assert "gold_user_features" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "sql",
    [
        "select 1 as a; select 2 as b",
        "copy (select 1 as a) to 'out.csv'",
        "create table copied as select * from gold_user_features",
        "attach 'other.duckdb' as other",
        "set enable_external_access = true",
    ],
)
def test_only_one_read_only_statement_runs(scenario, sql):
    with pytest.raises(QueryError, match="only"):
        run_query(sql, lake=scenario.lake)


@pytest.mark.parametrize(
    ("engine", "template"),
    [("duckdb", "select * from read_csv('{path}')"), ("spark", "select * from csv.`{path}`")],
)
def test_a_query_reads_the_lake_and_no_other_file(scenario, tmp_path, engine, template):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")

    with pytest.raises(QueryError) as failure:
        run_query(template.format(path=secret), engine=engine, lake=scenario.lake)

    assert "hunter2" not in str(failure.value)
    assert run_query("select count(*) as n from gold_user_features", engine=engine, lake=scenario.lake).num_rows == 1
