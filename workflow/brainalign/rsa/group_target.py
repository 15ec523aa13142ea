"""Two estimands of model-brain RSA: the group-mean brain RDM (paper 000) and the subject mean.

``"group_mean_rdm"`` (paper 000, Pereira concepts)
    Each subject's brain RDM (cosine distance between the concept betas of an ROI) is
    averaged over subjects into one group RDM; a model layer's score is its Spearman
    correlation with that RDM. Averaging first removes much of each subject's noise, so
    these scores run higher than per-subject ones and have no noise ceiling on the same
    scale. Significance: condition-label permutation test (one "subject": the group RDM)
    and a percentile bootstrap CI over stimuli (the group RDM of the drawn stimuli is the
    mean of the subjects' RDMs of the drawn stimuli, so resampling the mean is exact).
``"subject_mean"`` (brainalign's)
    The score against each subject's RDM, averaged over subjects, next to the noise ceiling
    (:func:`~brainalign.rsa.noise_ceiling`); permutation test of the group score and a
    bootstrap over stimuli and/or subjects.

:func:`compare_estimands` gives both, labelled, for a stack of model RDMs (e.g. the layers
of one model) in one ROI.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ._checks import check_rdms, check_same_pairs, lookup, n_conditions_from_rdm
from .bootstrap import (
    BOOTSTRAP_KINDS,
    bootstrap_ci,
    bootstrap_scores,
    draw_bootstrap,
    group_bootstrap,
)
from .ceiling import noise_ceiling
from .compare import LINEAR_COMPARISONS, compare_rdm_sets
from .inference import permutation_test

__all__ = ["ESTIMANDS", "group_mean_rdm", "group_mean_scores", "compare_estimands"]

logger = logging.getLogger(__name__)

#: Labels of the estimands, as in the ``estimand`` column of the tables.
ESTIMANDS: tuple[str, ...] = ("group_mean_rdm", "subject_mean")


def group_mean_rdm(subject_rdms: np.ndarray) -> np.ndarray:
    """Mean over subjects of their condensed brain RDMs (paper 000's target).

    Parameters
    ----------
    subject_rdms : array of shape (n_subjects, n_pairs)
        One RDM per subject (paper 000: cosine distance of the betas), same concept order.

    Returns
    -------
    rdm : array of shape (n_pairs,)
    """
    return check_rdms(subject_rdms, "subject_rdms").mean(axis=0)


def group_mean_scores(
    model_rdms: np.ndarray, subject_rdms: np.ndarray, method: str = "spearman"
) -> np.ndarray:
    """Comparison of each model RDM with the group-mean brain RDM.

    Parameters
    ----------
    model_rdms : array of shape (n_models, n_pairs)
    subject_rdms : array of shape (n_subjects, n_pairs)
    method : {"spearman", "pearson", "rho_a"}

    Returns
    -------
    scores : array of shape (n_models,)
    """
    lookup(dict.fromkeys(LINEAR_COMPARISONS), method, "method")
    return compare_rdm_sets(model_rdms, group_mean_rdm(subject_rdms)[None], method)[:, 0]


def _estimand_rows(estimand, scores, boot, perm, level, **extra) -> pd.DataFrame:
    """One row per model: score, bootstrap CI and SE, permutation p, labels."""
    low, high = bootstrap_ci(boot, level)
    return pd.DataFrame({"unit": np.arange(scores.size), "estimand": estimand, "score": scores,
                         "ci_low": low, "ci_high": high,
                         "boot_se": np.nanstd(boot, axis=0, ddof=1),
                         "p_perm": perm.p_value[:, 0], **extra})


def compare_estimands(
    model_rdms: np.ndarray,
    subject_rdms: np.ndarray,
    *,
    method: str = "spearman",
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    bootstrap: str = "both",
    level: float = 0.95,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Both estimands of every model RDM in one ROI, with their tests, as one tidy table.

    Parameters
    ----------
    model_rdms : array of shape (n_models, n_pairs)
    subject_rdms : array of shape (n_subjects, n_pairs)
    method : {"spearman", "pearson", "rho_a"}
    n_permutations, n_bootstrap : int
    bootstrap : {"both", "stimuli", "subjects"}
        What the subject-mean estimand's bootstrap redraws (the group-mean one always
        redraws stimuli; "both" falls back to stimuli with a single subject).
    level : float
    random_state : int or None
        Seeds the permutations (the same for both estimands) and the bootstraps.

    Returns
    -------
    DataFrame
        ``2 * n_models`` rows: ``unit`` (row of ``model_rdms``), ``estimand``, ``score``,
        ``ci_low``, ``ci_high``, ``boot_se``, ``p_perm``, ``ceiling_lower``,
        ``ceiling_upper`` (NaN for the group-mean estimand), ``n_subjects``, ``comparison``.
    """
    lookup(dict.fromkeys(LINEAR_COMPARISONS), method, "method")
    lookup(dict.fromkeys(BOOTSTRAP_KINDS), bootstrap, "bootstrap")
    models = check_rdms(model_rdms, "model_rdms")
    subjects = check_rdms(subject_rdms, "subject_rdms")
    check_same_pairs(models, subjects, ("model_rdms", "subject_rdms"))
    n_sub, n_cond = subjects.shape[0], n_conditions_from_rdm(subjects)
    target = subjects.mean(axis=0)[None]
    perm_kw = {"method": method, "n_permutations": n_permutations, "random_state": random_state}
    stimuli = draw_bootstrap(1, n_cond, n_bootstrap, kind="stimuli", random_state=random_state)
    group = _estimand_rows(
        "group_mean_rdm", compare_rdm_sets(models, target, method)[:, 0],
        bootstrap_scores(models, target, stimuli, method=method)[:, :, 0],
        permutation_test(models, target, **perm_kw), level, ceiling_lower=np.nan,
        ceiling_upper=np.nan)
    kind = "stimuli" if n_sub == 1 and bootstrap == "both" else bootstrap
    samples = draw_bootstrap(n_sub, n_cond, n_bootstrap, kind=kind, random_state=random_state)
    ceiling = noise_ceiling(subjects, method)
    by_subject = group_bootstrap(bootstrap_scores(models, subjects, samples, method=method), samples)
    mean = _estimand_rows(
        "subject_mean", compare_rdm_sets(models, subjects, method).mean(axis=1), by_subject,
        permutation_test(models, subjects, **perm_kw), level, ceiling_lower=ceiling.lower,
        ceiling_upper=ceiling.upper)
    logger.info("estimands of %d model RDMs, %d subjects: best group-mean %.3f, subject-mean %.3f",
                len(models), n_sub, group["score"].max(), mean["score"].max())
    table = pd.concat([group, mean], ignore_index=True)
    return table.assign(n_subjects=n_sub, comparison=method, bootstrap_subject_mean=kind,
                        n_bootstrap=n_bootstrap, n_permutations=n_permutations, ci_level=level)
