"""Confounds of fMRIPrep runs, chosen through nilearn's fMRIPrep interface.

The configuration (``preprocess.confounds``) takes one of four forms:

* a strategy name of :func:`nilearn.interfaces.fmriprep.load_confounds_strategy`
  (``simple``, ``scrubbing``, ``compcor``, ``ica_aroma``);
* a mapping of :func:`nilearn.interfaces.fmriprep.load_confounds` arguments, e.g. the
  default :data:`DEFAULT_CONFOUNDS` (6 motion parameters, WM and CSF means, fMRIPrep's
  cosine high-pass columns, non-steady-state volumes dropped);
* a list of column names of the confounds TSV, regressed as they are;
* ``[]``: no confounds, no volume dropped, no file read.

What nilearn does is kept in every form: derivative columns start with ``n/a``, which is
filled with the column's first finite value (nilearn fills row 0 with row 1), and the
volumes flagged by ``non_steady_state_outlier*`` columns are dropped through a sample mask
(indices of the kept volumes), as are the outliers of the ``scrub`` strategy. Columns
are demeaned over the kept volumes.

A listed column that is all n/a is dropped here (logged). The bids reader then passes
each run's selection through :func:`brainalign.datasets.confounds_rank.reduce_confounds`
(logged with names): columns not finite or constant over the run's kept volumes are
dropped, and of a collinear set (a column repeated, or the sum of others) only an
independent subset is kept, chosen by QR with column pivoting (rank tolerance 1e-8 of
the largest pivot of the z-scored columns), so that no regression inverts a singular
matrix. :func:`select_confounds` itself returns what nilearn selects.

:func:`check_confounds` needs neither nilearn nor the data: it reads the TSV's header (and
the JSON sidecar for CompCor), so that Snakemake can report a bad strategy or a missing
column while it builds the DAG. :func:`select_confounds` runs at job time, through nilearn.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .registry import DatasetError

__all__ = [
    "STRATEGIES",
    "DEFAULT_CONFOUNDS",
    "needs_confounds",
    "check_confounds",
    "select_confounds",
    "check_aroma_image",
    "confounds_sidecar",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
_KEY = "preprocess.confounds"
_LEVELS = ("basic", "power2", "derivatives", "full")
_COMPCOR = ("anat_combined", "anat_separated", "temporal", "temporal_anat_combined",
            "temporal_anat_separated")
_COMPONENTS = ("motion", "wm_csf", "global_signal", "compcor", "ica_aroma", "scrub",
               "high_pass", "non_steady_state")
# load_confounds arguments (tedana is not offered: it needs tedana's own files)
_ARGUMENTS = {
    "strategy": None, "motion": _LEVELS, "wm_csf": _LEVELS, "global_signal": _LEVELS,
    "compcor": _COMPCOR, "ica_aroma": ("full", "basic"), "scrub": None, "fd_threshold": None,
    "std_dvars_threshold": None, "n_compcor": None, "demean": None,
}
# nilearn's preset_strategies (load_confounds_strategy), pinned by a test against nilearn
STRATEGIES: dict[str, dict[str, Any]] = {
    "simple": {"strategy": ("high_pass", "motion", "wm_csf"), "motion": "full",
               "wm_csf": "basic", "global_signal": None, "demean": True},
    "scrubbing": {"strategy": ("high_pass", "motion", "wm_csf", "scrub"), "motion": "full",
                  "wm_csf": "full", "scrub": 5, "fd_threshold": 0.5,
                  "std_dvars_threshold": 1.5, "global_signal": None, "demean": True},
    "compcor": {"strategy": ("high_pass", "motion", "compcor"), "motion": "full",
                "n_compcor": "all", "compcor": "anat_combined", "global_signal": None,
                "demean": True},
    "ica_aroma": {"strategy": ("high_pass", "wm_csf", "ica_aroma"), "wm_csf": "basic",
                  "ica_aroma": "full", "global_signal": None, "demean": True},
}
DEFAULT_CONFOUNDS: dict[str, Any] = {
    "strategy": ["motion", "wm_csf", "high_pass", "non_steady_state"],
    "motion": "basic",
    "wm_csf": "basic",
}
# load_confounds' own defaults, for the arguments a mapping leaves out
_DEFAULTS = {"motion": "full", "wm_csf": "basic", "global_signal": "basic", "scrub": 5,
             "fd_threshold": 0.5, "std_dvars_threshold": 1.5, "compcor": "anat_combined",
             "n_compcor": "all", "ica_aroma": "full", "demean": True}
_SUFFIXES = {"basic": (), "derivatives": ("_derivative1",), "power2": ("_power2",),
             "full": ("_derivative1", "_power2", "_derivative1_power2")}
_BASES = {"motion": ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"),
          "wm_csf": ("csf", "white_matter"), "global_signal": ("global_signal",)}
_OUTLIERS = ("non_steady_state", "motion_outlier")


# ----------------------------------------------------------------------------- the spec
def _spec_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else json.dumps(spec, default=list)


def _resolve(spec: Any, source: str) -> tuple[str, dict[str, Any] | list[str]]:
    """("strategy" | "columns", load_confounds arguments or column names)."""
    if isinstance(spec, str):
        if spec not in STRATEGIES:
            close = difflib.get_close_matches(spec, list(STRATEGIES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DatasetError(
                f"config '{_KEY}' names strategy '{spec}', which nilearn's "
                f"load_confounds_strategy does not know; expected one of: "
                f"{', '.join(sorted(STRATEGIES))}{hint}, a mapping of load_confounds "
                f"arguments or a list of columns. Edit {source}."
            )
        return "strategy", {**_DEFAULTS, **STRATEGIES[spec]}
    if isinstance(spec, Mapping):
        return "strategy", _check_arguments(spec, source)
    if isinstance(spec, Sequence) and all(isinstance(c, str) for c in spec):
        return "columns", list(spec)
    raise DatasetError(
        f"config '{_KEY}' must be a strategy name, a mapping of load_confounds arguments or "
        f"a list of column names; got {spec!r}. Edit {source}."
    )


def _check_arguments(spec: Mapping[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(spec) - set(_ARGUMENTS))
    strategy = spec.get("strategy")
    bad = [] if isinstance(strategy, (list, tuple)) else [strategy]
    bad += [c for c in strategy or () if c not in _COMPONENTS]
    if unknown or bad or not strategy:
        raise DatasetError(
            f"config '{_KEY}' must be load_confounds arguments with a non-empty 'strategy' "
            f"list of {', '.join(_COMPONENTS)}; got unknown arguments {unknown} and strategy "
            f"{strategy!r}. Edit {source}."
        )
    for key, allowed in _ARGUMENTS.items():
        if allowed and key in spec and spec[key] not in allowed:
            raise DatasetError(
                f"config '{_KEY}.{key}' must be one of {', '.join(allowed)}; got "
                f"{spec[key]!r}. Edit {source}."
            )
    if "compcor" in strategy and "high_pass" not in strategy:
        raise DatasetError(
            f"config '{_KEY}.strategy' uses compcor without high_pass; fMRIPrep's CompCor "
            f"components are computed after its cosine high-pass, so nilearn requires both. "
            f"Add high_pass to the strategy in {source}."
        )
    return {**_DEFAULTS, **spec, "strategy": tuple(strategy)}


def check_aroma_image(bold_file: PathLike, spec: Any) -> None:
    """Full ICA-AROMA (strategy ``ica_aroma``) reads fMRIPrep's AROMA-denoised BOLD.

    Raises
    ------
    DatasetError
        When ``spec`` uses ``ica_aroma: full`` and the BOLD file is not
        ``*_desc-smoothAROMAnonaggr_bold*`` (as nilearn requires).
    """
    form, resolved = _resolve(spec, "the configuration")
    aroma = form == "strategy" and "ica_aroma" in resolved["strategy"]
    if aroma and resolved["ica_aroma"] == "full" and "_desc-smoothAROMAnonaggr_bold" not in (
        Path(bold_file).name
    ):
        raise DatasetError(
            f"BOLD '{bold_file}' is not fMRIPrep's ICA-AROMA output, which config '{_KEY}' "
            "(ica_aroma, full) needs; set 'dataset.desc: smoothAROMAnonaggr' (and its space) or "
            "use ica_aroma: basic."
        )


def needs_confounds(spec: Any) -> bool:
    """Whether ``spec`` reads a confounds file (everything but ``[]``)."""
    return not (isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 0)


def confounds_sidecar(confounds_file: PathLike) -> Path:
    """The JSON sidecar of a confounds TSV (its CompCor metadata)."""
    path = Path(confounds_file)
    return path.with_name(path.name[: -len(".tsv")] + ".json")


# ----------------------------------------------------------------------------- checks
def _expected_columns(arguments: Mapping[str, Any], confounds_file: PathLike) -> list[str]:
    """Columns nilearn's load_confounds will need for ``arguments`` (header-only check)."""
    columns: list[str] = []
    for component in arguments["strategy"]:
        if component in _BASES:
            level = arguments[component]
            columns += [b + s for b in _BASES[component] for s in ("", *_SUFFIXES[level])]
        elif component == "scrub":
            columns += ["framewise_displacement", "std_dvars"]
        elif component == "compcor":
            columns += _compcor_columns(arguments, confounds_file)
    return columns


# CompCor kinds: (column prefix, JSON "Mask" values kept or None for all), as in nilearn
_COMPCOR_KINDS = {
    "anat_combined": (("a", ("combined",)),),
    "anat_separated": (("a", ("WM", "CSF")), ("w", None), ("c", None)),
    "temporal": (("t", None),),
    "temporal_anat_combined": (("t", None), ("a", ("combined",))),
    "temporal_anat_separated": (("t", None), ("a", ("WM", "CSF")), ("w", None), ("c", None)),
}


def _compcor_columns(arguments: Mapping[str, Any], confounds_file: PathLike) -> list[str]:
    """CompCor columns named by the confounds JSON (per mask, the first ``n_compcor``)."""
    sidecar = confounds_sidecar(confounds_file)
    if not sidecar.is_file():
        raise DatasetError(
            f"confounds '{confounds_file}' has no JSON sidecar '{sidecar.name}', which the "
            "compcor strategy needs (fMRIPrep >= 1.4 writes it); copy it next to the TSV or "
            "pick another strategy."
        )
    meta = json.loads(sidecar.read_text())
    n_compcor, columns = arguments["n_compcor"], []
    for prefix, masks in _COMPCOR_KINDS[arguments["compcor"]]:
        names = sorted(name for name in meta if name.startswith(f"{prefix}_comp_cor_"))
        groups = [names] if masks is None else [
            [name for name in names if meta[name].get("Mask") == mask] for mask in masks
        ]
        for group in groups:
            columns += group if n_compcor == "all" else group[: int(n_compcor)]
    if not columns:
        raise DatasetError(
            f"confounds JSON '{sidecar}' lists no {arguments['compcor']} CompCor component "
            f"(keys *_comp_cor_NN with their Mask); pick another compcor option in config "
            f"'{_KEY}'."
        )
    return columns


def _header(confounds_file: PathLike) -> list[str]:
    path = Path(confounds_file)
    if not path.is_file():
        raise DatasetError(
            f"confounds '{path}' does not exist; expected fMRIPrep's "
            "*_desc-confounds_timeseries.tsv next to the BOLD run."
        )
    with open(path, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n").split("\t")


def _missing_message(confounds_file, missing, header, spec, source) -> str:
    hints = []
    for name in missing[:4]:
        close = difflib.get_close_matches(name, header, n=2)
        if close:
            hints.append(f"'{name}' (close: {', '.join(close)})")
        else:
            hints.append(f"'{name}'")
    more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    return (
        f"confounds '{confounds_file}' lacks columns {', '.join(hints)}{more} that config "
        f"'{_KEY}' ({_spec_name(spec)}) needs; it has {len(header)} columns. List existing "
        f"columns or pick another strategy in {source}."
    )


def check_confounds(
    confounds_file: PathLike, spec: Any, *, source: str = "config/config.yaml"
) -> None:
    """Check ``spec`` against a confounds file's header (and JSON sidecar), without nilearn.

    Parameters
    ----------
    confounds_file : path-like
        fMRIPrep's ``*_desc-confounds_timeseries.tsv``; only its first line is read.
    spec : str, mapping or list of str
        ``preprocess.confounds`` (see the module docstring).
    source : str
        The configuration file, quoted in messages.

    Raises
    ------
    DatasetError
        One line: an unknown strategy (the known ones listed), an invalid argument, a
        missing column (with close matches), or a missing JSON sidecar for CompCor.
    """
    form, resolved = _resolve(spec, source)
    if not needs_confounds(spec):
        return
    header = _header(confounds_file)
    if form == "columns":
        needed = resolved
    else:
        needed = _expected_columns(resolved, confounds_file)
        if "ica_aroma" in resolved["strategy"] and resolved["ica_aroma"] == "basic":
            if not any("aroma" in column for column in header):
                needed = [*needed, "aroma_motion_00"]
    missing = [column for column in needed if column not in header]
    if missing:
        raise DatasetError(_missing_message(confounds_file, missing, header, spec, source))


# ----------------------------------------------------------------------------- selection
@contextlib.contextmanager
def _nilearn_view(confounds_file: PathLike, aroma: bool) -> Iterator[str]:
    """An image name from which nilearn finds exactly ``confounds_file`` (and its JSON).

    nilearn locates the confounds by rewriting the BOLD file name, which only works for
    fMRIPrep's own names; linking the files under canonical names in a temporary folder
    lets any BOLD name (and the confounds file the workflow declared) be used.
    """
    tmp = tempfile.mkdtemp(prefix="brainalign-confounds-")
    while "tsv" in tmp:  # nilearn finds the JSON by replacing "tsv" anywhere in the path
        shutil.rmtree(tmp)
        tmp = tempfile.mkdtemp(prefix="brainalign-confounds-")
    try:
        stem = Path(tmp) / "sub-0_desc-confounds_timeseries"
        pairs = ((confounds_file, ".tsv"), (confounds_sidecar(confounds_file), ".json"))
        for source, extension in pairs:
            if Path(source).is_file():
                _link(Path(source), stem.with_name(stem.name + extension))
        desc = "smoothAROMAnonaggr" if aroma else "preproc"
        yield str(Path(tmp) / f"sub-0_desc-{desc}_bold.nii.gz")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link(source: Path, target: Path) -> None:
    try:
        os.symlink(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)


def _read_tsv(confounds_file: PathLike):
    import pandas as pd

    return pd.read_csv(confounds_file, sep="\t", na_values=["n/a"])


def _by_strategy(confounds_file: PathLike, arguments: dict[str, Any]):
    """nilearn's load_confounds on one file: (DataFrame or None, sample mask or None)."""
    from nilearn.interfaces.fmriprep import load_confounds

    aroma = "ica_aroma" in arguments["strategy"] and arguments["ica_aroma"] == "full"
    with _nilearn_view(confounds_file, aroma) as image, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Non-steady state volumes are always detected")
        try:
            return load_confounds(image, **arguments)
        except (ValueError, KeyError) as error:  # nilearn's own message, on one line
            raise DatasetError(
                f"confounds '{confounds_file}': nilearn's load_confounds failed: "
                f"{' '.join(str(error).split())} Check config '{_KEY}'."
            ) from error


def _fill_leading_nan(values: np.ndarray, columns: Sequence[str], confounds_file) -> np.ndarray:
    """First rows of derivative columns are n/a: fill them with the first finite value."""
    finite = np.isfinite(values)
    first = np.where(finite.any(axis=0), finite.argmax(axis=0), len(values))
    bad = [c for k, c in enumerate(columns) if first[k] == len(values)
           or not finite[first[k]:, k].all()]
    if bad:
        raise DatasetError(
            f"confounds '{confounds_file}' column {bad[:3]} has missing values after its first "
            "rows (only the first rows of derivative columns may be n/a); drop the column "
            "from config 'preprocess.confounds'."
        )
    filled = values.copy()
    for k in np.flatnonzero(first):
        filled[: first[k], k] = values[first[k], k]
    return filled


def _by_columns(confounds_file: PathLike, columns: list[str]):
    """Listed columns as they are (outlier columns become the sample mask, as in nilearn)."""
    import pandas as pd

    table = _read_tsv(confounds_file)
    outliers = [c for c in table.columns if c.startswith("non_steady_state")]
    outliers += [c for c in columns if c.startswith(_OUTLIERS) and c not in outliers]
    regressors = [c for c in columns if not c.startswith(_OUTLIERS)]
    flagged = table[outliers].to_numpy(dtype=float).sum(axis=1) > 0 if outliers else None
    sample_mask = None if flagged is None else np.flatnonzero(~flagged)
    values = table[regressors].to_numpy(dtype=np.float64)
    empty = [c for k, c in enumerate(regressors) if not np.isfinite(values[:, k]).any()]
    if empty:
        logger.warning("confounds '%s': columns %s are all n/a; dropped", confounds_file, empty)
        regressors = [c for c in regressors if c not in empty]
        values = table[regressors].to_numpy(dtype=np.float64)
    values = _fill_leading_nan(values, regressors, confounds_file)
    kept = slice(None) if sample_mask is None else sample_mask
    values = values - values[kept].mean(axis=0)
    return pd.DataFrame(values, columns=regressors), sample_mask


def _n_rows(confounds_file: PathLike) -> int:
    with open(confounds_file, "rb") as handle:
        return sum(1 for line in handle if line.strip()) - 1


def select_confounds(
    bold_file: PathLike | None,
    spec: Any,
    *,
    n_volumes: int,
    confounds_file: PathLike | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, Any]]:
    """Confound regressors and kept volumes of one run, through nilearn's fMRIPrep interface.

    Parameters
    ----------
    bold_file : path-like or None
        The run's BOLD file, named in messages; when ``confounds_file`` is None, its
        confounds are found next to it as nilearn does (fMRIPrep names only).
    spec : str, mapping or list of str
        ``preprocess.confounds`` (see the module docstring).
    n_volumes : int
        Volumes of the run; the TSV must have one row per volume.
    confounds_file : path-like or None
        The confounds TSV (its JSON sidecar is used for CompCor).

    Returns
    -------
    confounds : array of shape (n_volumes, n_columns) or None
        Demeaned regressors, every volume (dropped ones included); None if no column.
    sample_mask : int array of shape (n_kept,) or None
        Indices of the volumes kept (non-steady-state and scrubbed volumes dropped);
        None when every volume is kept.
    report : dict
        ``strategy`` (the spec as text), ``columns``, ``n_columns``, ``dropped_volumes``
        (indices), ``fmriprep_high_pass`` (fMRIPrep's cosine columns are regressed, so no
        other high-pass must be added).
    """
    report = {"strategy": _spec_name(spec), "columns": [], "n_columns": 0,
              "dropped_volumes": [], "fmriprep_high_pass": False}
    form, resolved = _resolve(spec, "the configuration")
    if not needs_confounds(spec):
        logger.info("no confounds regressed, no volume dropped (preprocess.confounds: [])")
        return None, None, report
    path = confounds_file if confounds_file is not None else _find_next_to(bold_file)
    check_confounds(path, spec, source="the configuration")
    if bold_file is not None:
        check_aroma_image(bold_file, spec)
    if _n_rows(path) != n_volumes:
        raise DatasetError(
            f"confounds '{path}' has {_n_rows(path)} rows but BOLD '{bold_file}' has "
            f"{n_volumes} volumes; pass the confounds file of this run."
        )
    table, sample_mask = (_by_columns if form == "columns" else _by_strategy)(path, resolved)
    columns = [] if table is None else [str(c) for c in table.columns]
    matrix = table.to_numpy(dtype=np.float64) if columns else None
    if sample_mask is not None:
        sample_mask = np.asarray(sample_mask, dtype=int)
    kept = range(n_volumes) if sample_mask is None else sample_mask.tolist()
    dropped = sorted(set(range(n_volumes)) - set(kept))
    report.update(columns=columns, n_columns=len(columns), dropped_volumes=dropped,
                  fmriprep_high_pass=any(c.startswith("cosine") for c in columns))
    shown = columns[:8] + (["..."] if len(columns) > 8 else [])
    logger.info("confounds '%s' (%s): regressed %d columns %s; dropped %d volumes %s",
                Path(path).name, report["strategy"], len(columns), shown, len(dropped),
                dropped[:10])
    return matrix, sample_mask, report


def _find_next_to(bold_file: PathLike | None) -> Path:
    """fMRIPrep's confounds file of a BOLD run: its entities but space, res, den, hemi and
    desc, with ``desc-confounds_timeseries.tsv`` (or the older ``_regressors.tsv``)."""
    if bold_file is None:
        raise DatasetError("select_confounds needs a bold_file or a confounds_file; got neither.")
    bold = Path(bold_file)
    stem = re.sub(r"_(space|res|den|hemi|desc)-[a-zA-Z0-9+]+", "", bold.name.split(".")[0])
    stem = stem.rsplit("_", 1)[0]  # the suffix (bold)
    for suffix in ("timeseries", "regressors"):
        candidate = bold.with_name(f"{stem}_desc-confounds_{suffix}.tsv")
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"BOLD '{bold}' has no confounds file next to it; expected "
        f"'{stem}_desc-confounds_timeseries.tsv'. Pass confounds_file or set "
        f"config '{_KEY}' to []."
    )
