"""Resolve the training device setting to the device string torch and XGBoost take."""

from __future__ import annotations


def resolve_device(setting: str) -> str:
    """``cuda`` or ``cpu`` for a ``Settings.device`` value; ``auto`` picks cuda when torch sees a GPU.

    An explicit ``cuda`` is returned as asked, so a misconfigured GPU machine fails loudly in the
    trainer instead of silently training on CPU.
    """
    value = str(setting).lower()
    if value in ("cpu", "cuda"):
        return value
    if value != "auto":
        raise ValueError(f"unknown device setting {setting!r}: expected auto, cpu or cuda")
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
