"""The overlay step: the values a refresh writes into the current serving versions, and the writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serving.datasets import USER_LISTS
from serving.publish import dataset_versions, overlay_keys
from serving.store import VersionInfo
from shopml.errors import PermanentError
from shopml.settings import Settings

# The user lists of gold.recommendations, one dataset each, re-ranked together; then stock.
LIST_DATASETS = tuple(USER_LISTS.values())


DATASETS = (*LIST_DATASETS, "inventory")


class OverlayRefusedError(PermanentError, RuntimeError):
    """The serving store kept refusing the overlays: a newer version kept appearing while the run computed."""


@dataclass
class Overlay:
    dataset: str
    based_on: str
    entries: dict[str, dict[str, Any]]


@dataclass
class Refresh:
    """The values to write and the versions they were computed against."""

    overlays: list[Overlay] = field(default_factory=list)
    served_versions: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def current_versions(settings: Settings) -> dict[str, VersionInfo]:
    """The current serving version of each dataset the refresh writes (absent before its first publish)."""
    current = {}
    for dataset in DATASETS:
        version, versions = dataset_versions(dataset, settings)
        info = next((v for v in versions if v.version == version), None)
        if info is not None:
            current[dataset] = info
    return current


def publish_refresh(refresh: Refresh, settings: Settings) -> bool:
    """Write every overlay into the version it was computed against; False when any was refused (superseded)."""
    accepted = True
    for overlay in refresh.overlays:
        if overlay.entries and not overlay_keys(overlay.dataset, overlay.entries, overlay.based_on, settings):
            accepted = False
    return accepted
