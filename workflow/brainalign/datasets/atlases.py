"""Named atlases written as the BIDS label files the readers look up.

Paper 002's ROIs (angular gyrus, posterior cingulate, middle frontal gyrus) come from the
Harvard-Oxford cortical atlas. :func:`write_harvard_oxford` reads it with nilearn
(:func:`nilearn.datasets.fetch_atlas_harvard_oxford`: FSL's files, downloaded once where
there is internet, read from nilearn's data folder offline) and writes
``space-<space>_atlas-HarvardOxford_dseg.nii.gz`` and its ``.tsv`` (``index``, ``name``)
into a dataset root, where ``dataset.atlas: HarvardOxford`` finds them; the names are the
atlas labels without non-alphanumerics (``AngularGyrus``,
``CingulateGyrusposteriordivision``, ``MiddleFrontalGyrus``), the ROI names of
``dataset.rois``.

The Harvard-Oxford atlas is defined on FSL's MNI152 template (MNI152NLin6Asym). Labelling
it with another MNI space (fMRIPrep's MNI152NLin2009cAsym) is what most studies do; the
templates differ by a few millimetres at the cortex, which a warning states.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..io import atomic_write, write_table

__all__ = ["HARVARD_OXFORD", "PAPER002_ROIS", "clean_label", "write_harvard_oxford"]

logger = logging.getLogger(__name__)

#: The atlas entity of the written files.
HARVARD_OXFORD = "HarvardOxford"
#: Paper 002's ROIs as Harvard-Oxford cortical labels (cleaned).
PAPER002_ROIS = ("AngularGyrus", "CingulateGyrusposteriordivision", "MiddleFrontalGyrus")
_NATIVE_SPACE = "MNI152NLin6Asym"


def clean_label(name: str) -> str:
    """An atlas label as a ROI name: non-alphanumerics dropped (``Angular Gyrus`` ->
    ``AngularGyrus``)."""
    return re.sub(r"[^0-9A-Za-z]", "", name)


def write_harvard_oxford(
    root: str | os.PathLike,
    space: str,
    *,
    atlas_name: str = "cort-maxprob-thr25-2mm",
    data_dir: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Write the Harvard-Oxford atlas as ``space-<space>_atlas-HarvardOxford_dseg`` files.

    Parameters
    ----------
    root : path
        The dataset root (``dataset.root``).
    space : str
        The space entity the reader looks for (``dataset.space``).
    atlas_name : str
        A maximum-probability atlas of nilearn's ``fetch_atlas_harvard_oxford``
        (``cort-maxprob-thr25-2mm``, ``cort-maxprob-thr50-1mm``...).
    data_dir : path, optional
        nilearn's data folder (default: ``$NILEARN_DATA`` or ``~/nilearn_data``).

    Returns
    -------
    image, labels : Path
        The label image (int16) and its table.

    Raises
    ------
    ValueError
        For a probabilistic atlas name, or when the files cannot be had (offline, not in
        the data folder): one line saying how to get them.
    """
    from nilearn.datasets import fetch_atlas_harvard_oxford

    if "maxprob" not in atlas_name:
        raise ValueError(
            f"'atlas_name' must be a maximum-probability Harvard-Oxford atlas (labels, not "
            f"probabilities), e.g. cort-maxprob-thr25-2mm; got {atlas_name!r}"
        )
    try:
        atlas = fetch_atlas_harvard_oxford(atlas_name, data_dir=data_dir, verbose=0)
    except Exception as err:  # nilearn raises OSError, URLError or HTTPError offline
        raise ValueError(
            f"the Harvard-Oxford atlas '{atlas_name}' is not in nilearn's data folder "
            f"({data_dir or os.environ.get('NILEARN_DATA', '~/nilearn_data')}) and cannot be "
            f"downloaded here ({type(err).__name__}); run this once where there is internet, "
            "or copy the folder fsl/data/atlases there"
        ) from None
    image = nib.load(atlas.filename) if isinstance(atlas.maps, str) else atlas.maps
    data = np.asarray(image.dataobj).astype(np.int16)
    names = [clean_label(n) for n in atlas.labels]
    present = sorted(set(np.unique(data)) - {0})
    table = pd.DataFrame({"index": present, "name": [names[i] for i in present]})
    out = Path(root) / f"space-{space}_atlas-{HARVARD_OXFORD}_dseg.nii.gz"
    with atomic_write(out) as tmp:
        nib.save(nib.Nifti1Image(data, image.affine), tmp)
    labels = out.with_name(out.name.replace(".nii.gz", ".tsv"))
    write_table(table, labels)
    if space != _NATIVE_SPACE:
        logger.warning("Harvard-Oxford is defined on %s; labelled %s here (templates differ by "
                       "a few mm at the cortex)", _NATIVE_SPACE, space)
    logger.info("Harvard-Oxford %s: %d labels -> %s", atlas_name, len(table), out)
    return out, labels
