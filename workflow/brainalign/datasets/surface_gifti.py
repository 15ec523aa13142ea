"""GIfTI files of one hemisphere: loaded with one-line errors, and the hemisphere they declare.

Shared by the time-series reader (:mod:`brainalign.datasets.surface`) and the surface atlas
reader (:mod:`brainalign.datasets.surface_atlas`): a file declares its hemisphere by its name
(BIDS ``hemi-L`` / ``hemi-R``, FreeSurfer ``lh.`` / ``rh.``) or by its GIfTI
``AnatomicalStructurePrimary`` metadata, and either must agree with the hemisphere it is given as.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .registry import DatasetError

__all__ = ["HEMIS"]

PathLike = str | os.PathLike

HEMIS = ("L", "R")
_GIFTI_STRUCTURE = {"CortexLeft": "L", "CortexRight": "R"}


def _hemi_of_name(path: PathLike) -> str | None:
    """Hemisphere a file name declares: BIDS ``hemi-L`` / ``hemi-R``, FreeSurfer ``lh.`` / ``rh.``."""
    name = Path(path).name
    entity = re.search(r"(?:^|_)hemi-([LR])(?:_|\.)", name)
    if entity:
        return entity.group(1)
    prefix = re.match(r"([lr])h\.", name)
    return prefix.group(1).upper() if prefix else None


def _check_hemisphere(path: PathLike, hemi: str, declared: str | None) -> None:
    """Raise when the file name or the GIfTI metadata says the other hemisphere."""
    for found in (_hemi_of_name(path), declared):
        if found is not None and found != hemi:
            raise DatasetError(
                f"surface file '{path}' holds hemisphere {found} but was given as hemisphere "
                f"{hemi}; expected a hemi-{hemi} file. Swap the left and right files."
            )


def _load_gifti(path: PathLike, what: str) -> Any:
    """Load a GIfTI image, turning any failure into a one-line :class:`DatasetError`."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for a wrong or broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(
            f"surface file '{path}' is not a readable GIfTI {what} ({reason}); expected a "
            f"*.gii file as fMRIPrep writes it. Check the path and the file."
        ) from None
    if not isinstance(img, nib.gifti.GiftiImage):
        raise DatasetError(
            f"surface file '{path}' is a {type(img).__name__}, not a GIfTI {what}; expected a "
            f"*.gii file. Point the dataset at the surface outputs (*.func.gii)."
        )
    return img


def _gifti_hemi(img: Any) -> str | None:
    """Hemisphere from GIfTI ``AnatomicalStructurePrimary`` metadata, when present."""
    for meta in [img.meta, *(darray.meta for darray in img.darrays)]:
        structure = dict(meta or {}).get("AnatomicalStructurePrimary")
        if structure in _GIFTI_STRUCTURE:
            return _GIFTI_STRUCTURE[structure]
    return None
