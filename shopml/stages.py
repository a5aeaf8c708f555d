"""Stages: what one task runs, and the tables it reads and writes, declared once beside its code.

Each component keeps its stages in a light ``stages.py`` (catalog handles only, no Spark, pandas or
torch), because the DAG files import them at parse time: ``spark_job``/``python_job`` take a stage and
derive the task's Airflow Asset inlets and outlets from it. While a stage runs, the lake refuses any
table it did not declare (``UndeclaredTableError``), so the lineage the Airflow UI shows is the lineage
the code has.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from shopml.errors import PermanentError

_running: ContextVar[Stage | None] = ContextVar("stage", default=None)


class UndeclaredTableError(PermanentError, RuntimeError):
    """A stage touched a table it does not declare: fix the stage's declaration (or the code)."""


@dataclass(frozen=True)
class Stage:
    """One unit of work: ``runs`` is a Spark script under ``jobs/`` (``ingest.py``) or ``package.module:function``."""

    runs: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @property
    def is_spark_script(self) -> bool:
        return self.runs.endswith(".py")

    def function(self) -> Callable[..., Any]:
        """The function a python stage runs, imported now (never at DAG parse time)."""
        module, _, name = self.runs.partition(":")
        return getattr(importlib.import_module(module), name)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Run the stage's function, held to its declaration."""
        function = self.function()
        with running(self):
            return function(*args, **kwargs)

    def allows(self, kind: Literal["read", "write"], table: str) -> bool:
        """Reading a table it writes is allowed (a merge reads its target)."""
        return table in self.writes or (kind == "read" and table in self.reads)


@contextmanager
def running(stage: Stage) -> Iterator[None]:
    """Hold the lake to ``stage``'s declaration for the duration."""
    token = _running.set(stage)
    try:
        yield
    finally:
        _running.reset(token)


def check_access(kind: Literal["read", "write"], table: str) -> None:
    """Raise unless no stage is running or the running one declares ``table`` (the lake calls this)."""
    stage = _running.get()
    if stage is not None and not stage.allows(kind, table):
        raise UndeclaredTableError(
            f"{stage.runs} {'reads' if kind == 'read' else 'writes'} {table}, which its stage does not declare; "
            f"add it to the stage's {kind}s"
        )
