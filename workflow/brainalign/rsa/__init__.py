"""Representational similarity analysis: RDMs, comparisons, noise ceilings, inference.

Modules, each checked against rsatoolbox (the reference, a test dependency) to 1e-6:

- :mod:`~brainalign.rsa.rdm` - RDMs of condition patterns (correlation, cosine, Euclidean,
  squared Euclidean) from one Gram matrix, and crossnobis across runs;
- :mod:`~brainalign.rsa.compare` - Spearman (default), Pearson, Kendall's tau-a, rho-a;
- :mod:`~brainalign.rsa.ceiling` - noise ceiling: leave-one-subject-out lower bound,
  all-subject upper bound;
- :mod:`~brainalign.rsa.inference` - group-level permutation test over condition labels
  (the same permutation for every subject), Benjamini-Hochberg FDR;
- :mod:`~brainalign.rsa.bootstrap` - bootstrap over stimuli and/or subjects with
  rsatoolbox's handling of duplicated conditions; percentile CIs; bootstrap tests;
- :mod:`~brainalign.rsa.selection` - best layer chosen on held-out subjects;
- :mod:`~brainalign.rsa.group_target` - paper 000's estimand (Spearman against the
  group-mean brain RDM) next to the subject mean, both labelled;
- :mod:`~brainalign.rsa.partial` - partial-correlation ablation (a VLM's RDM with its
  language-only counterpart's partialled out), paired stimulus bootstrap;
- :mod:`~brainalign.rsa.layers` - model x model RDM similarity, best layer vs the others;
- :mod:`~brainalign.rsa.steps` - what each Snakemake rule of the RSA stage does.
- :mod:`~brainalign.rsa.steps_paper000` - what each rule of paper 000's analysis does.

Nothing here runs a Fisher-z test over the cells of an RDM: the cells are not independent
(each condition enters n - 1 of them), so such tests are anti-conservative. Inference
treats conditions (permutations, stimulus bootstrap) and subjects (subject bootstrap,
held-out selection) as the random units.
"""

from ._checks import n_conditions_from_rdm
from .ceiling import NoiseCeiling, noise_ceiling
from .compare import (
    LINEAR_COMPARISONS,
    RDM_COMPARISONS,
    compare_rdm_sets,
    compare_rdms,
    pool_rdms,
    transform_rdms,
)
from .group_target import ESTIMANDS, compare_estimands, group_mean_rdm, group_mean_scores
from .inference import PermutationResult, fdr_bh, permutation_test
from .layers import best_layer_test, best_layer_units, rdm_similarity_table
from .partial import PARTIAL_KINDS, partial_ablation, partial_bootstrap, partial_spearman
from .rdm import (
    BRAIN_RDM_METRICS,
    RDM_METRICS,
    compute_crossnobis_rdm,
    compute_rdm,
    estimate_noise_precision,
    reorder_rdm,
)

__all__ = [
    "RDM_METRICS",
    "BRAIN_RDM_METRICS",
    "RDM_COMPARISONS",
    "LINEAR_COMPARISONS",
    "compute_rdm",
    "compute_crossnobis_rdm",
    "estimate_noise_precision",
    "reorder_rdm",
    "n_conditions_from_rdm",
    "compare_rdms",
    "compare_rdm_sets",
    "transform_rdms",
    "pool_rdms",
    "NoiseCeiling",
    "noise_ceiling",
    "PermutationResult",
    "permutation_test",
    "fdr_bh",
    "ESTIMANDS",
    "group_mean_rdm",
    "group_mean_scores",
    "compare_estimands",
    "PARTIAL_KINDS",
    "partial_spearman",
    "partial_bootstrap",
    "partial_ablation",
    "rdm_similarity_table",
    "best_layer_units",
    "best_layer_test",
]
