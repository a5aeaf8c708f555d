from __future__ import annotations

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
