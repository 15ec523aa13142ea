"""Degenerate confound columns out, collinear sets reduced (see :func:`reduce_confounds`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["reduce_confounds"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def reduce_confounds(
    matrix: np.ndarray, columns: Sequence[str], sample_mask: np.ndarray | None = None,
    source: PathLike = "confounds",
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Drop degenerate confound columns, and reduce collinear sets to an independent subset.

    Parameters
    ----------
    matrix : array of shape (n_volumes, n_columns)
    columns : sequence of str, length n_columns
    sample_mask : int array of shape (n_kept,) or None
        The volumes that count (constancy and rank are judged on them); None: all.
    source : path-like
        The confounds file, named in the log.

    Returns
    -------
    matrix : array of shape (n_volumes, n_kept_columns)
        The kept columns, in their original order.
    columns : list of str
    dropped : dict
        ``not_finite``, ``constant``, ``collinear``: the names dropped for each reason.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix if sample_mask is None else matrix[np.asarray(sample_mask, dtype=int)]
    finite = np.isfinite(rows).all(axis=0)
    spread = np.where(finite, np.ptp(np.where(np.isfinite(rows), rows, 0.0), axis=0), 0.0)
    scale = np.maximum(np.abs(np.where(np.isfinite(rows), rows, 0.0)).max(axis=0, initial=0), 1.0)
    constant = finite & (spread <= 1e-10 * scale)
    good = np.flatnonzero(finite & ~constant)
    independent = good[_independent(rows[:, good])] if good.size else good
    dropped = {"not_finite": [columns[k] for k in np.flatnonzero(~finite)],
               "constant": [columns[k] for k in np.flatnonzero(constant)],
               "collinear": [columns[k] for k in sorted(set(good) - set(independent))]}
    for reason, names in dropped.items():
        if names:
            logger.warning("confounds '%s': %d columns dropped (%s within the run's kept "
                           "volumes): %s", source, len(names), reason.replace("_", " "), names)
    return matrix[:, independent], [columns[k] for k in independent], dropped


def _independent(rows: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Sorted indices of a maximal independent set of columns (pivoted QR of z-scores)."""
    from scipy.linalg import qr

    z = rows - rows.mean(axis=0)
    z = z / np.linalg.norm(z, axis=0)
    _, r, pivots = qr(z, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > tol * diag[0])) if diag.size else 0
    return np.sort(pivots[:rank])
