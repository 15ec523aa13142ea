"""Maps of significant contrasts: per subject written beside the unit table, averaged for figures.

A contrast map holds, per unit, the difference of held-out r (side a - side b) where the
unit is significant (selected, q <= fdr_q, delta > 0), 0 where it is not, and NaN where the
unit was left out (NaN or constant signal). The subject average is then the mean significant
effect, non-significant subjects counting as 0. Volumes are NIfTI, vertices CIFTI-2 dense
scalars, electrodes a TSV (:func:`brainalign.pipeline.save_map`).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .. import io
from ..pipeline import save_map

__all__ = ["significant_delta", "write_delta_map"]

PathLike = str | os.PathLike


def significant_delta(units: pd.DataFrame) -> np.ndarray:
    """Per unit: delta where significant, 0 elsewhere, NaN for excluded units.

    Parameters
    ----------
    units : DataFrame
        A per-unit contrast table (columns ``delta``, ``significant``, ``excluded``), one row
        per unit in the brain data's order.

    Returns
    -------
    array of shape (n_units,), float32
    """
    delta = units["delta"].to_numpy(dtype=float)
    significant = units["significant"].fillna(False).to_numpy(dtype=bool)
    values = np.where(significant, delta, 0.0)
    values[units["excluded"].fillna(False).to_numpy(dtype=bool)] = np.nan
    return values.astype(np.float32)


def write_delta_map(brain_path: PathLike, units_path: PathLike, out_map: PathLike) -> None:
    """Write the map of significant deltas of one subject x task x contrast."""
    arrays, meta = io.load_arrays(brain_path)
    units = io.read_table(units_path).sort_values("unit", kind="stable")
    save_map(significant_delta(units)[:, None], arrays, meta, ["delta_significant"], out_map)
