"""Single-trial betas of event-related designs (LSA and LSS) on (n_scans, n_units) arrays.

The same code serves volumes and surfaces: it sees a 2D array of BOLD time series (one
column per voxel or vertex) and a BIDS ``events.tsv`` table (``onset``, ``duration``,
``trial_type`` and a column naming each trial's stimulus).

Semantics are nilearn's ``FirstLevelModel``: the regressors (HRF convolution, drift,
constant, confounds) are built by ``make_first_level_design_matrix`` on the frame times
``FirstLevelModel`` uses (``slice_time_ref=0``: ``tr * arange(n_scans)``), and every GLM is
fitted by ordinary least squares (``pinv(X) @ Y``). The reference is therefore
``FirstLevelModel(t_r=tr, noise_model='ols', signal_scaling=False, hrf_model=...,
drift_model=..., high_pass=...)`` with the trial's ``effect_size`` contrast: OLS is the
norm for single-trial betas (an AR(1) prewhitening per voxel would give every voxel its own
design), and ``signal_scaling=False`` keeps the betas in the units of the data (the
workflow z-scores them per run afterwards). nilearn's ``modulation`` column is ignored: every
event has amplitude 1.

LSA (least squares all): one GLM with one regressor per stimulus trial, plus one per
nuisance trial type, the drift model and the confounds.

LSS (least squares separate; Mumford et al. 2012, as nilearn's ``plot_beta_series``
example): per trial, a GLM with that trial as its own condition and every other event
kept in its own ``trial_type`` (so the other trials of the same type are collapsed into one
regressor, other types into one regressor each), plus drift and confounds.

The fast LSS path never loops over voxels. The beta of a trial is one row of the
pseudo-inverse of its design applied to the data, ``beta_t = c_t @ Y``; the designs of the
trials of one type share every column but the trial's own block ``A_t`` and the block of
the other trials of its type, ``S - R_t`` (``R_t`` the raw, unorthogonalised regressors
of trial ``t`` and ``S`` their sum over the type: convolution is linear). By
Frisch-Waugh-Lovell, with ``M`` the projection off the shared columns ``W`` (drift,
confounds, the other trial types), ``c_t`` is the first row of ``pinv(M [A_t, S - R_t])``:
an (n_scans x 2k) problem per trial (k = columns per event of the HRF model). All rows are
stacked into ``C`` (n_trials, n_scans) and the betas of every unit are one product
``C @ Y``. The result equals nilearn's per-trial loop to rounding (see the tests).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.glm.first_level import (
    glover_dispersion_derivative,
    glover_hrf,
    glover_time_derivative,
    make_first_level_design_matrix,
    spm_dispersion_derivative,
    spm_hrf,
    spm_time_derivative,
)

from brainalign.datasets.events import _is_trial, check_events, read_events
from brainalign.datasets.registry import DatasetError

__all__ = ["METHODS", "HRF_MODELS", "read_events", "check_events", "estimate_betas"]

logger = logging.getLogger(__name__)

METHODS = ("lss", "lsa")
# nilearn's column suffixes of one condition, per HRF model (the first is the beta's column)
_SUFFIXES = {
    "glover": ("",),
    "spm": ("",),
    "glover + derivative": ("", "_derivative"),
    "spm + derivative": ("", "_derivative"),
    "glover + derivative + dispersion": ("", "_derivative", "_dispersion"),
    "spm + derivative + dispersion": ("", "_derivative", "_dispersion"),
    "fir": ("_delay_0",),
}
HRF_MODELS = tuple(_SUFFIXES)
# kernels of the multi-column models, whose columns nilearn orthogonalises per condition
_KERNELS = {
    "glover + derivative": (glover_hrf, glover_time_derivative),
    "spm + derivative": (spm_hrf, spm_time_derivative),
    "glover + derivative + dispersion": (
        glover_hrf, glover_time_derivative, glover_dispersion_derivative,
    ),
    "spm + derivative + dispersion": (spm_hrf, spm_time_derivative, spm_dispersion_derivative),
}
_BATCH_UNITS = 8192


def estimate_betas(
    data: np.ndarray,
    events: pd.DataFrame,
    *,
    tr: float,
    method: str = "lss",
    hrf_model: str = "glover",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    stimulus_column: str = "concept",
    trial_types: Sequence[str] | None = None,
    confounds: np.ndarray | pd.DataFrame | None = None,
    events_file: str | Path = "<events>",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Single-trial betas of one run, with nilearn's ``FirstLevelModel`` semantics (OLS).

    Parameters
    ----------
    data : array of shape (n_scans, n_units)
        BOLD time series of one run (voxels or vertices); a unit holding NaN gets NaN betas.
    events : pandas.DataFrame
        The run's events (checked with :func:`check_events`).
    tr : float
        Repetition time in seconds.
    method : {'lss', 'lsa'}
        One GLM per trial (Mumford 2012), or one GLM with a regressor per trial.
    hrf_model, drift_model, high_pass
        As in nilearn's ``make_first_level_design_matrix`` (FIR: delay 0 only).
    stimulus_column, trial_types
        As in :func:`check_events`; events of other trial types are nuisance regressors.
    confounds : array or DataFrame of shape (n_scans, n_confounds), optional
        Regressed out in every GLM (without NaN).
    events_file : str or Path
        The events file, quoted in messages.

    Returns
    -------
    betas : float32 array of shape (n_trials, n_units)
        The beta of each stimulus trial (its first HRF column), rows in onset order.
    trials : pandas.DataFrame
        ``stimulus``, ``onset``, ``duration``, ``trial_type`` of each row of ``betas``.
    """
    data = _check_data(data, confounds)
    n_scans = data.shape[0]
    if method not in METHODS:
        raise ValueError(f"preprocess.betas.method must be one of {list(METHODS)}; got {method!r}.")
    if hrf_model not in _SUFFIXES:
        raise ValueError(f"preprocess.betas.hrf_model must be one of {list(HRF_MODELS)}; got {hrf_model!r}.")
    table = check_events(events, events_file, stimulus_column=stimulus_column, trial_types=trial_types)
    trials, labelled = _label_trials(table, stimulus_column, trial_types)
    _check_within_run(trials, n_scans, tr, events_file)
    if (labelled["duration"] == 0).any():
        logger.info("%d events of duration 0 are modelled as impulses", int((labelled["duration"] == 0).sum()))
    frame_times = np.linspace(0.0, (n_scans - 1) * tr, n_scans)
    design = _design_matrix(
        frame_times, labelled, hrf_model=hrf_model, drift_model=drift_model,
        high_pass=high_pass, fir_delays=[0], add_regs=confounds,
    )
    if method == "lsa":
        rows = _lsa_rows(design, trials, hrf_model, events_file)
    else:
        rows = _lss_rows(design, labelled, trials, frame_times, hrf_model)
    betas = _apply_rows(rows, data)
    logger.info(
        "%s betas of %d trials (%d nuisance events) x %d units from %d scans (TR %.3g s): "
        "hrf %s, drift %s (high-pass %.3g Hz), %d design columns", method.upper(), len(trials),
        len(labelled) - len(trials), data.shape[1], n_scans, tr, hrf_model, drift_model,
        high_pass, design.shape[1],
    )
    return betas, trials[["stimulus", "onset", "duration", "trial_type"]].reset_index(drop=True)


def _design_matrix(frame_times: np.ndarray, events: pd.DataFrame, **options) -> pd.DataFrame:
    """nilearn's ``make_first_level_design_matrix``, without its per-condition warning about
    zero durations (it would list every trial; impulses are what such events are)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The following conditions contain events with null duration")
        return make_first_level_design_matrix(frame_times, events, **options)


def _check_data(data: np.ndarray, confounds) -> np.ndarray:
    """``data`` as a 2D array; confounds with as many rows (a bug of the caller otherwise)."""
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"data must be an array of shape (n_scans, n_units); got shape {data.shape}.")
    if confounds is not None and np.shape(confounds)[0] != data.shape[0]:
        raise ValueError(
            f"confounds must have one row per scan ({data.shape[0]}); got shape {np.shape(confounds)}."
        )
    return data


def _label_trials(
    table: pd.DataFrame, stimulus_column: str, trial_types
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stimulus trials (with a unique condition ``name``) and nilearn's events table.

    In the events table each stimulus trial is its own condition (the LSA design) and
    nuisance events keep their ``trial_type``.
    """
    is_trial = _is_trial(table, trial_types)
    nuisance = set(table.loc[~is_trial, "trial_type"])
    prefix = "trial"
    while any(name.startswith(prefix) for name in nuisance):
        prefix = "_" + prefix
    trials = table.loc[is_trial, ["onset", "duration", "trial_type"]].copy()
    trials.insert(0, "stimulus", table.loc[is_trial, stimulus_column])
    trials["name"] = [f"{prefix}{i:04d}" for i in range(len(trials))]
    labelled = table[["onset", "duration", "trial_type"]].copy()
    labelled.loc[is_trial, "trial_type"] = trials["name"]
    return trials.reset_index(drop=True), labelled


def _check_within_run(trials: pd.DataFrame, n_scans: int, tr: float, path) -> None:
    """A DatasetError for a trial that starts after the last volume (its beta would be 0)."""
    end = n_scans * tr
    late = trials["onset"].to_numpy() >= end
    if late.any():
        onset = float(trials["onset"].to_numpy()[late][0])
        raise DatasetError(
            f"events '{path}' has a trial at onset {onset:g} s, after the end of its run "
            f"({n_scans} scans x TR {tr:g} s = {end:g} s); pair each events file with its own "
            "run's BOLD, or check repetition_time."
        )


def _lsa_rows(design: pd.DataFrame, trials: pd.DataFrame, hrf_model: str, path) -> np.ndarray:
    """Rows of ``pinv(X)`` (LSA design) giving each trial's beta: (n_trials, n_scans)."""
    n_scans, n_columns = design.shape
    if n_columns > n_scans:
        raise DatasetError(
            f"events '{path}': preprocess.betas.method 'lsa' needs at most one regressor per "
            f"scan; got {n_columns} regressors for {n_scans} scans; use method: lss."
        )
    main = design.columns.get_indexer([name + _SUFFIXES[hrf_model][0] for name in trials["name"]])
    return np.linalg.pinv(design.to_numpy())[main]


def _lss_rows(
    design: pd.DataFrame, labelled: pd.DataFrame, trials: pd.DataFrame, frame_times: np.ndarray,
    hrf_model: str,
) -> np.ndarray:
    """Rows ``c_t`` with ``beta_t = c_t @ Y`` of every trial's LSS GLM: (n_trials, n_scans).

    Per trial type, the columns shared by its trials' designs are projected off once
    (Frisch-Waugh-Lovell), then each trial needs its (n_scans x 2k) block only.
    """
    suffixes = _SUFFIXES[hrf_model]
    own = np.stack([design[[name + s for s in suffixes]].to_numpy() for name in trials["name"]])
    raw = _raw_blocks(own, trials, labelled, frame_times, hrf_model)
    shared = design.drop(columns=[name + s for name in trials["name"] for s in suffixes]).to_numpy()
    groups = trials.groupby("trial_type", sort=True).indices
    type_sums = {kind: raw[index].sum(axis=0) for kind, index in groups.items()}
    rows = np.empty((len(trials), len(frame_times)))
    for kind, index in groups.items():
        others = [block for other, block in type_sums.items() if other != kind]
        basis = _orthonormal_basis(np.hstack([shared, *others]))
        blocks = np.concatenate([own[index], type_sums[kind] - raw[index]], axis=2)
        blocks -= basis @ np.einsum("nq,tnk->tqk", basis, blocks)
        rows[index] = np.linalg.pinv(blocks)[:, 0, :]
        logger.debug("LSS: %d trials of type %r against %d shared columns", len(index), kind, basis.shape[1])
    return rows


def _raw_blocks(
    own: np.ndarray, trials: pd.DataFrame, labelled: pd.DataFrame, frame_times: np.ndarray,
    hrf_model: str,
) -> np.ndarray:
    """Each trial's regressors before nilearn's per-condition orthogonalisation.

    Single-column models are never orthogonalised (nor is FIR), so ``own`` is raw; for the
    derivative models each kernel is convolved alone (nilearn's callable HRF).

    Returns
    -------
    array of shape (n_trials, n_scans, k)
    """
    if hrf_model not in _KERNELS:
        return own
    events = labelled[labelled["trial_type"].isin(set(trials["name"]))]
    raw = np.empty_like(own)
    for k, kernel in enumerate(_KERNELS[hrf_model]):
        design = _design_matrix(frame_times, events, hrf_model=kernel, drift_model=None)
        raw[:, :, k] = design[[f"{name}_{kernel.__name__}" for name in trials["name"]]].to_numpy().T
    return raw


def _orthonormal_basis(columns: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the span of ``columns`` (n_scans, q) -> (n_scans, rank)."""
    u, s, _ = np.linalg.svd(columns, full_matrices=False)
    keep = s > s.max() * max(columns.shape) * np.finfo(float).eps
    return u[:, keep]


def _apply_rows(rows: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``rows @ data`` in float64 by unit batches, returned as float32 (n_trials, n_units)."""
    betas = np.empty((rows.shape[0], data.shape[1]), dtype=np.float32)
    for start in range(0, data.shape[1], _BATCH_UNITS):
        batch = slice(start, start + _BATCH_UNITS)
        betas[:, batch] = rows @ data[:, batch].astype(np.float64)
    return betas
