"""The demo brain: nilearn's MNI152 brain mask on a coarse grid, and a four-ROI atlas.

ROIs are spheres around MNI coordinates: ``language`` (left inferior frontal gyrus and left
posterior temporal cortex), ``visual`` (left and right occipital pole), ``control`` (right
precentral gyrus, motor cortex) and ``auditory`` (left and right Heschl's gyrus / superior
temporal gyrus; driven only when a config plants it from audio features, else noise). Labels are written in registry order without overwriting,
so overlapping spheres keep the first label.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from ._checks import check_positive_float

__all__ = ["ROI_SPHERES", "ROI_RADIUS_MM", "make_demo_brain"]

logger = logging.getLogger(__name__)

#: name -> (atlas index, sphere centres in MNI mm)
ROI_SPHERES: dict[str, tuple[int, tuple[tuple[float, float, float], ...]]] = {
    "language": (1, ((-50.0, 22.0, 8.0), (-56.0, -44.0, 6.0))),
    "visual": (2, ((-18.0, -92.0, 2.0), (18.0, -92.0, 2.0))),
    "control": (3, ((38.0, -22.0, 56.0),)),
    "auditory": (4, ((-54.0, -14.0, 8.0), (54.0, -14.0, 8.0))),
}
ROI_RADIUS_MM = 14.0


def _coarse_grid(mask_2mm, voxel_size: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An axis-aligned affine and shape covering the brain's bounding box plus one voxel."""
    ijk = np.argwhere(np.asarray(mask_2mm.dataobj) > 0)
    corners = np.array([ijk.min(axis=0), ijk.max(axis=0)], dtype=float)
    world = corners @ mask_2mm.affine[:3, :3].T + mask_2mm.affine[:3, 3]
    low, high = world.min(axis=0) - voxel_size, world.max(axis=0) + voxel_size
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = low
    shape = tuple(int(n) for n in np.ceil((high - low) / voxel_size).astype(int) + 1)
    return affine, shape


def _world_coordinates(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Array of shape (*shape, 3): the MNI coordinate of every voxel centre."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return grid @ affine[:3, :3].T + affine[:3, 3]


def _paint_spheres(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """int16 label volume: ROI spheres inside the mask, 0 elsewhere."""
    xyz = _world_coordinates(affine, mask.shape)
    labels = np.zeros(mask.shape, dtype=np.int16)
    for name, (index, centres) in ROI_SPHERES.items():
        for centre in centres:
            inside = np.linalg.norm(xyz - np.asarray(centre), axis=-1) <= ROI_RADIUS_MM
            labels[inside & mask & (labels == 0)] = index
        n_voxels = int((labels == index).sum())
        if n_voxels == 0:
            raise ValueError(
                f"demo ROI '{name}' has no voxel at this voxel size; got {n_voxels} voxels. "
                "Use a smaller 'voxel_size' (at most 10 mm)."
            )
        logger.info("demo atlas ROI %s (index %d): %d voxels", name, index, n_voxels)
    return labels


def _nifti(data: np.ndarray, affine: np.ndarray):
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=4)
    img.set_qform(affine, code=4)
    img.header.set_xyzt_units("mm", "sec")
    return img


def make_demo_brain(voxel_size: float = 8.0) -> tuple[Any, Any, dict[str, int]]:
    """Brain mask and ROI atlas on an isotropic ``voxel_size`` grid in MNI space.

    Parameters
    ----------
    voxel_size : float
        Voxel side in mm.

    Returns
    -------
    mask_img : Nifti1Image
        uint8 0/1 brain mask (nilearn's MNI152 mask, linearly resampled, thresholded at 0.5).
    atlas_img : Nifti1Image
        int16 labels on the same grid, 0 = no ROI.
    rois : dict of str to int
        ROI name -> atlas index.
    """
    import nibabel as nib
    from nilearn import datasets, image

    voxel_size = check_positive_float("voxel_size", voxel_size)
    mni = datasets.load_mni152_brain_mask(resolution=2)
    mni = nib.Nifti1Image(np.asarray(mni.dataobj, dtype=np.float32), mni.affine)
    affine, shape = _coarse_grid(mni, voxel_size)
    with warnings.catch_warnings():  # linear on purpose: partial volume, thresholded below
        warnings.filterwarnings("ignore", message="Resampling binary images", category=UserWarning)
        resampled = image.resample_img(
            mni,
            target_affine=affine,
            target_shape=shape,
            interpolation="linear",
            force_resample=True,
            copy_header=True,
        )
    mask = np.asarray(resampled.get_fdata()) >= 0.5
    labels = _paint_spheres(mask, affine)
    logger.info("demo brain: %s grid at %.1f mm, %d brain voxels", shape, voxel_size, mask.sum())
    rois = {name: index for name, (index, _) in ROI_SPHERES.items()}
    return _nifti(mask.astype(np.uint8), affine), _nifti(labels, affine), rois
