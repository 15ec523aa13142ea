"""Write Pereira et al. 2018 experiment-1 files in the released MATLAB layout.

``scipy.io.savemat`` writes a dict as a 1 x 1 struct and an object array as a cell array, so
the files below read, with plain ``scipy.io.loadmat``, exactly as the public loaders index
the released ones (``data['meta']['atlases'][0][0][0]``, ``meta['roiColumns'][0][0][0][a]
[r][0] - 1``, ``meta['roiMultimask'][0, 0][0, a][voxel, 0]``, ``keyConcept[i][0][0]``; see
:mod:`brainalign.datasets.pereira`). Coordinates and columns are 1-based as in MATLAB.
``roiColumns`` and ``roiMultimask`` are integer (int32): paper 000 and other public readers
index numpy arrays with them directly, which a MATLAB double would not allow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.io

_NEIGHBOURS = np.array(
    [
        (i, j, k)
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
        for k in (-1, 0, 1)
        if (i, j, k) != (0, 0, 0)
    ]
)


def cell(items: Sequence[object], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A MATLAB cell array (object array) holding ``items``, a column by default."""
    out = np.empty(shape or (len(items), 1), dtype=object)
    for position, item in enumerate(items):
        out.flat[position] = item
    return out


def _column(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(-1, 1)


def _neighbours(ijk: np.ndarray, to_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based columns of the 26 neighbours of each voxel (0 = none) and their count."""
    shape = np.array(to_col.shape)
    around = ijk[:, None, :] + _NEIGHBOURS[None]
    inside = ((around >= 0) & (around < shape)).all(axis=2)
    cols = np.zeros(around.shape[:2])
    cols[inside] = to_col[tuple(around[inside].T)]
    ordered = -np.sort(-cols, axis=1)  # neighbours first, zeros last
    return ordered, _column((ordered > 0).sum(axis=1))


def _atlas_cells(
    atlases: Mapping[str, Mapping[str, np.ndarray]], n_voxels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``atlases``, ``rois``, ``roiColumns`` and ``roiMultimask`` as 1 x n_atlases cells."""
    names, rois, columns, masks = [], [], [], []
    for atlas, regions in atlases.items():
        labels = np.zeros(n_voxels)
        for r, cols in enumerate(regions.values()):
            cols = np.asarray(cols, dtype=np.int64)
            if (labels[cols] > 0).any():
                raise ValueError(f"regions of atlas {atlas!r} overlap; one label per voxel")
            labels[cols] = r + 1
        names.append(atlas)
        rois.append(cell(list(regions)))
        columns.append(cell([_column(np.sort(c) + 1, np.int32) for c in regions.values()]))
        masks.append(_column(labels, np.int32))
    shape = (1, len(names))
    return cell(names, shape), cell(rois, shape), cell(columns, shape), cell(masks, shape)


def pereira_meta(
    ijk: np.ndarray,
    shape: tuple[int, int, int],
    atlases: Mapping[str, Mapping[str, np.ndarray]],
    voxel_size: Sequence[float] | None = None,
) -> dict[str, object]:
    """The ``meta`` struct (as a dict, fields in the release's order) for 0-based ``ijk``."""
    ijk = np.asarray(ijk, dtype=np.int64)
    to_col = np.zeros(shape)
    to_col[tuple(ijk.T)] = np.arange(1, len(ijk) + 1)
    neighbours, n_neighbours = _neighbours(ijk, to_col)
    atlas_names, rois, columns, masks = _atlas_cells(atlases, len(ijk))
    meta: dict[str, object] = {
        "dimx": float(shape[0]),
        "dimy": float(shape[1]),
        "dimz": float(shape[2]),
        "dimensions": np.array([shape], dtype=np.float64),
        "indicesIn3D": _column(np.ravel_multi_index(tuple(ijk.T), shape, order="F") + 1),
        "colToCoord": (ijk + 1).astype(np.float64),
        "coordToCol": to_col,
        "voxelsToNeighbours": neighbours,
        "numberOfNeighbours": n_neighbours,
        "atlases": atlas_names,
        "rois": rois,
        "roiColumns": columns,
        "roiMultimask": masks,
    }
    if voxel_size is not None:
        meta["voxelSize"] = np.array([voxel_size], dtype=np.float64)
    return meta


def write_pereira_mat(
    path: str | os.PathLike,
    examples: np.ndarray,
    concepts: Sequence[str],
    ijk: np.ndarray,
    shape: tuple[int, int, int],
    atlases: Mapping[str, Mapping[str, np.ndarray]],
    *,
    voxel_size: Sequence[float] | None = None,
    omit: Sequence[str] = (),
) -> None:
    """Write one ``data_180concepts_<paradigm>.mat`` in the released layout.

    Parameters
    ----------
    path : path-like
        Destination, e.g. ``root/M01/data_180concepts_sentences.mat``.
    examples : array of shape (n_concepts, n_voxels)
        The betas, stored as double (NaN allowed).
    concepts : sequence of str, length n_concepts
        ``keyConcept`` (row i of ``examples`` is concept i; ``labelsConcept`` = 1..n).
    ijk : int array of shape (n_voxels, 3)
        0-based voxel indices (written 1-based to ``meta.colToCoord``).
    shape : (dimx, dimy, dimz)
        The grid.
    atlases : mapping of atlas name to {region name: 0-based voxel columns}
        Networks are atlases too, e.g. ``{"languageLH": {"L_IFG": [...], ...}, "visual":
        {...}, "aal_1ofN": {...}}``; regions of one atlas must not overlap.
    voxel_size : three floats, optional
        Written as ``meta.voxelSize`` (the release has none).
    omit : sequence of str
        Variables to leave out (to test error messages and fallbacks): top-level names, or
        ``meta.<field>`` for a field of ``meta``.
    """
    examples = np.asarray(examples, dtype=np.float64)
    if examples.shape != (len(concepts), len(ijk)):
        raise ValueError(f"examples {examples.shape} != ({len(concepts)}, {len(ijk)})")
    meta = pereira_meta(ijk, shape, atlases, voxel_size)
    contents = {
        "examples": examples,
        "keyConcept": cell(list(concepts)),
        "labelsConcept": _column(np.arange(1, len(concepts) + 1)),
        "meta": {k: v for k, v in meta.items() if f"meta.{k}" not in omit},
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scipy.io.savemat(
        str(path), {k: v for k, v in contents.items() if k not in omit}, oned_as="column"
    )
