"""A file-system model registry: versioned artefacts, metadata, and a promoted-version pointer.

Layout under the registry root (default ``./var/models``)::

    <name>/<version>/            artefacts written by the trainer (weights, xgboost json, …)
    <name>/<version>/meta.json   params, metrics, feature list, Delta table versions read, code version
    <name>/current.json          {"version": …, "history": [previously promoted versions, newest last]}

The pointer is replaced atomically (write, fsync, rename), so a scorer never
reads a half-written pointer. Scoring loads ``current`` only.

Every model's pipeline keeps one convention, train → evaluate and gate → score → publish: its
candidate carries ``status`` (``Status``) and the ``config`` it was trained with in its metadata
(the gate judges it with that config, not with tonight's settings); its metric rows label it
``CANDIDATE`` beside the baselines' names; every task's result names the version it produced or
used ``model_version``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from shopml.errors import PermanentError

# A candidate's label in ops.model_metrics, beside the baselines' own names.
CANDIDATE = "model"


class Status(StrEnum):
    """Where a version stands: trained by its run, then judged by the gate."""

    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    REJECTED = "rejected"


def metric_rows(metrics: Any, model_name: str, run_id: str, version: str, promoted: bool) -> Any:
    """One evaluation's ``ops.model_metrics`` rows (an Arrow table) from a DataFrame of candidate, metric,
    segment and value, for a model whose metrics have no cut-off ``k``."""
    import pandas as pd
    import pyarrow as pa

    from shopml.catalog import OPS_MODEL_METRICS, spec

    frame = metrics.assign(
        run_id=run_id,
        model_name=model_name,
        model_version=version,
        k=pd.array([None] * len(metrics), dtype="Int32"),
        promoted=promoted,
        evaluated_at=pd.Timestamp(datetime.now(UTC)),
    )
    return pa.Table.from_pandas(frame, schema=spec(OPS_MODEL_METRICS).arrow_schema(), preserve_index=False)


class RegistryError(PermanentError, RuntimeError):
    """A registry operation that cannot be done (nothing promoted, no previous version, …)."""


def code_version() -> str:
    """Git commit of the running code, or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: Path

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create_version(self, name: str, run_id: str) -> ModelVersion:
        """A fresh, empty artefact folder for a training run; the version sorts by creation time."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_run = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in run_id)[:60]
        version = f"{stamp}-{safe_run}"
        path = self.root / name / version
        path.mkdir(parents=True, exist_ok=False)
        return ModelVersion(name, version, path)

    def save_metadata(self, model: ModelVersion, metadata: dict[str, Any]) -> None:
        payload = {"name": model.name, "version": model.version, "code_version": code_version(), **metadata}
        _write_json_atomically(model.path / "meta.json", payload)

    def update_metadata(self, model: ModelVersion, **fields: Any) -> None:
        _write_json_atomically(model.path / "meta.json", {**model.metadata, **fields})

    def get(self, name: str, version: str) -> ModelVersion:
        path = self.root / name / version
        if not (path / "meta.json").exists():
            raise RegistryError(f"model {name} has no version {version} under {self.root}")
        return ModelVersion(name, version, path)

    def versions(self, name: str) -> list[str]:
        folder = self.root / name
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "meta.json").exists())

    def trained_by(self, name: str, run_id: str) -> ModelVersion | None:
        """The newest version a training run created (a retried task leaves older ones behind), or None."""
        for version in reversed(self.versions(name)):
            model = self.get(name, version)
            if model.metadata.get("run_id") == run_id:
                return model
        return None

    def _pointer(self, name: str) -> dict[str, Any]:
        path = self.root / name / "current.json"
        return json.loads(path.read_text()) if path.exists() else {"version": None, "history": []}

    def current(self, name: str) -> ModelVersion | None:
        """The promoted version, or None when nothing was ever promoted."""
        version = self._pointer(name)["version"]
        return self.get(name, version) if version else None

    def require_current(self, name: str) -> ModelVersion:
        current = self.current(name)
        if current is None:
            raise RegistryError(f"no promoted version of {name} under {self.root}: train and promote one first")
        return current

    def promote(self, name: str, version: str) -> None:
        self.get(name, version)
        pointer = self._pointer(name)
        if pointer["version"] == version:
            return
        history = [*pointer["history"], pointer["version"]] if pointer["version"] else pointer["history"]
        _write_json_atomically(self.root / name / "current.json", {"version": version, "history": history})

    def judge(self, name: str, candidate: ModelVersion, passed: bool, verdict: str, serving: str = "") -> str:
        """Promote ``candidate`` when it passed its gate; either way, the gate's reason as every model words it."""
        if passed:
            self.promote(name, candidate.version)
            return f"promoted {candidate.version}{serving}: {verdict}"
        previous = self.current(name)
        if previous is not None:
            return f"kept current {previous.version}: candidate {verdict}"
        return f"nothing promoted (no current version): candidate {verdict}"

    def rollback(self, name: str) -> str:
        """Point back at the previously promoted version; returns it."""
        pointer = self._pointer(name)
        if not pointer["history"]:
            raise RegistryError(f"{name} has no previously promoted version to roll back to")
        *rest, previous = pointer["history"]
        _write_json_atomically(self.root / name / "current.json", {"version": previous, "history": rest})
        return previous
