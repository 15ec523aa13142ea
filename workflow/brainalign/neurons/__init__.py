"""Neuron-level alignment (paper 001): single artificial units (or atoms) mapped to voxels.

Science modules: :mod:`.mapping` (every unit x voxel pair's held-out r, FIR weights and
sign, from matrix products over batches; a block-permutation null corrected over the
unit x voxel family), :mod:`.significance` (max-statistic FWER and Benjamini-Yekutieli
FDR), :mod:`.dictionary` (sparse dictionary atoms learnt on training folds only) and
:mod:`.analyses` (networks, redundancy, polarity, architecture shares) and :mod:`.resample`
(the bootstrap contrast of two architectures). The pipeline side (reading units from feature files, steps, rules) lives in
:mod:`.units` and :mod:`.steps`.
"""

from importlib import import_module
from typing import Any

# public name -> submodule; imported on first use (PEP 562), so that reading units
# (.units, used while the neuron demo's dataset is written in the preprocessing
# environment) does not pull in the encoding stage and its backends
_EXPORTS = {
    "architecture_shares": "analyses", "count_null_pmf": "analyses",
    "jaccard_pairs": "analyses", "network_shares": "analyses", "polarity": "analyses",
    "redundancy": "analyses", "unit_polarity": "analyses", "fold_atoms": "dictionary",
    "CORRECTIONS": "mapping", "UnitVoxelMap": "mapping", "map_units": "mapping",
    "ModelUnits": "resample", "architecture_contrast": "resample",
    "by_adjust": "significance", "maxstat_pvalues": "significance",
    "normal_pvalues": "significance",
}

__all__ = [
    "CORRECTIONS",
    "ModelUnits",
    "UnitVoxelMap",
    "architecture_contrast",
    "architecture_shares",
    "by_adjust",
    "count_null_pmf",
    "fold_atoms",
    "jaccard_pairs",
    "map_units",
    "maxstat_pvalues",
    "network_shares",
    "normal_pvalues",
    "polarity",
    "redundancy",
    "unit_polarity",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'brainalign.neurons' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
