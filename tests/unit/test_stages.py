"""Stages: every declaration names real code and real tables, and the lake holds a running stage to its own."""

from __future__ import annotations

import importlib
from datetime import date

import pyarrow as pa
import pytest

from shopml.catalog import BRONZE_EVENTS, SILVER_EVENTS, TABLES
from shopml.orchestration import JOBS_DIR
from shopml.stages import Stage, UndeclaredTableError, running

STAGE_MODULES = ("jobs.stages", "models.forecast.stages", "models.recommend.stages", "serving.stages")


def _declared() -> dict[str, Stage]:
    found = {}
    for module_name in STAGE_MODULES:
        for name, value in vars(importlib.import_module(module_name)).items():
            for key, stage in value.items() if isinstance(value, dict) else [(None, value)]:
                if isinstance(stage, Stage):
                    found[f"{module_name}.{name}" + (f"[{key}]" if key else "")] = stage
    return found


def test_every_stage_runs_real_code_on_catalogued_tables():
    stages = _declared()
    assert len(stages) >= 17, sorted(stages)
    for name, stage in stages.items():
        if stage.is_spark_script:
            assert (JOBS_DIR / stage.runs).is_file(), name
        else:
            assert callable(stage.function()), name
        assert set(stage.reads) | set(stage.writes) <= set(TABLES), name


def _bronze_rows() -> pa.Table:
    schema = pa.schema([("landing_date", pa.date32()), ("source_file", pa.string()), ("payload", pa.string())])
    return pa.table([[date(2026, 1, 1)], ["f"], ["{}"]], schema=schema)


def test_the_lake_refuses_what_the_running_stage_does_not_declare(settings):
    from shopml.lake import Lake

    lake = Lake(settings)
    ingest = Stage("ingest.py", writes=(BRONZE_EVENTS,))
    with running(ingest):
        lake.write_arrow(_bronze_rows(), BRONZE_EVENTS)
        assert lake.read_arrow(BRONZE_EVENTS).num_rows == 1  # a stage may read what it writes
        with pytest.raises(UndeclaredTableError, match=r"ingest\.py writes silver\.events, which its stage"):
            lake.write_arrow(pa.table({"event_id": ["e"]}), SILVER_EVENTS)
    with running(Stage("clean.py", reads=(SILVER_EVENTS,))), pytest.raises(UndeclaredTableError, match="reads"):
        lake.read_arrow(BRONZE_EVENTS)
    assert lake.read_arrow(BRONZE_EVENTS).num_rows == 1  # outside a stage nothing is held back
    assert not lake.exists(SILVER_EVENTS)
