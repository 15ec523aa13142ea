"""Sparse dictionary atoms of artificial units, learnt on each training fold only.

Instead of single units, the mapping can use atoms: a sparse dictionary learnt on the
units' activations (scikit-learn's ``MiniBatchDictionaryLearning``, seeded), whose codes
are the atoms' time courses. The dictionary of an outer fold sees only that fold's
training samples (z-scored with their own mean and sd); its test samples are coded with
it, so nothing of the held-out data shapes the atoms.

Each fold learns its own dictionary, so atom ``i`` of fold 2 is not atom ``i`` of fold 1.
The folds' atoms are matched to the first fold's (Hungarian assignment on the absolute
cosine between dictionary components; an atom whose best match is anti-aligned has its
codes and component negated), so that row ``i`` of the result means one atom throughout.
The cosines of the matches are returned: low values say the dictionary is unstable
across folds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ._checks import check_atoms

__all__ = ["fold_atoms"]

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]


def fold_atoms(
    units: np.ndarray, splits: Sequence[Split], n_atoms: int, *, seed: int = 0, **params
) -> tuple[list[np.ndarray], np.ndarray]:
    """Atom time courses of every sample, from a dictionary learnt on each training fold.

    Parameters
    ----------
    units : array of shape (n_samples, n_units)
        Unit activations.
    splits : sequence of (train_idx, test_idx)
        The outer folds.
    n_atoms : int
        Dictionary size (at most the smallest training set).
    seed : int
        ``random_state`` of every fold's ``MiniBatchDictionaryLearning``.
    **params
        Further arguments of ``MiniBatchDictionaryLearning`` (e.g. ``alpha``, ``batch_size``).

    Returns
    -------
    codes : list of arrays of shape (n_samples, n_atoms), float32
        Per fold, the codes of all samples under that fold's dictionary; atoms matched
        to the first fold's.
    match : array of shape (n_folds, n_atoms), float64
        Cosine between each fold's matched component and the first fold's (1 for fold 0).
    """
    n_train = min(len(train) for train, _ in splits)
    n_atoms = check_atoms(n_atoms, n_train)
    units = np.asarray(units, dtype=np.float64)
    fits = [_fit_fold(units, train, n_atoms, seed, params) for train, _ in splits]
    reference = fits[0][1]
    codes, match = [], []
    for code, components in fits:
        order, signs, cosine = _match(reference, components)
        codes.append(np.ascontiguousarray(code[:, order] * signs, dtype=np.float32))
        match.append(cosine)
    match = np.array(match)
    logger.info(
        "atoms: %d per fold over %d folds, matched to fold 0 with median |cosine| %.2f",
        n_atoms,
        len(splits),
        float(np.median(match)),
    )
    return codes, match


def _fit_fold(units, train, n_atoms, seed, params) -> tuple[np.ndarray, np.ndarray]:
    """Codes of every sample and the unit-norm components of one training fold's dictionary."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    mean = units[train].mean(axis=0)
    sd = units[train].std(axis=0)
    sd[sd == 0] = 1.0
    z = (units - mean) / sd
    model = MiniBatchDictionaryLearning(n_components=n_atoms, random_state=seed, **params)
    model.fit(z[train])
    components = model.components_
    norms = np.linalg.norm(components, axis=1, keepdims=True)
    return model.transform(z), components / np.where(norms > 0, norms, 1.0)


def _match(reference: np.ndarray, components: np.ndarray):
    """Order, signs and cosines that align ``components`` to ``reference`` (both unit-norm)."""
    from scipy.optimize import linear_sum_assignment

    cosine = reference @ components.T
    rows, order = linear_sum_assignment(-np.abs(cosine))
    matched = cosine[rows, order]
    signs = np.where(matched < 0, -1.0, 1.0)
    return order, signs, np.abs(matched)
