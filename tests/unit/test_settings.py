from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shopml.settings import Device, SettingsError, load_settings


def test_defaults_are_the_embedded_ones():
    settings = load_settings()
    assert settings.lake == Path("var/lake")
    assert settings.landing == Path("var/landing")
    assert settings.spark_master == "local[*]"
    assert settings.serving == "sqlite:///var/serving.db"
    assert settings.device is Device.AUTO


def test_environment_uses_the_documented_prefix(monkeypatch):
    monkeypatch.setenv("SHOPML_LAKE_ROOT", "/data/lake")
    monkeypatch.setenv("SHOPML_DEVICE", "cpu")
    settings = load_settings()
    assert settings.lake == Path("/data/lake")
    assert settings.device is Device.CPU


def test_unknown_environment_key_is_named(monkeypatch):
    monkeypatch.setenv("SHOPML_LAKE_ROOTT", "/typo")
    with pytest.raises(SettingsError, match="SHOPML_LAKE_ROOTT"):
        load_settings()


def test_invalid_value_names_the_key(monkeypatch):
    monkeypatch.setenv("SHOPML_DEVICE", "tpu")
    with pytest.raises(SettingsError, match="device"):
        load_settings()


def test_yaml_file_expands_env_and_env_wins(tmp_path, monkeypatch):
    config = tmp_path / "shopml.yaml"
    config.write_text("lake_root: ${DATA}/lake\nspark_master: spark://file:7077\n")
    monkeypatch.setenv("DATA", "/mnt/data")
    monkeypatch.setenv("SHOPML_SPARK_MASTER", "local[2]")
    settings = load_settings(config)
    assert settings.lake == Path("/mnt/data/lake")
    assert settings.spark_master == "local[2]"


def test_yaml_unknown_key_is_rejected(tmp_path):
    config = tmp_path / "shopml.yaml"
    config.write_text("lake_rot: /x\n")
    with pytest.raises(SettingsError, match="lake_rot"):
        load_settings(config)


def test_incremental_knobs_nest_under_incremental(monkeypatch, tmp_path):
    config = tmp_path / "shopml.yaml"
    config.write_text("incremental:\n  spark_master: null\n  max_files_per_run: 6\n")
    from_file = load_settings(config).incremental
    assert (from_file.spark_master, from_file.max_files_per_run) == (None, 6)
    monkeypatch.setenv("SHOPML_INCREMENTAL__MAX_FILES_PER_RUN", "24")
    from_env = load_settings().incremental
    assert (from_env.max_files_per_run, from_env.stream_folder) == (24, "events/stream")


def test_env_replaces_one_nested_field_and_keeps_the_files_others(monkeypatch, tmp_path):
    config = tmp_path / "shopml.yaml"
    config.write_text("incremental:\n  stream_folder: events/live\n  max_files_per_run: 6\n")
    monkeypatch.setenv("SHOPML_INCREMENTAL__MAX_FILES_PER_RUN", "24")
    incremental = load_settings(config).incremental
    assert (incremental.max_files_per_run, incremental.stream_folder) == (24, "events/live")


def test_report_knobs_nest_under_report(monkeypatch):
    monkeypatch.setenv("SHOPML_REPORT__TOP_SKUS", "8")
    report = load_settings().report
    assert (report.top_skus, report.trailing_days) == (8, 7)


def test_unknown_incremental_knob_is_named(monkeypatch):
    monkeypatch.setenv("SHOPML_INCREMENTAL__MAX_FILE", "3")
    with pytest.raises(SettingsError, match=r"incremental\.max_file"):
        load_settings()


def test_loading_settings_imports_nothing_heavy():
    """DAG files import the settings at parse time: no Spark, pandas or model libraries may come with them."""
    code = (
        "import sys\n"
        "from shopml.settings import load_settings\n"
        "load_settings()\n"
        "heavy = ('pyspark', 'pandas', 'numpy', 'torch', 'xgboost', 'great_expectations', 'deltalake', 'duckdb')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
