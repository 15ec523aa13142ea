"""Where each channel is: coordinates (bipolar midpoints) and region names.

A channel's region comes from a column of ``_electrodes.tsv`` (``dataset.region_column``,
e.g. ``desikan_killiany``) when given, else from a NIfTI label atlas (``dataset.atlas``: a
``.nii.gz`` with its ``.tsv`` of ``index`` / ``name`` beside it, the convention of
:func:`brainalign.preprocess.load_atlas`) looked up at the channel's coordinates in mm
(nearest voxel through the atlas affine; a point outside the grid or in label 0 gets '').
A bipolar channel ``LA1-LA2`` sits at the midpoint of its two contacts; with a region
column it takes its first contact's region (the two differ rarely; such channels are
counted in the log).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..datasets.registry import DatasetError

__all__ = [
    "channel_contacts",
    "read_electrodes",
    "channel_xyz",
    "atlas_regions",
    "channel_regions",
]

logger = logging.getLogger(__name__)

_TO_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0}


def channel_contacts(channel: str) -> list[str]:
    """The contacts a channel is made of: ``'LA1-LA2'`` -> ``['LA1', 'LA2']``."""
    return channel.split("-") if "-" in channel else [channel]


def read_electrodes(electrodes_file: str, coordsystem_file: str | None = None):
    """``_electrodes.tsv`` with x, y, z in mm, and its coordinate space.

    Returns
    -------
    table : DataFrame
        Indexed by ``name``; columns ``x``, ``y``, ``z`` in mm and any others (regions).
    space : str
        ``iEEGCoordinateSystem`` of ``_coordsystem.json`` (else ``unknown``).
    """
    import json

    import pandas as pd

    table = pd.read_csv(electrodes_file, sep="\t", na_values=["n/a"], keep_default_na=False)
    missing = [c for c in ("name", "x", "y", "z") if c not in table.columns]
    if missing:
        raise DatasetError(
            f"electrodes '{electrodes_file}' lacks columns {missing}; expected name, x, y, z "
            "(BIDS iEEG). Fix the file."
        )
    meta = {}
    if coordsystem_file and os.path.isfile(coordsystem_file):
        with open(coordsystem_file) as handle:
            meta = json.load(handle)
    unit = meta.get("iEEGCoordinateUnits", "mm")
    if unit not in _TO_MM:
        raise DatasetError(
            f"coordsystem '{coordsystem_file}' has iEEGCoordinateUnits {unit!r}; expected m, "
            "cm or mm. Fix the file."
        )
    table[["x", "y", "z"]] = table[["x", "y", "z"]].astype(float) * _TO_MM[unit]
    table["name"] = table["name"].astype(str)
    return table.set_index("name"), str(meta.get("iEEGCoordinateSystem", "unknown"))


def channel_xyz(channels: Sequence[str], contacts_xyz: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Coordinates of channels: a contact's own, a bipolar channel's midpoint.

    Returns
    -------
    xyz : float array of shape (n_channels, 3)
    """
    out = np.empty((len(channels), 3))
    for k, channel in enumerate(channels):
        out[k] = np.mean([np.asarray(contacts_xyz[c], float) for c in channel_contacts(channel)],
                         axis=0)
    return out


def _atlas_labels(labels_file: str) -> dict[int, str]:
    import pandas as pd

    table = pd.read_csv(labels_file, sep="\t")
    if not {"index", "name"} <= set(table.columns):
        raise DatasetError(
            f"atlas labels '{labels_file}' has columns {list(table.columns)}; expected index "
            "and name. Fix the file."
        )
    return {int(i): str(n) for i, n in zip(table["index"], table["name"])}


def atlas_regions(xyz_mm: np.ndarray, atlas_file: str) -> list[str]:
    """Region names at points, from a NIfTI label atlas (nearest voxel).

    Parameters
    ----------
    xyz_mm : array of shape (n_points, 3)
        Coordinates in mm in the atlas' space.
    atlas_file : str
        Integer label image; its labels table is the same name with ``.tsv``.

    Returns
    -------
    regions : list of str, length n_points ('' outside every label)
    """
    import nibabel as nib

    labels_file = re.sub(r"\.nii(\.gz)?$", ".tsv", str(atlas_file))
    if not os.path.isfile(labels_file):
        raise DatasetError(
            f"atlas labels missing: expected '{labels_file}' (columns index, name) beside "
            f"config 'dataset.atlas' '{atlas_file}'. Write the labels table."
        )
    names = _atlas_labels(labels_file)
    image = nib.load(str(atlas_file))
    grid = np.rint(np.asarray(image.dataobj)).astype(np.int64)
    points = np.c_[np.asarray(xyz_mm, float).reshape(-1, 3), np.ones(len(xyz_mm))]
    ijk = np.rint(points @ np.linalg.inv(image.affine).T)[:, :3].astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.array(grid.shape[:3])), axis=1)
    out = []
    for point, ok in zip(ijk, inside):
        label = int(grid[tuple(point)]) if ok else 0
        out.append(names.get(label, "") if label else "")
    return out


def channel_regions(
    channels: Sequence[str],
    electrodes,
    region_column: str | None = None,
    atlas: str | None = None,
    where: str = "_electrodes.tsv",
) -> list[str]:
    """The region of each channel (see the module docstring).

    Parameters
    ----------
    channels : sequence of str
        Channel names after re-referencing.
    electrodes : DataFrame
        :func:`read_electrodes`' table (indexed by contact name, x, y, z in mm).
    region_column : str or None
        Column of ``electrodes`` naming each contact's region.
    atlas : str or None
        NIfTI label atlas, used when ``region_column`` is None.
    where : str
        The electrodes file, quoted in messages.

    Returns
    -------
    regions : list of str ('' when unknown, or when neither source is given)
    """
    if region_column:
        if region_column not in electrodes.columns:
            raise DatasetError(
                f"electrodes '{where}' has no column '{region_column}' (config "
                f"'dataset.region_column'); found {list(electrodes.columns)}. Fix the config."
            )
        column = electrodes[region_column].fillna("").astype(str)
        pairs = [[column[c] for c in channel_contacts(ch)] for ch in channels]
        mixed = sum(len(set(p)) > 1 for p in pairs)
        if mixed:
            logger.info("%d channels join contacts of two regions; each takes its first "
                        "contact's region", mixed)
        return [p[0] for p in pairs]
    if atlas:
        xyz = channel_xyz(channels, {n: electrodes.loc[n, ["x", "y", "z"]] for n in
                                     {c for ch in channels for c in channel_contacts(ch)}})
        return atlas_regions(xyz, atlas)
    return [""] * len(channels)
