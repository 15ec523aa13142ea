"""Named atlases: Harvard-Oxford read through nilearn from FSL's own file layout (a label
image and its XML), written as the BIDS label files the readers look up."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.atlases import PAPER002_ROIS, write_harvard_oxford

# The first labels of FSL's HarvardOxford-Cortical.xml and the three of paper 002 (FSL's
# indices are 0-based; the image holds index + 1).
LABELS = ["Frontal Pole", "Middle Frontal Gyrus", "Angular Gyrus",
          "Cingulate Gyrus, posterior division", "Occipital Pole"]


def _fsl_atlas(data_dir) -> np.ndarray:
    """FSL's layout under nilearn's data folder: fsl/data/atlases/..."""
    atlases = data_dir / "fsl" / "data" / "atlases"
    (atlases / "HarvardOxford").mkdir(parents=True)
    labels = np.zeros((10, 12, 8), dtype=np.int16)
    for k in range(len(LABELS)):
        labels[2 * k:2 * k + 2, 2:10, 1:7] = k + 1
    labels[0, 0, 0] = 0
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])  # FSL's radiological x axis
    affine[:3, 3] = [90, -126, -72]
    nib.save(nib.Nifti1Image(labels, affine),
             atlases / "HarvardOxford" / "HarvardOxford-cort-maxprob-thr25-2mm.nii.gz")
    rows = "\n".join(f'    <label index="{i}" x="0" y="0" z="0">{name}</label>'
                     for i, name in enumerate(LABELS))
    (atlases / "HarvardOxford-Cortical.xml").write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<atlas version="1.0">\n  <header>\n'
        "    <name>Harvard-Oxford Cortical Structural Atlas</name>\n  </header>\n  <data>\n"
        f"{rows}\n  </data>\n</atlas>\n")
    return labels


def test_harvard_oxford_is_written_as_bids_label_files(tmp_path):
    labels = _fsl_atlas(tmp_path / "nilearn")
    image, table = write_harvard_oxford(tmp_path / "ds", "MNI152NLin6Asym",
                                        data_dir=tmp_path / "nilearn")
    assert image.name == "space-MNI152NLin6Asym_atlas-HarvardOxford_dseg.nii.gz"
    names = pd.read_csv(table, sep="\t")
    assert set(PAPER002_ROIS) <= set(names["name"])
    assert names.set_index("name").loc["AngularGyrus", "index"] == 3
    written = nib.load(image)
    # nilearn reorders the image to a positive diagonal: same voxels in world space
    world = nib.affines.apply_affine(written.affine, np.argwhere(np.asarray(written.dataobj) == 3))
    expected = nib.affines.apply_affine(
        np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]]),
        np.argwhere(labels == 3))
    assert sorted(map(tuple, world)) == sorted(map(tuple, expected))


def test_harvard_oxford_offline_without_files_says_how_to_get_them(tmp_path, monkeypatch):
    import nilearn.datasets._utils as utils

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(utils, "fetch_single_file", offline)
    with pytest.raises(ValueError, match=r"^the Harvard-Oxford atlas 'cort-maxprob-thr25-2mm' is "
                       r"not in nilearn's data folder .* run this once where there is internet"):
        write_harvard_oxford(tmp_path / "ds", "MNI152NLin6Asym", data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="must be a maximum-probability Harvard-Oxford atlas"):
        write_harvard_oxford(tmp_path / "ds", "MNI152NLin6Asym", atlas_name="cort-prob-2mm")
