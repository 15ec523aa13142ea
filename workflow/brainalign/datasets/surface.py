"""fsaverage surfaces: GIfTI time series, surface atlases, and CIFTI-2 maps of vertex values.

fMRIPrep writes a run as ``..._hemi-L_space-fsaverage5_bold.func.gii`` and ``..._hemi-R_...``;
both are read into one matrix over the left then the right hemisphere's vertices, labelled by
the ``hemi`` / ``vertex`` arrays of :mod:`brainalign.datasets.units`, so that encoding and RSA
run on vertices as on voxels.

Surface atlases are FreeSurfer ``lh.*.annot`` / ``rh.*.annot`` files or label GIfTI files
(``hemi-L_space-fsaverage5_atlas-X_dseg.label.gii``) with their label table. Per-unit maps
(held-out r per layer...) are written as one CIFTI-2 dense scalar file (``.dscalar.nii``)
holding both hemispheres, as Connectome Workbench and nibabel read them.

Atlases are read in :mod:`brainalign.datasets.surface_atlas` (:func:`load_surface_atlas` is
re-exported here), GIfTI files opened in :mod:`brainalign.datasets.surface_gifti`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import io
from .registry import DatasetError
from .surface_atlas import load_surface_atlas
from .surface_gifti import HEMIS, _check_hemisphere, _gifti_hemi, _load_gifti

__all__ = [
    "HEMIS",
    "FSAVERAGE_VERTICES",
    "load_surface_run",
    "surface_geometry",
    "load_surface_atlas",
    "surface_map_image",
    "write_surface_map",
    "read_surface_map",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

_CODE = {"L": 0, "R": 1}
_CIFTI_STRUCTURE = {"L": "CIFTI_STRUCTURE_CORTEX_LEFT", "R": "CIFTI_STRUCTURE_CORTEX_RIGHT"}
# vertices per hemisphere of fsaverage3, 4, 5, 6 and fsaverage
FSAVERAGE_VERTICES = (642, 2562, 10242, 40962, 163842)
_NOT_DATA_INTENTS = {
    "NIFTI_INTENT_POINTSET": "a surface mesh",
    "NIFTI_INTENT_TRIANGLE": "a surface mesh",
    "NIFTI_INTENT_LABEL": "a label (atlas) file",
}


def _not_timeseries(path: PathLike, found: str) -> DatasetError:
    return DatasetError(
        f"surface file '{path}' is not a GIfTI time series: it holds {found}; expected one "
        "data array of shape (n_vertices,) per volume or one of shape (n_vertices, "
        "n_volumes). Point the dataset at *_bold.func.gii files."
    )


def _timeseries_matrix(path: PathLike, img: Any, n_vertices: int | None) -> np.ndarray:
    """The data arrays of a GIfTI time series as an array of shape (n_volumes, n_vertices)."""
    darrays = img.darrays
    if not darrays:
        raise _not_timeseries(path, "no data array")
    from nibabel.nifti1 import intent_codes

    for darray in darrays:
        intent = intent_codes.niistring.get(darray.intent, "")
        if intent in _NOT_DATA_INTENTS:
            raise _not_timeseries(path, _NOT_DATA_INTENTS[intent])
        if darray.data.dtype.kind not in "iuf":
            raise _not_timeseries(path, f"data of type {darray.data.dtype}")
    if len(darrays) == 1 and darrays[0].data.ndim == 2:
        data = np.asarray(darrays[0].data, dtype=np.float64)
        # GIfTI puts vertices first; volumes first when the vertex count (expected, or of
        # an fsaverage mesh) says so
        known = (n_vertices,) if n_vertices is not None else FSAVERAGE_VERTICES
        if data.shape[1] in known and data.shape[0] not in known:
            logger.info("%s: one 2D data array of shape %s read as volumes x vertices", path, data.shape)
            return data
        return data.T
    shapes = sorted({darray.data.shape for darray in darrays})
    if len(shapes) != 1 or len(shapes[0]) != 1:
        raise _not_timeseries(path, f"{len(darrays)} data arrays of shapes {shapes}")
    return np.stack([np.asarray(d.data, dtype=np.float64) for d in darrays])


def _read_timeseries(path: PathLike, hemi: str, n_vertices: int | None) -> np.ndarray:
    """One hemisphere's GIfTI time series, array of shape (n_volumes, n_vertices)."""
    img = _load_gifti(path, "time series")
    _check_hemisphere(path, hemi, _gifti_hemi(img))
    data = _timeseries_matrix(path, img, n_vertices)
    if n_vertices is not None and data.shape[1] != n_vertices:
        raise DatasetError(
            f"surface file '{path}' has {data.shape[1]} vertices in hemisphere {hemi}; "
            f"expected {n_vertices} like the other runs of this dataset (one mesh, e.g. "
            "fsaverage5 = 10242). Use the same space-<mesh> for every run."
        )
    return data


def load_surface_run(
    left: PathLike, right: PathLike, n_vertices: Mapping[str, int] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one run's left and right GIfTI time series into one matrix over both hemispheres.

    Each file holds either one data array of shape (n_vertices,) per volume (fMRIPrep) or one
    data array of shape (n_vertices, n_volumes); (n_volumes, n_vertices) is accepted when the
    vertex count (``n_vertices``, or else that of an fsaverage mesh) tells the axes apart.

    Parameters
    ----------
    left, right : path-like
        ``*_hemi-L_*.func.gii`` and ``*_hemi-R_*.func.gii`` of the same run.
    n_vertices : mapping, optional
        Expected vertex count per hemisphere, ``{"L": n, "R": n}`` (from the other runs).

    Returns
    -------
    data : ndarray of shape (n_volumes, n_L + n_R), float64
        Left-hemisphere vertices first, then right.
    geometry : dict
        ``hemi`` int8 array of shape (n_L + n_R,) (0 left, 1 right), ``vertex`` int32 array of
        shape (n_L + n_R,) (vertex index in its hemisphere), ``n_vertices`` {"L": n, "R": n}.

    Raises
    ------
    DatasetError
        A file that is not a GIfTI time series or says the other hemisphere, a vertex count
        other than ``n_vertices``, or hemispheres with different numbers of volumes.
    """
    expected = dict(n_vertices or {})
    parts = {
        hemi: _read_timeseries(path, hemi, expected.get(hemi)) for hemi, path in zip(HEMIS, (left, right))
    }
    if parts["L"].shape[0] != parts["R"].shape[0]:
        raise DatasetError(
            f"surface run '{left}' has {parts['L'].shape[0]} volumes but its right hemisphere "
            f"'{right}' has {parts['R'].shape[0]}; expected the same number of volumes in both "
            "hemispheres. Pass the two hemispheres of the same run."
        )
    counts = {hemi: int(part.shape[1]) for hemi, part in parts.items()}
    logger.info("read surface run %s: %d volumes, %s vertices", left, parts["L"].shape[0], counts)
    return np.concatenate([parts["L"], parts["R"]], axis=1), surface_geometry(counts)


def surface_geometry(n_vertices: Mapping[str, int]) -> dict[str, Any]:
    """``hemi`` / ``vertex`` arrays over every vertex of both hemispheres, left first.

    Parameters
    ----------
    n_vertices : mapping
        ``{"L": n_L, "R": n_R}``.

    Returns
    -------
    geometry : dict
        ``hemi`` int8 (n_L + n_R,), ``vertex`` int32 (n_L + n_R,), ``n_vertices``.
    """
    counts = {hemi: int(n_vertices[hemi]) for hemi in HEMIS}
    hemi = np.concatenate([np.full(counts[h], _CODE[h], dtype=np.int8) for h in HEMIS])
    vertex = np.concatenate([np.arange(counts[h], dtype=np.int32) for h in HEMIS])
    return {"hemi": hemi, "vertex": vertex, "n_vertices": counts}


def _check_units(
    values: np.ndarray,
    hemi: np.ndarray,
    vertex: np.ndarray,
    n_vertices: Mapping[str, int],
    names: Sequence[str],
) -> None:
    """Raise ValueError unless the per-unit arrays describe distinct vertices of the meshes."""
    n_units = values.shape[0]
    if values.ndim != 2 or hemi.shape != (n_units,) or vertex.shape != (n_units,):
        raise ValueError(
            f"surface map values {values.shape} need hemi and vertex of shape "
            f"({n_units},); got {hemi.shape} and {vertex.shape}"
        )
    if values.shape[1] != len(names) or n_units == 0:
        raise ValueError(f"surface map {values.shape} needs one name per column; got {len(names)}")
    if not np.isin(hemi, (0, 1)).all():
        raise ValueError(f"surface map hemi codes must be 0 (left) or 1 (right); got {np.unique(hemi)}")
    limit = np.where(hemi == 0, int(n_vertices["L"]), int(n_vertices["R"]))
    if (vertex < 0).any() or (vertex >= limit).any():
        raise ValueError(f"surface map vertex indices must lie in [0, n_vertices {dict(n_vertices)})")
    if np.unique(np.stack([hemi, vertex]), axis=1).shape[1] != n_units:
        raise ValueError("surface map has the same (hemi, vertex) twice; expected one unit per vertex")


def surface_map_image(
    values: np.ndarray,
    hemi: np.ndarray,
    vertex: np.ndarray,
    n_vertices: Mapping[str, int],
    names: Sequence[str],
) -> Any:
    """A CIFTI-2 dense scalar image of per-vertex maps over both hemispheres.

    Parameters
    ----------
    values : ndarray of shape (n_units, n_maps)
        One column per map (e.g. held-out r of one layer); stored as float32.
    hemi : int ndarray of shape (n_units,)
        0 left, 1 right (the ``hemi`` array of the surface geometry).
    vertex : int ndarray of shape (n_units,)
        Vertex index of each unit in its hemisphere.
    n_vertices : mapping
        ``{"L": n, "R": n}``, the meshes' vertex counts (10242 for fsaverage5).
    names : sequence of str
        One name per map (the ScalarAxis).

    Returns
    -------
    image : nibabel.Cifti2Image
        Axes (ScalarAxis of ``names``, BrainModelAxis of CIFTI_STRUCTURE_CORTEX_LEFT then
        CIFTI_STRUCTURE_CORTEX_RIGHT with the vertices present, ascending), intent
        ConnDenseScalar; save it as ``*.dscalar.nii`` (see :func:`write_surface_map`).
    """
    from functools import reduce

    import nibabel as nib
    from nibabel.cifti2 import cifti2_axes

    values = np.asarray(values, dtype=np.float64)
    hemi, vertex = np.asarray(hemi), np.asarray(vertex)
    _check_units(values, hemi, vertex, n_vertices, names)
    order = np.lexsort((vertex, hemi))
    models = [
        cifti2_axes.BrainModelAxis.from_surface(
            vertex[order][hemi[order] == _CODE[h]], int(n_vertices[h]), _CIFTI_STRUCTURE[h]
        )
        for h in HEMIS
        if (hemi == _CODE[h]).any()
    ]
    axes = (cifti2_axes.ScalarAxis([str(name) for name in names]), reduce(lambda a, b: a + b, models))
    image = nib.Cifti2Image(values[order].T.astype(np.float32), header=axes)
    image.nifti_header.set_intent("ConnDenseScalar", name="ConnDenseScalar")
    return image


def write_surface_map(
    path: PathLike,
    values: np.ndarray,
    hemi: np.ndarray,
    vertex: np.ndarray,
    n_vertices: Mapping[str, int],
    names: Sequence[str],
) -> None:
    """Write :func:`surface_map_image` to ``path`` (``*.dscalar.nii``), atomically.

    The same inputs give the same bytes.
    """
    image = surface_map_image(values, hemi, vertex, n_vertices, names)
    with io.atomic_write(path) as tmp:
        image.to_filename(str(tmp))


def read_surface_map(path: PathLike) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read a CIFTI-2 dense scalar file back into full-length per-hemisphere maps.

    Parameters
    ----------
    path : path-like
        A ``*.dscalar.nii`` file (ours or Workbench's); brain models other than the left
        and right cortex (subcortical voxels) are skipped.

    Returns
    -------
    maps : dict of str to ndarray of shape (n_vertices_h, n_maps), float64
        ``"L"`` / ``"R"`` (each hemisphere the file holds): every vertex of the mesh, NaN
        where the file has no value.
    names : list of str
        The map names (ScalarAxis), one per column.

    Raises
    ------
    DatasetError
        A file that is not a CIFTI-2 dense scalar file with cortical surface models.
    """
    import nibabel as nib
    from nibabel.cifti2 import cifti2_axes

    try:
        image = nib.load(str(path))
        axes = [image.header.get_axis(k) for k in range(2)]
    except Exception as exc:  # not NIfTI-2, or no CIFTI extension
        raise DatasetError(
            f"surface map '{path}' is not a readable CIFTI-2 file ({type(exc).__name__}); "
            "expected a *.dscalar.nii file. Rerun the step that writes it."
        ) from None
    kinds = (cifti2_axes.ScalarAxis, cifti2_axes.BrainModelAxis)
    if not all(isinstance(axis, kind) for axis, kind in zip(axes, kinds)):
        raise DatasetError(
            f"surface map '{path}' has axes {[type(a).__name__ for a in axes]}; expected "
            "[ScalarAxis, BrainModelAxis] (a dense scalar file). Rerun the step that writes it."
        )
    data = np.asarray(image.get_fdata(dtype=np.float64))
    by_structure = {structure: hemi for hemi, structure in _CIFTI_STRUCTURE.items()}
    maps = {}
    for structure, block, model in axes[1].iter_structures():
        if structure not in by_structure:
            logger.info("%s: skipped brain model %s (not a cortical surface)", path, structure)
            continue
        full = np.full((model.nvertices[structure], data.shape[0]), np.nan)
        full[model.vertex] = data[:, block].T
        maps[by_structure[structure]] = full
    if not maps:
        raise DatasetError(
            f"surface map '{path}' has no CIFTI_STRUCTURE_CORTEX_LEFT/RIGHT surface model; "
            "expected vertex maps of both hemispheres. Use a surface (not volume) map."
        )
    return maps, [str(name) for name in axes[0].name]
