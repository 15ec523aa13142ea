"""Noise ceiling of a group of RDMs (rsatoolbox's ``boot_noise_ceiling`` semantics).

How well could the true model do, given the noise and the differences between subjects?
For each subject, compare its RDM with the pooled RDM (:func:`~brainalign.rsa.pool_rdms`):

- lower bound: pooled over the *other* subjects (leave one subject out) - a model that
  knows everything the other subjects share, but nothing of this subject's data;
- upper bound: pooled over *all* subjects, this one included - no model can do better
  on average, since the pool is the best predictor of the group under the comparison.

Each bound is the mean over subjects. A model whose score reaches the lower bound
explains as much as the data allow us to tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_rdms, lookup
from .compare import RDM_COMPARISONS, compare_rdm_sets, pool_rdms

__all__ = ["NoiseCeiling", "noise_ceiling"]


@dataclass(frozen=True)
class NoiseCeiling:
    """Noise-ceiling bounds of one group of RDMs.

    Attributes
    ----------
    lower, upper : float
        Mean over subjects of the leave-one-out and all-subject bounds (``lower`` is NaN
        with a single subject).
    lower_by_subject, upper_by_subject : array of shape (n_subjects,)
    """

    lower: float
    upper: float
    lower_by_subject: np.ndarray
    upper_by_subject: np.ndarray


def noise_ceiling(subject_rdms: np.ndarray, method: str = "spearman") -> NoiseCeiling:
    """Lower (leave one subject out) and upper (all subjects) noise-ceiling bounds.

    Parameters
    ----------
    subject_rdms : array of shape (n_subjects, n_pairs)
        One condensed RDM per subject, over the same conditions in the same order.
    method : {"spearman", "pearson", "kendall_tau_a", "rho_a"}
        The comparison the models are evaluated with.

    Returns
    -------
    NoiseCeiling
    """
    lookup(RDM_COMPARISONS, method, "method")
    rdms = check_rdms(subject_rdms, "subject_rdms")
    n_subjects = rdms.shape[0]
    upper = compare_rdm_sets(pool_rdms(rdms, method)[None], rdms, method)[0]
    lower = np.full(n_subjects, np.nan)
    if n_subjects > 1:
        for subject in range(n_subjects):
            others = pool_rdms(np.delete(rdms, subject, axis=0), method)
            lower[subject] = compare_rdm_sets(others[None], rdms[subject][None], method)[0, 0]
    return NoiseCeiling(
        lower=float(np.mean(lower)),
        upper=float(np.mean(upper)),
        lower_by_subject=lower,
        upper_by_subject=upper,
    )
