"""Permutation test of RSA scores over condition labels, and FDR control.

The test asks whether a model RDM and the brain RDMs share structure beyond chance.
Under the null hypothesis the condition labels of the model RDM are exchangeable with
respect to the brain RDMs; we relabel the conditions of the model RDM (rows and columns
together, the same permutation for every subject) and recompute the statistic.

The statistic is the group score: the mean over subjects of the comparison of the model
RDM with each subject's RDM - the number that is reported. Permuting the *same* labels for
every subject keeps the dependence between subjects (they saw the same stimuli), and
testing the group mean gives one test per model, layer and ROI (Nili et al. 2014's
condition-label randomisation, applied to the group score). The p-value is
``(1 + #{permuted >= observed}) / (1 + n_permutations)``, one-sided (alignment is
positive), never 0. No test here treats the cells of an RDM as independent samples:
their dependence (every condition enters ``n - 1`` cells) makes such tests anti-conservative.

Speed: for Spearman, Pearson and rho-a the group score is linear in the model RDM's
transformed entries: ``mean_s <t(M), t(S_s)> = <t(M), mean_s t(S_s)>``. Ranks of a
permuted RDM are the permuted ranks, so the model RDM is rank-transformed once; each
permutation is a gather of its square table (stored in the smallest exact dtype) and one
matrix product per batch against the subject-mean of every ROI at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits

from ._checks import check_positive_int, check_rdms, check_same_pairs, lookup
from .compare import LINEAR_COMPARISONS, RDM_COMPARISONS, transform_rdms

__all__ = ["PermutationResult", "permutation_test", "fdr_bh"]

logger = logging.getLogger(__name__)

_BATCH = 32  # permutations per matrix product; fixed, so a seed gives the same permutations
_TIE_TOLERANCE = 1e-10  # scores within this of the observed one count as ties (>=)


@dataclass(frozen=True)
class PermutationResult:
    """Result of :func:`permutation_test`; field names as the encoding's
    :class:`brainalign.encoding.stats.PermutationResult`.

    Attributes
    ----------
    p : array of shape (n_models, n_groups)
        One-sided p-value (alignment above chance): here ``p_perm`` (``tail`` "empirical").
    p_perm : array of shape (n_models, n_groups)
        Empirical p-value ``(1 + #{permuted >= observed}) / (1 + n_permutations)``.
    observed : array of shape (n_models, n_groups)
        Observed group score: mean over subjects of the comparison.
    null_mean, null_sd : arrays of shape (n_models, n_groups)
        Mean and standard deviation of the group score over permutations.
    n_permutations : int
    tail : str
        Which p is ``p`` ("empirical").

    ``statistic`` and ``p_value`` (the former names) read ``observed`` and ``p``.
    """

    p: np.ndarray
    p_perm: np.ndarray
    observed: np.ndarray
    null_mean: np.ndarray
    null_sd: np.ndarray
    n_permutations: int
    tail: str = "empirical"

    @property
    def statistic(self) -> np.ndarray:
        """Former name of ``observed``."""
        return self.observed

    @property
    def p_value(self) -> np.ndarray:
        """Former name of ``p``."""
        return self.p


def permutation_test(
    model_rdms: np.ndarray,
    subject_rdms: np.ndarray,
    *,
    method: str = "spearman",
    n_permutations: int = 10_000,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int = 1,
) -> PermutationResult:
    """Condition-label permutation test of the group RSA score of each model RDM.

    Parameters
    ----------
    model_rdms : array of shape (n_models, n_pairs)
        Condensed model RDMs (e.g. one per layer); each is tested separately, all with the
        same permutations.
    subject_rdms : array of shape (n_subjects, n_pairs) or (n_groups, n_subjects, n_pairs)
        Brain RDMs over the same conditions in the same order; groups (e.g. ROIs) are
        tested separately, with the same permutations.
    method : {"spearman", "pearson", "rho_a", "kendall_tau_a"}
        Comparison. Kendall's tau-a has no fast form and is slow (a loop per permutation).
    n_permutations : int
    random_state : int, Generator or None
        Seed of the permutations.
    n_jobs : int
        Threads that share the permutations (the result does not depend on it).

    Returns
    -------
    PermutationResult
        Arrays of shape (n_models, n_groups); (n_models, 1) for 2D ``subject_rdms``.
    """
    lookup(RDM_COMPARISONS, method, "method")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    models = check_rdms(model_rdms, "model_rdms")
    subjects = np.asarray(subject_rdms, dtype=np.float64)
    subjects = subjects[None] if subjects.ndim == 2 else subjects
    if subjects.ndim != 3:
        raise ValueError(
            "'subject_rdms' must be (n_subjects, n_pairs) or (n_groups, n_subjects, n_pairs); "
            f"got shape {np.shape(subject_rdms)}"
        )
    for group in subjects:
        check_rdms(group, "subject_rdms")
    check_same_pairs(models, subjects, ("model_rdms", "subject_rdms"))
    rng = np.random.default_rng(random_state)
    if method in LINEAR_COMPARISONS:
        observed, tally = _linear_test(models, subjects, method, n_permutations, rng, n_jobs)
    else:
        logger.warning("permutation test with %s has no fast form: looping", method)
        observed, tally = _generic_test(models, subjects, method, n_permutations, rng)
    counts, total, squares = tally
    p_value = (1.0 + counts) / (1.0 + n_permutations)
    null_mean = total / n_permutations
    null_sd = np.sqrt(np.maximum(squares / n_permutations - null_mean**2, 0.0))
    logger.info(
        "permutation test (%s, %d permutations): %d models x %d groups, min p = %.2g",
        method, n_permutations, models.shape[0], subjects.shape[0], p_value.min(),
    )
    return PermutationResult(p_value, p_value, observed, null_mean, null_sd, n_permutations)


def _permutation_batches(n_conditions: int, n_permutations: int, rng: np.random.Generator):
    """Yield batches of random permutations of the condition labels, (batch, n_conditions)."""
    identity = np.tile(np.arange(n_conditions, dtype=np.intp), (_BATCH, 1))
    for start in range(0, n_permutations, _BATCH):
        size = min(_BATCH, n_permutations - start)
        yield rng.permuted(identity[:size], axis=1)


def _model_table(rdm: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    """Square table of the model RDM's transformed entries, and the scale that normalises it.

    For the rank methods the entries are twice the centred ranks: integers, stored exactly
    in int16 or float32 when they fit, which makes each permutation's gather cheap.
    """
    n_pairs = rdm.size
    if method == "pearson":
        values = rdm - rdm.mean()
        scale = 1.0 / np.linalg.norm(values)
    else:
        values = 2.0 * rankdata(rdm) - (n_pairs + 1.0)
        scale = 1.0 / np.linalg.norm(values) if method == "spearman" else 0.5 * np.sqrt(
            12.0 / (float(n_pairs) ** 3 - n_pairs)
        )
    table = squareform(values, checks=False)
    for dtype in (np.int16, np.float32):
        narrow = table.astype(dtype)
        if np.array_equal(narrow, table):
            return narrow, scale
    return table, scale


def _group_targets(subjects: np.ndarray, method: str) -> np.ndarray:
    """Upper-triangle squares of the subject-mean transformed RDM of each group, (n*n, n_groups)."""
    n_groups, _, n_pairs = subjects.shape
    means = np.stack([transform_rdms(group, method).mean(axis=0) for group in subjects])
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    rows, cols = np.triu_indices(n, k=1)
    targets = np.zeros((n_groups, n, n))
    targets[:, rows, cols] = means
    return targets.reshape(n_groups, n * n).T.copy()


def _linear_test(models, subjects, method, n_permutations, rng, n_jobs):
    """Observed group scores and (counts of permuted scores >= observed, sum, sum of squares)."""
    n = int(round((1 + np.sqrt(1 + 8 * models.shape[1])) / 2))
    targets = _group_targets(subjects, method)
    tables = [_model_table(rdm, method) for rdm in models]
    buffers = threading.local()
    identity = np.arange(n)[None]
    observed = np.stack([_gathered_scores(t, s, identity, targets, buffers)[0] for t, s in tables])

    def count(perms: np.ndarray) -> np.ndarray:
        scores = [_gathered_scores(table, scale, perms, targets, buffers) for table, scale in tables]
        return np.stack([
            np.stack([(s >= obs - _TIE_TOLERANCE).sum(0), s.sum(0), np.square(s).sum(0)])
            for s, obs in zip(scores, observed)
        ], axis=1)

    tally = np.zeros((3, *observed.shape))  # counts >= observed, sum, sum of squares
    batches = _permutation_batches(n, n_permutations, rng)
    with threadpool_limits(limits=1, user_api="blas"):  # small products: threads only cost
        if n_jobs == 1:
            for perms in batches:
                tally += count(perms)
            return observed, tally
        with ThreadPoolExecutor(n_jobs) as pool:
            while chunk := list(itertools.islice(batches, 4 * n_jobs)):
                for partial in pool.map(count, chunk):
                    tally += partial
    return observed, tally


def _gathered_scores(table, scale, perms, targets, buffers) -> np.ndarray:
    """Scores (n_perms, n_groups) of the model table relabelled by each permutation.

    Each permutation is two gathers (rows: contiguous copies; columns) into a reused
    buffer of the table's dtype, widened to float64 for one matrix product per batch.
    """
    n, size = table.shape[0], perms.shape[0]
    key = (table.dtype.str, n)
    if getattr(buffers, "key", None) != key:
        buffers.key = key
        buffers.gathered = np.empty((_BATCH, n, n), dtype=table.dtype)
        buffers.rows = np.empty((n, n), dtype=table.dtype)
        buffers.wide = np.empty((_BATCH, n * n))
    gathered, rows, wide = buffers.gathered[:size], buffers.rows, buffers.wide[:size]
    for b, perm in enumerate(perms):
        np.take(table, perm, axis=0, out=rows)
        np.take(rows, perm, axis=1, out=gathered[b])
    np.copyto(wide, gathered.reshape(size, n * n))
    return (wide @ targets) * scale


def _generic_test(models, subjects, method, n_permutations, rng):
    """Observed scores and counts for comparisons without a linear form (tau-a)."""
    compare = RDM_COMPARISONS[method]
    n = int(round((1 + np.sqrt(1 + 8 * models.shape[1])) / 2))

    def group_scores(rdm):
        return np.array([np.mean([compare(rdm, s) for s in group]) for group in subjects])

    observed = np.stack([group_scores(rdm) for rdm in models])
    tally = np.zeros((3, *observed.shape))  # counts >= observed, sum, sum of squares
    squares = [squareform(rdm, checks=False) for rdm in models]
    for perms in _permutation_batches(n, n_permutations, rng):
        for perm in perms:
            for k, square in enumerate(squares):
                scores = group_scores(squareform(square[np.ix_(perm, perm)], checks=False))
                tally[:, k] += [scores >= observed[k] - _TIE_TOLERANCE, scores, scores**2]
    return observed, tally


def fdr_bh(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of one family of tests.

    Parameters
    ----------
    p_values : array of shape (n_tests,)
        NaN entries are ignored (and stay NaN).

    Returns
    -------
    q_values : array of shape (n_tests,)
        ``min_{j >= i} p_(j) m / j`` in sorted order, capped at 1; reject at level ``alpha``
        where ``q <= alpha``. Same as ``scipy.stats.false_discovery_control(method='bh')``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any((p[np.isfinite(p)] < 0) | (p[np.isfinite(p)] > 1)):
        raise ValueError(f"'p_values' must be a 1D array of values in [0, 1]; got {p!r:.200}")
    q = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
        q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q
