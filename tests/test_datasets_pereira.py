"""Pereira 2018 experiment 1: files in the released MATLAB layout, planted concept structure.

The files are written by ``tests/_pereira_files.py`` with ``scipy.io.savemat`` (struct,
cells, 1-based coordinates). The language-LH network carries a rank-3 concept signal plus
noise, every other voxel is noise; the reader must recover the planted RDM there only.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.io
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.datasets.registry import DatasetError, get_reader
from brainalign.datasets.units import check_units, roi_mask
from brainalign.datasets.pereira import (
    PereiraReader,
    check_pereira_file,
    pereira_path,
    read_pereira,
)
from tests._pereira_files import write_pereira_mat

SHAPE = (7, 8, 9)
N_CONCEPTS, N_VOXELS = 24, 150
CONCEPTS = [f"concept{i:02d}" for i in range(N_CONCEPTS)]
LH = np.arange(0, 60)
# networks are atlases; aal_1ofN regions overlap them; Temporal_Mid_L is in two atlases
ATLASES = {
    "aal_1ofN": {
        "Frontal_Inf_L": np.arange(20, 45),
        "Occipital_Mid_L": np.arange(90, 130),
        "Temporal_Mid_L": np.arange(130, 140),
    },
    "languageParcels_aal": {"Temporal_Mid_L": np.arange(130, 135)},
    "languageLH": {"L_IFG": np.arange(0, 30), "L_PostTemp": np.arange(30, 60)},
    "languageRH": {"R_IFG": np.arange(60, 80)},
    "visual": {"visual_ventral": np.arange(80, 120)},
}
ROIS = ["languageLH", "languageRH", "visual", "FrontalInfL"]


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Betas (n_concepts, n_voxels), the LH signal without noise, and 0-based ijk."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(np.prod(SHAPE), N_VOXELS, replace=False)
    ijk = np.array(np.unravel_index(flat, SHAPE)).T
    signal = rng.normal(size=(N_CONCEPTS, 3)) @ rng.normal(size=(3, len(LH)))
    betas = rng.normal(scale=0.5, size=(N_CONCEPTS, N_VOXELS)) + rng.normal(5, 1, N_VOXELS)
    betas[:, LH] += signal
    return betas, signal, ijk


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    betas, signal, ijk = _planted()
    path = tmp_path_factory.mktemp("pereira") / "M01" / "data_180concepts_sentences.mat"
    write_pereira_mat(path, betas, CONCEPTS, ijk, SHAPE, ATLASES)
    return path, betas, signal, ijk


def _read(path, rois=ROIS, concepts=CONCEPTS, **kwargs):
    return read_pereira(
        path, rois=rois, concepts=concepts, subject="M01", task="sentences", **kwargs
    )


def test_recovers_the_planted_rdm_in_the_language_network_only(planted):
    path, _, signal, _ = planted
    arrays, meta = _read(path)
    check_units(arrays, meta)
    truth = pdist(signal, "correlation")
    r = {
        roi: spearmanr(
            pdist(arrays["patterns"][:, roi_mask(arrays, meta, roi)], "correlation"), truth
        )[0]
        for roi in ("languageLH", "languageRH", "visual")
    }
    # measured (seed 0): Spearman r languageLH 0.916, languageRH -0.002, visual -0.037
    assert r["languageLH"] > 0.8
    assert abs(r["languageRH"]) < 0.2 and abs(r["visual"]) < 0.2


def test_file_layout_reads_as_the_public_loaders_index_it(planted):
    """Paper 000's get_network_activations and positional meta access, on plain loadmat."""
    path, betas, _, _ = planted
    data = scipy.io.loadmat(str(path))
    networks = [atlas[0] for atlas in data["meta"]["atlases"][0][0][0]]
    columns = data["meta"]["roiColumns"][0][0][0][networks.index("languageLH")]
    index = np.concatenate([columns[r][0].flatten() - 1 for r in range(len(columns))])
    arrays, meta = _read(path)
    expected = arrays["patterns"][:, roi_mask(arrays, meta, "languageLH")]
    np.testing.assert_array_equal(data["examples"][:, index].astype(np.float32), expected)
    assert [data["keyConcept"][i][0][0] for i in range(N_CONCEPTS)] == CONCEPTS
    fields = data["meta"].dtype.names
    assert (fields[5], fields[11]) == ("colToCoord", "roiColumns")
    aal = data["meta"]["roiMultimask"][0][0][0][0]
    assert data["meta"]["rois"][0][0][0][0][int(aal[25][0]) - 1][0][0] == "Frontal_Inf_L"


def test_ijk_and_shape_round_trip_through_coord_to_col(planted):
    path, _, _, ijk = planted
    arrays, meta = _read(path)
    np.testing.assert_array_equal(arrays["ijk"], ijk)
    assert arrays["ijk"].dtype == np.int32 and meta["shape"] == list(SHAPE)
    to_col = scipy.io.loadmat(str(path))["meta"]["coordToCol"][0, 0]
    assert to_col.shape == SHAPE
    np.testing.assert_array_equal(to_col[tuple(arrays["ijk"].T)], np.arange(1, N_VOXELS + 1))
    assert meta["affine"] == np.eye(4).tolist() and meta["space"] == "pereira"


def test_voxel_size_gives_a_diagonal_affine(tmp_path):
    betas, _, ijk = _planted()
    path = tmp_path / "data_180concepts_sentences.mat"
    write_pereira_mat(path, betas, CONCEPTS, ijk, SHAPE, ATLASES, voxel_size=(2.0, 3.0, 4.0))
    _, meta = _read(path)
    assert np.diag(meta["affine"]).tolist() == [2.0, 3.0, 4.0, 1.0]


def test_overlapping_networks_and_atlas_regions_keep_their_memberships(planted):
    path, _, _, _ = planted
    rois = [*ROIS, "LIFG", "aal1ofNTemporalMidL", "languageParcelsaalTemporalMidL", "L_PostTemp"]
    arrays, meta = _read(path, rois=rois)
    expected = {
        "languageLH": LH,
        "languageRH": np.arange(60, 80),
        "visual": np.arange(80, 120),
        "FrontalInfL": np.arange(20, 45),
        "LIFG": np.arange(0, 30),
        "aal1ofNTemporalMidL": np.arange(130, 140),
        "languageParcelsaalTemporalMidL": np.arange(130, 135),
        "L_PostTemp": np.arange(30, 60),
    }
    for roi, columns in expected.items():
        np.testing.assert_array_equal(np.flatnonzero(roi_mask(arrays, meta, roi)), columns)
    assert arrays["roi_masks"].shape == (len(rois), N_VOXELS)
    assert meta["roi_definitions"]["FrontalInfL"] == "aal_1ofN/Frontal_Inf_L"
    assert arrays["roi"][25] == meta["rois"]["languageLH"]  # first match of an overlap
    assert (arrays["roi"][140:] == 0).all()


def test_roi_multimask_gives_the_same_rois_when_roi_columns_is_absent(planted, tmp_path):
    path, betas, _, ijk = planted
    fallback = tmp_path / "data_180concepts_sentences.mat"
    write_pereira_mat(fallback, betas, CONCEPTS, ijk, SHAPE, ATLASES, omit=["meta.roiColumns"])
    assert "roiColumns" not in scipy.io.loadmat(str(fallback))["meta"].dtype.names
    rois = [*ROIS, "aal1ofNTemporalMidL"]
    (arrays, meta), (reference, _) = _read(fallback, rois=rois), _read(path, rois=rois)
    np.testing.assert_array_equal(arrays["roi_masks"], reference["roi_masks"])
    assert roi_mask(arrays, meta, "FrontalInfL").sum() == 25


def test_rows_are_labelled_through_labels_concept(planted, tmp_path):
    """keyConcept in another order, labelsConcept pointing each row at its concept."""
    path, betas, _, _ = planted
    data = scipy.io.loadmat(str(path))
    order = np.random.default_rng(2).permutation(N_CONCEPTS)
    data["keyConcept"] = data["keyConcept"][order]
    data["labelsConcept"] = (np.argsort(order) + 1).reshape(-1, 1).astype(float)
    relabelled = tmp_path / "data_180concepts_sentences.mat"
    scipy.io.savemat(str(relabelled), {k: v for k, v in data.items() if not k.startswith("__")})
    arrays, meta = _read(relabelled)
    assert meta["stimuli"] == CONCEPTS
    np.testing.assert_array_equal(arrays["patterns"], betas.astype(np.float32))


def test_patterns_follow_the_stimuli_order(planted):
    path, betas, _, _ = planted
    order = np.random.default_rng(1).permutation(N_CONCEPTS)
    stimuli = [CONCEPTS[i] for i in order]
    arrays, meta = _read(path, concepts=stimuli)
    assert meta["stimuli"] == stimuli
    np.testing.assert_array_equal(arrays["patterns"], betas[order].astype(np.float32))
    _, in_file_order = _read(path, concepts=None)
    assert in_file_order["stimuli"] == CONCEPTS


def test_stimuli_concepts_without_a_pattern_are_left_out_and_reported(planted, caplog):
    path, betas, _, _ = planted
    with caplog.at_level(logging.WARNING, logger="brainalign.datasets.pereira"):
        arrays, meta = _read(path, concepts=["extra", *CONCEPTS[::-1]])
    assert meta["stimuli"] == CONCEPTS[::-1]
    assert meta["qc"]["stimuli_without_data"] == ["extra"]
    assert "1 stimuli concepts have no pattern" in caplog.text
    np.testing.assert_array_equal(arrays["patterns"], betas[::-1].astype(np.float32))


def test_nan_and_constant_voxels_are_counted_dropped_and_reported(tmp_path, caplog):
    betas, _, ijk = _planted()
    betas[3, 5] = np.nan  # languageLH
    betas[:, 70] = 3.0  # languageRH, constant
    betas[:, 145] = 0.0  # outside every ROI, all zero
    path = tmp_path / "data_180concepts_pictures.mat"
    write_pereira_mat(path, betas, CONCEPTS, ijk, SHAPE, ATLASES)
    with caplog.at_level(logging.INFO, logger="brainalign.datasets.pereira"):
        arrays, meta = _read(path)
    qc = meta["qc"]
    assert (qc["n_voxels_file"], qc["n_voxels_nan"], qc["n_voxels_constant"]) == (150, 1, 2)
    assert (qc["n_voxels_dropped"], qc["n_voxels"]) == (3, 147)
    assert qc["dropped_by_roi"] == {"languageLH": 1, "languageRH": 1, "visual": 0, "FrontalInfL": 0}
    assert arrays["patterns"].shape == (N_CONCEPTS, 147) and np.isfinite(arrays["patterns"]).all()
    kept = np.delete(np.arange(N_VOXELS), [5, 70, 145])
    np.testing.assert_array_equal(arrays["ijk"], ijk[kept])
    np.testing.assert_array_equal(arrays["patterns"], betas[:, kept].astype(np.float32))
    assert roi_mask(arrays, meta, "languageLH").sum() == 59
    assert "dropped 1 voxels with NaN/infinite and 2 with constant betas" in caplog.text


def test_zscore_off_leaves_the_betas_untouched_and_on_standardises_voxels(planted):
    path, betas, _, _ = planted
    arrays, meta = _read(path)
    np.testing.assert_array_equal(arrays["patterns"], betas.astype(np.float32))
    assert meta["zscore"] is False
    scored, meta = _read(path, zscore=True)
    reference = (betas - betas.mean(axis=0)) / betas.std(axis=0)
    np.testing.assert_allclose(scored["patterns"], reference, atol=1e-5)
    assert meta["zscore"] is True and scored["patterns"].dtype == np.float32


# ---- errors: one line naming the file or key, what was expected and the fix ----


def _one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(
        DatasetError,
        match=(
            r"Pereira file '.*M09/data_180concepts_pictures.mat' does not exist; expected "
            r"<dataset.root>/<subject>/data_180concepts_<paradigm>.mat \(sentences, pictures, "
            r"wordclouds\)\. Fix 'dataset.root'"
        ),
    ) as excinfo:
        check_pereira_file(pereira_path(tmp_path, "M09", "pictures"), CONCEPTS)
    _one_line(excinfo)


@pytest.mark.parametrize("omit", ["examples", "meta"])
def test_a_mat_file_without_examples_or_meta_is_named(tmp_path, omit):
    betas, _, ijk = _planted()
    path = tmp_path / "data_180concepts_sentences.mat"
    write_pereira_mat(path, betas, CONCEPTS, ijk, SHAPE, ATLASES, omit=[omit])
    pattern = (
        rf"Pereira file '.*data_180concepts_sentences.mat': lacks '{omit}'; expected 'examples' "
        r"\(concepts x voxels betas\), 'keyConcept' and the 'meta' struct .* found \[.*\]\. "
        r"Use the released data_180concepts_\*\.mat, unmodified\."
    )
    for call in (lambda: check_pereira_file(path, CONCEPTS), lambda: _read(path)):
        with pytest.raises(DatasetError, match=pattern) as excinfo:
            call()
        _one_line(excinfo)


def test_a_file_that_is_not_a_mat_file_is_named(tmp_path):
    path = tmp_path / "data_180concepts_sentences.mat"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(DatasetError, match=r"Pereira file '.*' is not a MATLAB v5/v7 .mat file"):
        check_pereira_file(path, CONCEPTS)


def test_concepts_the_stimuli_lack_are_named_with_the_fix(planted):
    path = planted[0]
    stimuli = [c for c in CONCEPTS if c not in ("concept03", "concept07")]
    pattern = (
        r"Pereira file '.*' has 2 concepts that the stimuli's concepts.tsv lacks \(e.g. "
        r"'concept03', 'concept07'\); expected every keyConcept in concepts.tsv\. Add them to "
        r"concepts.tsv .* or point 'stimuli.root' at the Pereira stimuli\."
    )
    for call in (lambda: check_pereira_file(path, stimuli), lambda: _read(path, concepts=stimuli)):
        with pytest.raises(DatasetError, match=pattern) as excinfo:
            call()
        _one_line(excinfo)


def test_the_parse_time_check_reads_no_betas(planted, monkeypatch):
    requested = []
    real = scipy.io.loadmat

    def spy(*args, **kwargs):
        requested.append(kwargs.get("variable_names"))
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.io, "loadmat", spy)
    check_pereira_file(planted[0], CONCEPTS)
    assert requested == [["keyConcept", "labelsConcept"]]


def test_an_unknown_roi_lists_close_matches(planted):
    with pytest.raises(
        DatasetError,
        match=(
            r"ROI 'languageL' in config 'dataset.rois' is not a network or region of Pereira file "
            r"'.*'; expected an atlas \(aal1ofN, languageParcelsaal, languageLH, languageRH, "
            r"visual\) or a region name .*; close: languageLH, languageRH.*\. Fix 'dataset.rois'\."
        ),
    ) as excinfo:
        _read(planted[0], rois=["languageL"])
    _one_line(excinfo)


def test_a_region_name_shared_by_two_atlases_asks_for_the_atlas_prefix(planted):
    with pytest.raises(
        DatasetError,
        match=(
            r"ROI 'TemporalMidL' in config 'dataset.rois' names regions of several atlases of "
            r"Pereira file '.*' \(aal_1ofN/Temporal_Mid_L, languageParcels_aal/Temporal_Mid_L\); "
            r"expected one\. Prefix the atlas, e.g. 'aal1ofNTemporalMidL', in 'dataset.rois'\."
        ),
    ) as excinfo:
        _read(planted[0], rois=["TemporalMidL"])
    _one_line(excinfo)


# ---- the registered reader ----


def _dataset(root, tasks=None):
    return {
        "format": "pereira",
        "root": str(root),
        "subjects": ["M01", "P01"],
        "tasks": tasks
        or {
            "sentences": {"kind": "concepts", "conditions": ["sentence"]},
            "pic": {"kind": "concepts", "bids_task": "pictures", "conditions": ["picture"]},
        },
        "rois": ["languageLH", "visual"],
    }


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Two subjects x two paradigms and a stimuli folder, as a user holds them."""
    root = tmp_path_factory.mktemp("release")
    stimuli = root / "stimuli"
    stimuli.mkdir()
    pd.DataFrame({"concept": CONCEPTS[::-1], "image": [f"{c}.png" for c in CONCEPTS[::-1]]}).to_csv(
        stimuli / "concepts.tsv", sep="\t", index=False
    )
    betas = {}
    for seed, (subject, paradigm) in enumerate(
        [("M01", "sentences"), ("M01", "pictures"), ("P01", "sentences"), ("P01", "pictures")]
    ):
        betas[subject, paradigm], _, ijk = _planted(seed)
        write_pereira_mat(
            pereira_path(root / "data", subject, paradigm),
            betas[subject, paradigm],
            CONCEPTS,
            ijk,
            SHAPE,
            ATLASES,
        )
    return root, betas


def test_reader_checks_lists_inputs_and_preprocesses(released):
    root, betas = released
    reader = get_reader(_dataset(root / "data"), str(root / "stimuli"))
    assert isinstance(reader, PereiraReader)
    reader.check()
    inputs = reader.inputs("P01", "pic")
    assert inputs == {
        "mat": str(root / "data" / "P01" / "data_180concepts_pictures.mat"),
        "concepts": str(root / "stimuli" / "concepts.tsv"),
    }
    arrays, meta = reader.preprocess(inputs, "P01", "pic", {"zscore": None})
    check_units(arrays, meta)
    assert (meta["subject"], meta["task"], meta["paradigm"]) == ("P01", "pic", "pictures")
    assert meta["stimuli"] == CONCEPTS[::-1] and list(meta["rois"]) == ["languageLH", "visual"]
    np.testing.assert_array_equal(
        arrays["patterns"], betas["P01", "pictures"][::-1].astype(np.float32)
    )
    scored, _ = reader.preprocess(inputs, "P01", "pic", {"zscore": True})
    np.testing.assert_allclose(scored["patterns"].std(axis=0), 1.0, atol=1e-5)


def test_reader_check_names_a_missing_subject_file(released):
    root, _ = released
    dataset = {**_dataset(root / "data"), "subjects": ["M01", "M02"]}
    with pytest.raises(
        DatasetError, match=r"Pereira file '.*M02/data_180concepts_sentences.mat' does not exist"
    ):
        get_reader(dataset, str(root / "stimuli")).check()


@pytest.mark.parametrize(
    ("tasks", "pattern"),
    [
        (
            {"movie": {"kind": "naturalistic"}},
            r"config 'dataset.tasks.movie' is kind 'naturalistic'",
        ),
        (
            {"reading": {"kind": "concepts"}},
            r"config 'dataset.tasks.reading' is kind 'concepts', paradigm 'reading'; format "
            r"pereira expects kind 'concepts' and a paradigm .* in sentences, pictures, "
            r"wordclouds\. Edit config/config.yaml\.",
        ),
    ],
)
def test_reader_rejects_tasks_that_are_not_pereira_paradigms(released, tasks, pattern):
    root, _ = released
    with pytest.raises(DatasetError, match=pattern):
        get_reader(_dataset(root / "data", tasks), str(root / "stimuli")).check()


def test_reader_check_resolves_the_roi_names_before_any_job_runs(released):
    root, _ = released
    dataset = {**_dataset(root / "data"), "rois": ["languageLH", "language"]}
    with pytest.raises(
        DatasetError,
        match=r"ROI 'language' in config 'dataset.rois' is not a network .* close: .*languageLH",
    ):
        get_reader(dataset, str(root / "stimuli")).check()


def test_reader_names_a_missing_concepts_table(released, tmp_path):
    root, _ = released
    with pytest.raises(
        DatasetError, match=r"stimuli file '.*concepts.tsv' does not exist; format pereira"
    ):
        get_reader(_dataset(root / "data"), str(tmp_path)).check()
