"""Labels shared by the configuration checks and the analysis steps (no third-party imports,
so that every step's environment can import them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["joint_space_name"]


def joint_space_name(space: Mapping[str, Any]) -> str:
    """Label of one feature space of a joint model: ``model-clip_cond-image_layer-2``."""
    return f"model-{space['model']}_cond-{space['condition']}_layer-{int(space['layer'])}"
