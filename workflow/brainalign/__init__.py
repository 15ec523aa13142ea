"""brainalign: how closely model representations align with human brain recordings.

The science lives in this package; the Snakemake rules in ``workflow/rules`` and the
thin scripts in ``workflow/scripts`` only read their inputs and call it.

From a notebook::

    import brainalign as ba
    enc = ba.RidgeEncoder(alphas=[1, 10, 100], delays=[1, 2, 3]).fit(X, Y, groups=runs)
    result = ba.fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=[1, 10, 100])
    rdm = ba.compute_rdm(patterns, metric="correlation")

Every name of :data:`__all__` is imported on first use (module ``__getattr__``), so
``import brainalign`` stays fast and loads neither torch, transformers nor nilearn.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute); see docs/tutorial.py for a worked example
_EXPORTS: dict[str, tuple[str, str]] = {
    # encoding
    "RidgeEncoder": ("brainalign.estimators", "RidgeEncoder"),
    "fit_encoding": ("brainalign.encoding.ridge", "fit_encoding"),
    "EncodingResult": ("brainalign.encoding.ridge", "EncodingResult"),
    "make_delays": ("brainalign.encoding.delays", "make_delays"),
    "permutation_test": ("brainalign.encoding.stats", "permutation_test"),
    "PermutationResult": ("brainalign.encoding.stats", "PermutationResult"),
    "fdr_bh": ("brainalign.encoding.stats", "fdr_bh"),
    "encoding_noise_ceiling": ("brainalign.encoding.ceiling", "noise_ceiling"),
    # RSA
    "compute_rdm": ("brainalign.rsa.rdm", "compute_rdm"),
    "compute_crossnobis_rdm": ("brainalign.rsa.rdm", "compute_crossnobis_rdm"),
    "compare_rdms": ("brainalign.rsa.compare", "compare_rdms"),
    "compare_rdm_sets": ("brainalign.rsa.compare", "compare_rdm_sets"),
    "noise_ceiling": ("brainalign.rsa.ceiling", "noise_ceiling"),
    "NoiseCeiling": ("brainalign.rsa.ceiling", "NoiseCeiling"),
    "rsa_permutation_test": ("brainalign.rsa.inference", "permutation_test"),
    "RSAPermutationResult": ("brainalign.rsa.inference", "PermutationResult"),
    # contrasts (paired bootstrap of two models' held-out scores)
    "draw_resamples": ("brainalign.contrasts.bootstrap", "draw_resamples"),
    "bootstrap_scores": ("brainalign.contrasts.bootstrap", "bootstrap_scores"),
    "contrast_statistics": ("brainalign.contrasts.selection", "contrast_statistics"),
    "select_units": ("brainalign.contrasts.selection", "select_units"),
    "share_table": ("brainalign.contrasts.selection", "share_table"),
    # group statistics
    "group_ttest": ("brainalign.group", "group_ttest"),
    # datasets and configuration
    "get_reader": ("brainalign.datasets.registry", "get_reader"),
    "READERS": ("brainalign.datasets.registry", "READERS"),
    "validate_config": ("brainalign.config", "validate_config"),
    # features
    "extract_features": ("brainalign.api", "extract_features"),
    "model_families": ("brainalign.api", "model_families"),
    "ModelSpec": ("brainalign.features.registry", "ModelSpec"),
    "registered_extractors": ("brainalign.features.registry", "registered_extractors"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'brainalign' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
