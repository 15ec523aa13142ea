"""The MATLAB layout of the Pereira 2018 release: variables, text cells, ``meta`` and ROI names.

Low-level reading of ``data_180concepts_<paradigm>.mat`` for :mod:`brainalign.datasets.pereira`
(whose docstring gives the layout and the public code it was confirmed on): the variables
present (``scipy.io.whosmat``, no data read), MATLAB text and cell arrays, the concept of each
row of ``examples``, the voxel grid of ``meta`` (colToCoord checked against coordToCol), and
ROI names resolved to an atlas (network) or one of its regions, as voxel memberships.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .registry import DatasetError

logger = logging.getLogger(__name__)

PARADIGMS = ("sentences", "pictures", "wordclouds")
_REQUIRED = ("examples", "meta", "keyConcept")


def _malformed(path: Path, problem: str) -> DatasetError:
    return DatasetError(
        f"Pereira file '{path}': {problem}. Use the released data_180concepts_*.mat, unmodified."
    )


def _whosmat(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Variables of a ``.mat`` file, {name: (shape, class)}, without reading their data."""
    import scipy.io

    if not path.is_file():
        raise DatasetError(
            f"Pereira file '{path}' does not exist; expected <dataset.root>/<subject>/"
            f"data_180concepts_<paradigm>.mat ({', '.join(PARADIGMS)}). Fix 'dataset.root', "
            "'dataset.subjects' or the task's 'bids_task', or add the file."
        )
    try:
        return {name: (tuple(shape), cls) for name, shape, cls in scipy.io.whosmat(str(path))}
    except (NotImplementedError, ValueError, TypeError, OSError) as err:
        raise DatasetError(
            f"Pereira file '{path}' is not a MATLAB v5/v7 .mat file scipy can read ({err}); "
            "expected the released data_180concepts_*.mat. Re-download it, or re-save a v7.3 "
            "file with save(..., '-v7')."
        ) from None


def _check_variables(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The file's variables, once ``examples``, ``keyConcept`` and ``meta`` are known present."""
    variables = _whosmat(path)
    missing = [name for name in _REQUIRED if name not in variables]
    if missing:
        raise _malformed(path, (
            f"lacks {', '.join(repr(m) for m in missing)}; expected 'examples' (concepts x "
            "voxels betas), 'keyConcept' and the 'meta' struct (voxel coordinates and "
            f"atlases); found {sorted(variables)}"
        ))
    (shape, cls), meta_class = variables["examples"], variables["meta"][1]
    if len(shape) != 2 or cls not in ("double", "single") or meta_class != "struct":
        raise _malformed(path, (
            f"'examples' is {cls} of shape {shape} and 'meta' a {meta_class}; expected a 2-D "
            "numeric (concepts x voxels) array and a struct"
        ))
    return variables


def _load(path: Path, names: Sequence[str]) -> dict[str, Any]:
    import scipy.io

    return scipy.io.loadmat(
        str(path), variable_names=list(names), squeeze_me=False, struct_as_record=False
    )


def _text(value: Any) -> str:
    """A MATLAB char array (or a 1-element cell holding one) as a str."""
    arr = np.asarray(value)
    if arr.dtype == object and arr.size == 1:
        return _text(arr.ravel()[0])
    if arr.dtype.kind == "U":
        return "".join(arr.ravel().tolist())
    raise TypeError(f"expected MATLAB text, got {arr.dtype} of shape {arr.shape}")


def _cells(value: Any) -> list[Any]:
    """Elements of a MATLAB cell array (any orientation), or [value] when it is not a cell."""
    arr = np.asarray(value)
    return list(arr.ravel(order="F")) if arr.dtype == object else [value]


def _row_concepts(data: Mapping[str, Any], n_rows: int, path: Path) -> list[str]:
    """Concept of each row of ``examples``: ``keyConcept``, through ``labelsConcept`` if present."""
    keys = [_text(c).strip() for c in _cells(data["keyConcept"])]
    labels = data.get("labelsConcept")
    if labels is not None and np.asarray(labels).size == n_rows:
        index = np.asarray(labels, dtype=float).ravel(order="F")
        if not np.all((index >= 1) & (index <= len(keys)) & (index == np.round(index))):
            raise _malformed(path, (
                f"'labelsConcept' holds {index.min():g}..{index.max():g}; expected 1-based "
                f"indices into 'keyConcept' (1..{len(keys)})"
            ))
        rows = [keys[int(i) - 1] for i in index]
    elif len(keys) == n_rows:
        rows = keys
    else:
        raise _malformed(path, (
            f"'keyConcept' has {len(keys)} concepts for {n_rows} rows of 'examples'; expected "
            "one concept per row"
        ))
    repeated = sorted({c for c in rows if rows.count(c) > 1})
    if repeated:
        raise _malformed(path, (
            f"concepts {repeated[:5]} have several rows; expected one pattern per concept"
        ))
    return rows


def _field(meta: Any, name: str, path: Path) -> Any:
    value = getattr(meta, name, None)
    if value is None:
        raise _malformed(path, (
            f"'meta' lacks field '{name}'; expected the release's meta struct (colToCoord, "
            "dimx/dimy/dimz or coordToCol, atlases, rois, roiColumns or roiMultimask)"
        ))
    return value


def _grid(meta: Any, n_voxels: int, path: Path) -> tuple[np.ndarray, list[int]]:
    """0-based voxel indices (n_voxels, 3) and the grid shape, checked against coordToCol."""
    coords = np.asarray(_field(meta, "colToCoord", path), dtype=float)
    to_col = getattr(meta, "coordToCol", None)
    dims = [getattr(meta, key, None) for key in ("dimx", "dimy", "dimz")]
    if any(d is None for d in dims):
        dims = np.shape(_field(meta, "coordToCol", path))
    shape = [int(np.asarray(d).ravel()[0]) for d in dims]
    ijk = np.round(coords).astype(np.int64) - 1  # MATLAB 1-based -> 0-based
    if coords.shape != (n_voxels, 3) or (ijk < 0).any() or (ijk >= shape).any():
        raise _malformed(path, (
            f"'meta.colToCoord' has shape {coords.shape}, values {coords.min(initial=0):g}.."
            f"{coords.max(initial=0):g}; expected ({n_voxels}, 3) 1-based coordinates in {shape}"
        ))
    if to_col is not None:
        to_col = np.asarray(to_col)
        found = to_col[tuple(ijk.T)] if to_col.shape == tuple(shape) else None
        if found is None or not np.array_equal(found, np.arange(1, n_voxels + 1)):
            raise _malformed(path, (
                f"'meta.coordToCol' (shape {to_col.shape}) does not map 'meta.colToCoord' "
                f"back to columns 1..{n_voxels}; expected inverse tables on the grid {shape}"
            ))
    return ijk.astype(np.int32), shape


def _affine(meta: Any) -> list[list[float]]:
    size = getattr(meta, "voxelSize", getattr(meta, "voxelsize", None))
    diag = np.ones(3)
    if size is not None and np.asarray(size).size == 3:
        diag = np.asarray(size, dtype=float).ravel()
    logger.info("affine: diagonal %s (the release has no affine)", diag.tolist())
    return np.diag([*diag, 1.0]).tolist()


def _alnum(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name)


def _atlas_names(meta: Any, path: Path) -> tuple[list[str], list[list[str]]]:
    """Atlas names and, per atlas, its region names."""
    atlases = [_text(a) for a in _cells(_field(meta, "atlases", path))]
    regions = [[_text(r) for r in _cells(cell)] for cell in _cells(_field(meta, "rois", path))]
    if len(regions) != len(atlases):
        raise _malformed(path, (
            f"'meta.rois' has {len(regions)} entries for {len(atlases)} 'meta.atlases'; "
            "expected one cell of region names per atlas"
        ))
    return atlases, regions


def _label(atlases: list[str], regions: list[list[str]], a: int, r: int | None) -> str:
    return atlases[a] if r is None else f"{atlases[a]}/{regions[a][r]}"


def _catalogue(atlases: list[str], regions: list[list[str]]) -> dict[str, list[tuple]]:
    """ROI name -> the (atlas, region or None) it may mean; several = ambiguous."""
    names: dict[str, list[tuple]] = {}
    for a, atlas in enumerate(atlases):
        for key in (atlas, _alnum(atlas)):
            if (a, None) not in names.setdefault(key, []):
                names[key].append((a, None))
    for a, atlas in enumerate(atlases):
        for r, region in enumerate(regions[a]):
            for key in (region, _alnum(region), _alnum(atlas) + _alnum(region)):
                targets = names.setdefault(key, [])
                if targets and all(t[1] is None for t in targets):
                    continue  # an atlas name wins over a region of the same name
                if (a, r) not in targets:
                    targets.append((a, r))
    return names


def _resolve(
    name: str, atlases: list[str], regions: list[list[str]], path: Path
) -> tuple[int, int | None]:
    catalogue = _catalogue(atlases, regions)
    targets = catalogue.get(name, [])
    if len(targets) == 1:
        return targets[0]
    if not targets:
        close = difflib.get_close_matches(name, list(catalogue), n=4, cutoff=0.6)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise DatasetError(
            f"ROI '{name}' in config 'dataset.rois' is not a network or region of Pereira "
            f"file '{path}'; expected an atlas ({', '.join(map(_alnum, atlases))}) or a "
            f"region name without non-alphanumerics (e.g. 'FrontalInfOperL' for "
            f"Frontal_Inf_Oper_L){hint}. Fix 'dataset.rois'."
        )
    found = ", ".join(_label(atlases, regions, a, r) for a, r in targets)
    raise DatasetError(
        f"ROI '{name}' in config 'dataset.rois' names regions of several atlases of Pereira "
        f"file '{path}' ({found}); expected one. Prefix the atlas, e.g. "
        f"'{_alnum(atlases[targets[0][0]]) + _alnum(name)}', in 'dataset.rois'."
    )


def _region_columns(meta: Any, atlas: str, a: int, n_regions: int, n_voxels: int, path: Path):
    """0-based columns of each region of atlas ``a``, from roiColumns, else roiMultimask."""
    if getattr(meta, "roiColumns", None) is not None:
        cells = _cells(_cells(meta.roiColumns)[a])
        out = [np.asarray(c, dtype=float).ravel().astype(np.int64) - 1 for c in cells]
    else:
        labels = np.asarray(_cells(_field(meta, "roiMultimask", path))[a], dtype=float).ravel()
        labels = np.nan_to_num(labels, nan=0.0).astype(np.int64)
        out = [np.flatnonzero(labels == r + 1) for r in range(n_regions)]
    if len(out) != n_regions or any(((c < 0) | (c >= n_voxels)).any() for c in out):
        raise _malformed(path, (
            f"the ROI columns of atlas '{atlas}' are {len(out)} lists; expected {n_regions} "
            f"lists of 1-based columns 1..{n_voxels} (meta.roiColumns / meta.roiMultimask)"
        ))
    return out


def _roi_sets(
    meta: Any, rois: Sequence[str], n_voxels: int, path: Path
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Membership (n_voxels,) of each requested ROI, and what each name resolved to."""
    atlases, regions = _atlas_names(meta, path)
    sets, definitions = {}, {}
    for name in rois:
        a, r = _resolve(name, atlases, regions, path)
        columns = _region_columns(meta, atlases[a], a, len(regions[a]), n_voxels, path)
        sets[name] = np.zeros(n_voxels, dtype=bool)
        sets[name][np.concatenate(columns) if r is None else columns[r]] = True
        definitions[name] = _label(atlases, regions, a, r)
    return sets, definitions
