"""Labels shared by the analyses: unit modalities and voxel network codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MODALITIES", "network_codes"]

#: Unit modalities read by the architecture analyses.
MODALITIES = ("vision", "text", "cross")


def network_codes(voxel_network: np.ndarray, network_names: Sequence[str]) -> np.ndarray:
    """Integer network of every voxel (-1: none), from codes or from names."""
    values = np.asarray(voxel_network)
    names = list(network_names)
    if values.dtype.kind in "iu":
        return np.where((values >= 0) & (values < len(names)), values, -1).astype(np.int64)
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup.get(str(v), -1) for v in values], dtype=np.int64)
