"""fsaverage surfaces: GIfTI time series, .annot / label GIfTI atlases, CIFTI-2 maps, figures.

Every file is written here in its real format (nibabel GIfTI, FreeSurfer .annot, CIFTI-2) on
a fake mesh of 11 left and 13 right vertices, and on fsaverage5 for the figure.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiLabel, GiftiLabelTable

from brainalign.datasets.registry import DatasetError
from brainalign.datasets.surface import (
    load_surface_atlas,
    load_surface_run,
    read_surface_map,
    surface_geometry,
    surface_map_image,
    write_surface_map,
)
from brainalign.datasets.units import roi_masks_from_sets

N = {"L": 11, "R": 13}
N_VOLUMES = 20
STRUCTURE = {"L": "CortexLeft", "R": "CortexRight"}


def _bold_name(hemi: str) -> str:
    return f"sub-01_ses-1_task-movie_run-2_hemi-{hemi}_space-fsaverage5_bold.func.gii"


def write_func_gii(
    path: Path, data: np.ndarray, layout: str = "arrays", structure: str | None = None
) -> Path:
    """A GIfTI time series of ``data`` (n_volumes, n_vertices): one array per volume, or one 2D."""
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure}) if structure else None
    if layout == "arrays":  # fMRIPrep
        darrays = [GiftiDataArray(row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES") for row in data]
    elif layout == "matrix":  # vertices first, as GIfTI orders dimensions
        darrays = [GiftiDataArray(np.ascontiguousarray(data.T, dtype=np.float32))]
    else:  # volumes first
        darrays = [GiftiDataArray(np.ascontiguousarray(data, dtype=np.float32))]
    GiftiImage(darrays=darrays, meta=meta).to_filename(str(path))
    return path


@pytest.fixture
def planted() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {hemi: rng.normal(size=(N_VOLUMES, n)).astype(np.float32) for hemi, n in N.items()}


def _run(tmp_path: Path, planted: dict, layout: str = "arrays") -> tuple[Path, Path]:
    return tuple(
        write_func_gii(tmp_path / _bold_name(hemi), planted[hemi], layout, STRUCTURE[hemi]) for hemi in N
    )


@pytest.mark.parametrize("layout", ["arrays", "matrix"])
def test_run_recovers_planted_values_left_then_right(tmp_path, planted, layout):
    data, geometry = load_surface_run(*_run(tmp_path, planted, layout), n_vertices=N)
    assert data.dtype == np.float64 and data.shape == (N_VOLUMES, 24)
    np.testing.assert_array_equal(data[:, :11], planted["L"])
    np.testing.assert_array_equal(data[:, 11:], planted["R"])
    assert geometry["hemi"].dtype == np.int8 and geometry["vertex"].dtype == np.int32
    np.testing.assert_array_equal(geometry["hemi"], [0] * 11 + [1] * 13)
    np.testing.assert_array_equal(geometry["vertex"], [*range(11), *range(13)])
    assert geometry["n_vertices"] == N


def test_run_accepts_a_volumes_first_matrix_when_the_vertex_count_tells(tmp_path, planted):
    data, _ = load_surface_run(*_run(tmp_path, planted, "volumes_first"), n_vertices=N)
    np.testing.assert_array_equal(data[:, 11:], planted["R"])


def test_run_with_different_volume_counts_per_hemisphere(tmp_path, planted):
    left, _ = _run(tmp_path, planted)
    right = write_func_gii(tmp_path / _bold_name("R"), planted["R"][:19])
    with pytest.raises(
        DatasetError,
        match=r"has 20 volumes but its right hemisphere '.*hemi-R.*' has 19; "
        r"expected the same number .* Pass the two hemispheres of the same run\.$",
    ):
        load_surface_run(left, right)


def test_run_vertex_count_other_than_the_other_runs(tmp_path, planted):
    with pytest.raises(
        DatasetError,
        match=r"hemi-L_space-fsaverage5_bold\.func\.gii' has 11 vertices in "
        r"hemisphere L; expected 12 like the other runs",
    ):
        load_surface_run(*_run(tmp_path, planted), n_vertices={"L": 12, "R": 13})


def test_run_file_that_is_not_gifti(tmp_path, planted):
    _, right = _run(tmp_path, planted)
    left = tmp_path / "sub-01_hemi-L_bold.func.gii"
    left.write_text("not a gifti\n")
    with pytest.raises(
        DatasetError,
        match=r"^surface file '.*hemi-L_bold\.func\.gii' is not a readable GIfTI "
        r"time series \(.*\); expected a \*\.gii file",
    ):
        load_surface_run(left, right)


def test_run_file_that_is_a_mesh_not_a_time_series(tmp_path, planted):
    _, right = _run(tmp_path, planted)
    mesh = tmp_path / "sub-01_hemi-L_inflated.surf.gii"
    GiftiImage(
        darrays=[
            GiftiDataArray(np.zeros((11, 3), np.float32), intent="NIFTI_INTENT_POINTSET"),
            GiftiDataArray(np.zeros((5, 3), np.int32), intent="NIFTI_INTENT_TRIANGLE"),
        ]
    ).to_filename(str(mesh))
    with pytest.raises(
        DatasetError,
        match=r"is not a GIfTI time series: it holds a surface mesh; expected one "
        r"data array .* Point the dataset at \*_bold\.func\.gii files\.$",
    ):
        load_surface_run(mesh, right)


def test_run_arrays_of_different_lengths(tmp_path, planted):
    _, right = _run(tmp_path, planted)
    left = tmp_path / "left.func.gii"
    GiftiImage(
        darrays=[GiftiDataArray(np.zeros(11, np.float32)), GiftiDataArray(np.zeros(12, np.float32))]
    ).to_filename(str(left))
    with pytest.raises(DatasetError, match=r"it holds 2 data arrays of shapes \[\(11,\), \(12,\)\]"):
        load_surface_run(left, right)


def test_run_swapped_hemispheres_by_name_and_by_metadata(tmp_path, planted):
    left, right = _run(tmp_path, planted)
    with pytest.raises(
        DatasetError,
        match=r"hemi-R_space-fsaverage5_bold\.func\.gii' holds hemisphere R but "
        r"was given as hemisphere L; expected a hemi-L file\. Swap",
    ):
        load_surface_run(right, left)
    unnamed = write_func_gii(tmp_path / "left.func.gii", planted["R"], structure="CortexRight")
    with pytest.raises(
        DatasetError, match=r"'.*left\.func\.gii' holds hemisphere R but was given as hemisphere L"
    ):
        load_surface_run(unnamed, right)


# ----- atlases -----------------------------------------------------------------------------

# label of each vertex: names index; "V1" in both hemispheres, "MT" left only, "FEF" right only
ANNOT = {"L": ["unknown", "V1", "MT", "empty"], "R": ["unknown", "V1", "FEF", "L_V1"]}
CODES = {
    "L": np.array([0, 1, 1, 2, 2, 2, 0, 1, 0, 0, 2]),
    "R": np.array([1, 1, 0, 0, 2, 2, 3, 0, 1, 0, 0, 2, 0]),
}


def _ctab(n: int) -> np.ndarray:
    return np.array([[20 * k, 255 - 20 * k, 7 * k, 0] for k in range(n)], dtype=np.int32)


def write_annots(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for hemi, fs in (("L", "lh"), ("R", "rh")):
        paths[hemi] = tmp_path / f"{fs}.test.annot"
        nib.freesurfer.write_annot(str(paths[hemi]), CODES[hemi], _ctab(len(ANNOT[hemi])), ANNOT[hemi])
    return paths


def write_label_giftis(tmp_path: Path) -> dict[str, Path]:
    """The same atlas as label GIfTI; keys are not the table positions (10, 20, ...)."""
    paths = {}
    for hemi in N:
        table = GiftiLabelTable()
        for k, name in enumerate(ANNOT[hemi]):
            label = GiftiLabel(key=10 * k, red=0.1 * k, green=0.5, blue=0.5, alpha=1.0)
            label.label = name
            table.labels.append(label)
        darray = GiftiDataArray((10 * CODES[hemi]).astype(np.int32), intent="NIFTI_INTENT_LABEL")
        paths[hemi] = tmp_path / f"hemi-{hemi}_space-fsaverage5_atlas-test_dseg.label.gii"
        GiftiImage(
            darrays=[darray],
            labeltable=table,
            meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": STRUCTURE[hemi]}),
        ).to_filename(str(paths[hemi]))
    return paths


@pytest.fixture(params=["annot", "label_gii"])
def atlas(request, tmp_path) -> dict[str, Path]:
    return write_annots(tmp_path) if request.param == "annot" else write_label_giftis(tmp_path)


def _expected(hemis_names: dict[str, str]) -> np.ndarray:
    """Membership over 11 + 13 vertices of label ``name`` in each listed hemisphere."""
    parts = []
    for hemi in ("L", "R"):
        name = hemis_names.get(hemi)
        parts.append(CODES[hemi] == ANNOT[hemi].index(name) if name else np.zeros(N[hemi], bool))
    return np.concatenate(parts)


def test_atlas_membership_union_one_hemisphere_and_prefix(atlas):
    sets = load_surface_atlas(atlas, ["MT", "V1", "FEF", "R_V1", "L_V1"], n_vertices=N)
    assert list(sets) == ["MT", "V1", "FEF", "R_V1", "L_V1"]
    assert all(mask.dtype == bool and mask.shape == (24,) for mask in sets.values())
    np.testing.assert_array_equal(sets["MT"], _expected({"L": "MT"}))
    np.testing.assert_array_equal(sets["V1"], _expected({"L": "V1", "R": "V1"}))
    np.testing.assert_array_equal(sets["FEF"], _expected({"R": "FEF"}))
    np.testing.assert_array_equal(sets["R_V1"], _expected({"R": "V1"}))
    # a label literally named "L_V1" (right hemisphere here) wins over the prefix rule
    np.testing.assert_array_equal(sets["L_V1"], _expected({"R": "L_V1"}))
    assert sets["V1"].sum() == 3 + 3


def test_atlas_sets_feed_the_labelled_representation(atlas):
    arrays, meta = roi_masks_from_sets(load_surface_atlas(atlas, ["V1", "R_V1", "MT"]), 24)
    assert meta["rois"] == {"V1": 1, "R_V1": 2, "MT": 3} and meta["roi_names"] == ["V1", "R_V1", "MT"]
    np.testing.assert_array_equal(arrays["roi"] == 3, _expected({"L": "MT"}))


def test_atlas_unknown_roi_lists_close_matches(atlas):
    with pytest.raises(
        DatasetError,
        match=r"^ROI 'v1' is not in the surface atlas '.*' / '.*'; expected a label "
        r"name of the atlas, or L_<name> / R_<name> for one hemisphere; did "
        r"you mean 'V1', .*\? Fix 'dataset.rois' in the config\.$",
    ):
        load_surface_atlas(atlas, ["V1", "v1"])
    with pytest.raises(DatasetError, match=r"; it has FEF, L_V1, MT, V1, empty, unknown \(6 names\)\. Fix"):
        load_surface_atlas(atlas, ["angular gyrus"])


def test_atlas_roi_without_vertices(atlas):
    with pytest.raises(
        DatasetError,
        match=r"^ROI 'empty' is in the label table of .* but labels no vertex; "
        r"expected at least one\. Remove it from 'dataset.rois'\.$",
    ):
        load_surface_atlas(atlas, ["empty"])


def test_atlas_on_another_mesh(atlas):
    with pytest.raises(
        DatasetError,
        match=r"^surface atlas '.*' labels 13 vertices in hemisphere R; expected "
        r"10242 like the time series\. Use the atlas on the same mesh",
    ):
        load_surface_atlas(atlas, ["V1"], n_vertices={"L": 11, "R": 10242})


def test_atlas_bad_files(tmp_path):
    annots = write_annots(tmp_path)
    with pytest.raises(DatasetError, match=r"lacks hemisphere R; expected files for 'L' and 'R'"):
        load_surface_atlas({"L": annots["L"]}, ["V1"])
    with pytest.raises(
        DatasetError, match=r"'.*rh\.test\.annot' holds hemisphere R but was given as hemisphere L"
    ):
        load_surface_atlas({"L": annots["R"], "R": annots["L"]}, ["V1"])
    nifti = tmp_path / "atlas.nii.gz"
    with pytest.raises(
        DatasetError, match=r"'.*atlas\.nii\.gz' is neither a FreeSurfer \.annot file nor a label GIfTI"
    ):
        load_surface_atlas({"L": annots["L"], "R": nifti}, ["V1"])
    broken = tmp_path / "rh.broken.annot"
    broken.write_bytes(b"\x00\x01")
    with pytest.raises(
        DatasetError, match=r"'.*rh\.broken\.annot' is not a readable FreeSurfer \.annot file"
    ):
        load_surface_atlas({"L": annots["L"], "R": broken}, ["V1"])
    func = write_func_gii(tmp_path / "hemi-R_bold.func.gii", np.zeros((3, 13)))
    with pytest.raises(
        DatasetError,
        match=r"hemi-R_bold\.func\.gii' is not a label GIfTI: it holds data arrays of "
        r"shapes \[\(13,\), \(13,\), \(13,\)\] and 0 table labels",
    ):
        load_surface_atlas({"L": annots["L"], "R": func}, ["V1"])


# ----- CIFTI-2 maps ------------------------------------------------------------------------


def _units() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Some vertices of each hemisphere, shuffled; values identify (hemi, vertex, map)."""
    rng = np.random.default_rng(1)
    hemi = np.array([0] * 7 + [1] * 9, dtype=np.int8)
    vertex = np.concatenate([rng.choice(11, 7, replace=False), rng.choice(13, 9, replace=False)]).astype(
        np.int32
    )
    order = rng.permutation(16)
    hemi, vertex = hemi[order], vertex[order]
    values = (100 * hemi + vertex)[:, None] + np.array([0.25, 0.5, -0.75])
    return values, hemi, vertex


def test_map_roundtrip_lands_on_the_planted_vertices(tmp_path):
    values, hemi, vertex = _units()
    path = tmp_path / "sub-01_desc-r_bold.dscalar.nii"
    write_surface_map(path, values, hemi, vertex, N, ["layer-2", "layer-4", "layer-6"])
    maps, names = read_surface_map(path)
    assert names == ["layer-2", "layer-4", "layer-6"]
    assert maps["L"].shape == (11, 3) and maps["R"].shape == (13, 3)
    for code, side in ((0, "L"), (1, "R")):
        present = vertex[hemi == code]
        np.testing.assert_array_equal(maps[side][present], values[hemi == code])
        absent = np.setdiff1d(np.arange(N[side]), present)
        assert np.isnan(maps[side][absent]).all() and absent.size > 0


def test_map_file_is_a_workbench_dense_scalar_and_deterministic(tmp_path):
    values, hemi, vertex = _units()
    first, second = tmp_path / "a.dscalar.nii", tmp_path / "b" / "a.dscalar.nii"
    for path in (first, second):
        write_surface_map(path, values, hemi, vertex, N, ["x", "y", "z"])
    assert first.read_bytes() == second.read_bytes()
    image = nib.load(str(first))
    assert isinstance(image, nib.Cifti2Image)
    assert image.nifti_header.get_intent()[0] == "ConnDenseScalar"  # code 3006
    assert int(image.nifti_header["intent_code"]) == 3006
    scalar, brain = image.header.get_axis(0), image.header.get_axis(1)
    assert list(scalar.name) == ["x", "y", "z"]
    assert [s for s, _, _ in brain.iter_structures()] == [
        "CIFTI_STRUCTURE_CORTEX_LEFT",
        "CIFTI_STRUCTURE_CORTEX_RIGHT",
    ]
    assert brain.nvertices == {"CIFTI_STRUCTURE_CORTEX_LEFT": 11, "CIFTI_STRUCTURE_CORTEX_RIGHT": 13}
    np.testing.assert_array_equal(brain.vertex[:7], np.sort(vertex[hemi == 0]))  # ascending within hemisphere


def test_map_image_rejects_bad_units():
    values, hemi, vertex = _units()
    with pytest.raises(ValueError, match=r"same \(hemi, vertex\) twice"):
        surface_map_image(values, hemi, np.zeros_like(vertex), N, ["a", "b", "c"])
    with pytest.raises(
        ValueError, match=r"vertex indices must lie in \[0, n_vertices \{'L': 5, 'R': 13\}\)$"
    ):
        surface_map_image(values, hemi, vertex, {"L": 5, "R": 13}, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"needs one name per column; got 2"):
        surface_map_image(values, hemi, vertex, N, ["a", "b"])


def test_read_map_of_a_wrong_file(tmp_path):
    gii = write_func_gii(tmp_path / "x.func.gii", np.zeros((2, 11)))
    with pytest.raises(DatasetError, match=r"^surface map '.*x\.func\.gii' is not a readable CIFTI-2 file"):
        read_surface_map(gii)


def test_surface_geometry_matches_the_run_layout():
    geometry = surface_geometry({"L": 2, "R": 3})
    np.testing.assert_array_equal(geometry["hemi"], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(geometry["vertex"], [0, 1, 0, 1, 2])


# ----- figures on fsaverage5 ---------------------------------------------------------------


@pytest.fixture
def no_download(monkeypatch):
    """Fail any HTTP request: the fsaverage5 mesh and sulcal depth must come from nilearn's copy."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(requests.Session, "send", refuse)


def _fsaverage5_planted(tmp_path: Path) -> tuple[dict, np.ndarray]:
    """A map of 0.4 on posterior left-hemisphere vertices, written and read back as CIFTI-2."""
    from nilearn import datasets

    coords = datasets.load_fsaverage("fsaverage5")["inflated"].parts["left"].coordinates
    posterior = np.flatnonzero(coords[:, 1] < np.percentile(coords[:, 1], 15))
    n_vertices = {"L": 10242, "R": 10242}
    geometry = surface_geometry(n_vertices)
    values = np.where((geometry["hemi"] == 0) & np.isin(geometry["vertex"], posterior), 0.4, 0.01)
    keep = np.arange(values.size) % 5 != 0  # no unit at every fifth vertex: NaN in the map
    path = tmp_path / "map.dscalar.nii"
    write_surface_map(
        path, values[keep, None], geometry["hemi"][keep], geometry["vertex"][keep], n_vertices, ["layer-4"]
    )
    maps, _ = read_surface_map(path)
    return maps, posterior


def _coloured_columns(png: Path) -> np.ndarray:
    """Fraction of the image width of every saturated (map-coloured) pixel."""
    from matplotlib.image import imread

    rgb = imread(str(png))[..., :3]
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    return np.nonzero(saturation > 0.3)[1] / rgb.shape[1]


def test_planted_map_is_drawn_on_the_left_hemisphere_only(tmp_path, no_download):
    from brainalign.figures_surface import plot_surface_maps

    maps, posterior = _fsaverage5_planted(tmp_path)
    assert np.all(maps["L"][posterior[posterior % 5 != 0], 0] == np.float32(0.4))
    assert np.isnan(maps["L"][::5]).all() and np.nanmax(maps["R"]) == np.float32(0.01)
    png = tmp_path / "maps.png"
    plot_surface_maps(
        {"clip / layer 4": (maps["L"][:, 0], maps["R"][:, 0])},
        [png],
        threshold=0.05,
        title="planted",
        vmax=0.5,
    )
    columns = _coloured_columns(png)
    brains = columns[columns < 0.85]  # the colour bar sits at the right edge
    assert brains.size > 500 and brains.max() < 0.45  # left hemisphere panels: the left half


def test_plot_writes_the_same_bytes_twice(tmp_path, no_download):
    from brainalign.figures_surface import plot_surface_maps

    maps, _ = _fsaverage5_planted(tmp_path)
    pairs = {"a": (-maps["R"][:, 0], maps["L"][:, 0])}  # NaN on the right, unthresholded
    digests = []
    for run in ("1", "2"):
        paths = [tmp_path / run / "maps.png", tmp_path / run / "maps.svg"]
        plot_surface_maps(pairs, paths, threshold=None, title="unthresholded")
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
    svg = (tmp_path / "1" / "maps.svg").read_text()
    assert "unthresholded" in svg and "held-out r" in svg and "right hemisphere" in svg


def test_plot_rejects_maps_off_fsaverage5(tmp_path):
    from brainalign.figures_surface import plot_surface_maps

    with pytest.raises(
        ValueError, match=re.escape("surface map 'x' has 11 left and 13 right values; expected 10242")
    ):
        plot_surface_maps({"x": (np.zeros(11), np.zeros(13))}, [tmp_path / "x.png"], threshold=None, title="")
