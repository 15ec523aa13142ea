"""Surface atlases: ROI membership over both hemispheres from ``.annot`` or label GIfTI files.

FreeSurfer ``lh.*.annot`` / ``rh.*.annot`` files or label GIfTI files
(``hemi-L_space-fsaverage5_atlas-X_dseg.label.gii``) with their label table; ROIs are the
atlas' own label names, ``L_<name>`` / ``R_<name>`` for one hemisphere.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .registry import DatasetError
from .surface_gifti import HEMIS, _check_hemisphere, _gifti_hemi, _load_gifti

__all__ = ["load_surface_atlas"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def _read_annot(path: PathLike, hemi: str) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Per-vertex label codes and the name -> codes table of a FreeSurfer ``.annot`` file."""
    from nibabel.freesurfer import read_annot

    _check_hemisphere(path, hemi, None)
    try:
        codes, _, names = read_annot(str(path))
    except Exception as exc:  # a wrong file fails in many ways inside read_annot
        raise DatasetError(
            f"surface atlas '{path}' is not a readable FreeSurfer .annot file "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); expected "
            "lh.<atlas>.annot / rh.<atlas>.annot as FreeSurfer writes them. Check the file."
        ) from None
    text = [name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name) for name in names]
    return np.asarray(codes), _name_table(zip(text, range(len(text))))


def _read_label_gifti(path: PathLike, hemi: str) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Per-vertex label keys and the name -> keys table of a label GIfTI file."""
    img = _load_gifti(path, "label file")
    _check_hemisphere(path, hemi, _gifti_hemi(img))
    labels = img.labeltable.labels if img.labeltable is not None else []
    shapes = [darray.data.shape for darray in img.darrays]
    integer = len(shapes) == 1 and img.darrays[0].data.dtype.kind in "iu"
    if not integer or len(shapes[0]) != 1 or not labels:
        raise DatasetError(
            f"surface atlas '{path}' is not a label GIfTI: it holds data arrays of shapes "
            f"{shapes} and {len(labels)} table labels; expected one integer array of shape "
            "(n_vertices,) and a label table (*_dseg.label.gii). Check the atlas file."
        )
    table = _name_table((str(label.label), int(label.key)) for label in labels)
    return np.asarray(img.darrays[0].data), table


def _name_table(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """Label name -> the codes that carry it (a name may recur)."""
    table: dict[str, list[int]] = {}
    for name, code in pairs:
        table.setdefault(name, []).append(code)
    return table


def _read_atlas(path: PathLike, hemi: str) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Dispatch on the file type: ``.annot`` or label GIfTI (``.gii``)."""
    name = Path(path).name
    if name.endswith(".annot"):
        return _read_annot(path, hemi)
    elif name.endswith(".gii"):
        return _read_label_gifti(path, hemi)
    else:
        raise DatasetError(
            f"surface atlas '{path}' is neither a FreeSurfer .annot file nor a label GIfTI; "
            "expected lh./rh.<atlas>.annot or *_hemi-{L,R}_*_dseg.label.gii. Fix the atlas path."
        )


def _close_names(name: str, offered: Sequence[str]) -> list[str]:
    """At most 3 offered names close to ``name`` ignoring case (difflib), closest first."""
    lower = {candidate.lower(): candidate for candidate in offered}
    return [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)]


def _roi_codes(
    roi: str, tables: Mapping[str, Mapping[str, list[int]]], files: Mapping[str, PathLike]
) -> dict[str, list[int]]:
    """Label codes of ``roi`` per hemisphere: its own name in either, or ``L_`` / ``R_`` + name."""
    literal = {hemi: list(tables[hemi][roi]) for hemi in HEMIS if roi in tables[hemi]}
    if literal:
        return literal
    prefixed = re.fullmatch(r"([LR])_(.+)", roi)
    if prefixed and prefixed.group(2) in tables[prefixed.group(1)]:
        return {prefixed.group(1): list(tables[prefixed.group(1)][prefixed.group(2)])}
    offered = sorted(set(tables["L"]) | set(tables["R"]))
    one_hemi = [f"{hemi}_{name}" for hemi in HEMIS for name in sorted(tables[hemi])]
    close = _close_names(roi, offered + one_hemi)
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?"
    else:
        more = " ..." if len(offered) > 8 else ""
        hint = f"it has {', '.join(offered[:8])}{more} ({len(offered)} names)."
    raise DatasetError(
        f"ROI '{roi}' is not in the surface atlas '{files['L']}' / '{files['R']}'; expected a "
        f"label name of the atlas, or L_<name> / R_<name> for one hemisphere; {hint} "
        "Fix 'dataset.rois' in the config."
    )


def load_surface_atlas(
    files: Mapping[str, PathLike],
    rois: Sequence[str],
    n_vertices: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Vertex membership of each requested ROI of a two-hemisphere surface atlas.

    ROI names are the atlas' own label names (the ``.annot`` names or the label GIfTI's
    label table). A name present in both hemispheres selects the union of both; a name
    absent from the atlas but written ``L_<name>`` or ``R_<name>`` selects ``<name>`` in
    that hemisphere only (a label literally called ``L_<name>`` wins).

    Parameters
    ----------
    files : mapping
        ``{"L": path, "R": path}``: ``lh.X.annot`` / ``rh.X.annot`` or
        ``*_hemi-L_*_dseg.label.gii`` / ``*_hemi-R_*_dseg.label.gii``.
    rois : sequence of str
        ROI names, in the order the membership is returned.
    n_vertices : mapping, optional
        Expected vertex count per hemisphere, ``{"L": n, "R": n}`` (from the time series).

    Returns
    -------
    sets : dict of str to bool ndarray of shape (n_L + n_R,)
        Membership over the left then the right hemisphere's vertices, in ``rois`` order;
        ready for :func:`brainalign.datasets.units.roi_masks_from_sets`.

    Raises
    ------
    DatasetError
        A missing hemisphere, an unreadable or wrong file, a vertex count other than
        ``n_vertices``, an unknown ROI (close matches listed) or one with no vertex.
    """
    missing = [hemi for hemi in HEMIS if hemi not in files]
    if missing:
        raise DatasetError(
            f"surface atlas {dict(files)} lacks hemisphere {', '.join(missing)}; expected "
            "files for 'L' and 'R'. Give the lh./rh. (hemi-L/hemi-R) pair."
        )
    atlases = {hemi: _read_atlas(files[hemi], hemi) for hemi in HEMIS}
    for hemi, (codes, _) in atlases.items():
        if n_vertices is not None and codes.shape[0] != int(n_vertices[hemi]):
            raise DatasetError(
                f"surface atlas '{files[hemi]}' labels {codes.shape[0]} vertices in hemisphere "
                f"{hemi}; expected {int(n_vertices[hemi])} like the time series. Use the atlas "
                "on the same mesh (space-<mesh>) as the BOLD runs."
            )
    tables = {hemi: table for hemi, (_, table) in atlases.items()}
    sets = {}
    for roi in rois:
        picks = _roi_codes(roi, tables, files)
        sets[roi] = np.concatenate([np.isin(atlases[h][0], picks.get(h, [])) for h in HEMIS])
        if not sets[roi].any():
            raise DatasetError(
                f"ROI '{roi}' is in the label table of '{files['L']}' / '{files['R']}' but "
                "labels no vertex; expected at least one. Remove it from 'dataset.rois'."
            )
    logger.info("surface atlas ROIs (vertices): %s", {roi: int(m.sum()) for roi, m in sets.items()})
    return sets
