"""The ieeg reader on BIDS-iEEG files written with mne-bids (EDF through edfio, BrainVision):
round trip of channels, bads, coordinates, regions, events and bins; planted responses
recovered; each bad-input message before any job."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mne_bids")

from brainalign.datasets import ieeg_reader  # noqa: E402  (registers format 'ieeg')
from brainalign.datasets.registry import DatasetError  # noqa: E402
from brainalign.ieeg.simulate import write_bids_ieeg  # noqa: E402

from ._ieeg_files import write_ieeg_dataset, write_stimuli  # noqa: E402

TASKS = {"words": {"kind": "word_events", "bids_task": "movie"},
         "cuts": {"kind": "scene_events", "bids_task": "movie"}}


def _dataset(root, **extra):
    return {"format": "ieeg", "root": str(root), "subjects": ["01"], "tasks": TASKS,
            "region_column": "region", "rois": ["superiortemporal", "fusiform", "amygdala"],
            **extra}


@pytest.fixture(scope="module", params=["EDF", "BrainVision"])
def written(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(request.param)
    stimuli = write_stimuli(base / "stimuli", runs=(1, 2), duration=40.0)
    truth = write_ieeg_dataset(base / "bids", stimuli, runs=(1, 2), fmt=request.param)
    return base, stimuli, truth


def _reader(base, preprocess=None, **extra):
    return ieeg_reader.IeegReader(_dataset(base / "bids", **extra), str(base / "stimuli"),
                                  preprocess=preprocess or {})


def _read(base, task, preprocess=None, **extra):
    reader = _reader(base, preprocess, **extra)
    reader.check()
    return reader.preprocess(reader.inputs("01", task), "01", task, preprocess or {})


def test_words_round_trip(written):
    base, stimuli, truth = written
    arrays, meta = _read(base, "words")
    pairs = [f"LA{k}-LA{k + 1}" for k in range(1, 7)] + [f"RB{k}-RB{k + 1}" for k in range(1, 8)]
    assert meta["channels"] == pairs  # LA8 is bad: no LA7-LA8
    assert meta["regions"][:3] == ["superiortemporal"] * 3 and meta["regions"][-1] == "fusiform"
    xyz = dict(zip(truth["names"], truth["xyz"]))
    assert arrays["xyz"].shape == (13 * 8, 3)
    np.testing.assert_allclose(arrays["xyz"][8 * 2], (xyz["LA3"] + xyz["LA4"]) / 2, atol=1e-3)
    assert meta["coord_space"] == meta["space"] == "MNI152NLin2009cAsym"
    words = stimuli["words"]
    assert meta["events"] == [f"word-{r:05d}" for r in range(len(words))]
    run1 = truth["runs"][1]
    expected = np.r_[run1["word_times"], truth["runs"][2]["word_times"] + run1["duration"]]
    np.testing.assert_allclose(meta["event_times"], expected, atol=1e-6)
    assert arrays["responses"].shape == (len(words), 13 * 8)
    assert arrays["responses"].dtype == np.float32
    assert meta["bins"][0] == [0.0, 0.025] and len(meta["bins"]) == 8
    assert arrays["channel"][9] == 1 and arrays["bin"][9] == 1
    assert np.bincount(arrays["group"]).min() >= len(words) // 5
    assert meta["rois"] == {"superiortemporal": 1, "fusiform": 2, "amygdala": 3}
    assert arrays["roi"][0] == 1 and arrays["roi"][-1] == 2 and meta["alignment"] == "language"
    assert meta["qc"]["runs"][0]["dropped_bad"] == ["LA8"]
    planted = np.r_[run1["word_amp"], truth["runs"][2]["word_amp"]]
    peak = arrays["responses"].reshape(len(words), 13, 8)[:, 1, 3:5].mean(axis=1)  # LA2-LA3
    null = arrays["responses"].reshape(len(words), 13, 8)[:, 10, 3:5].mean(axis=1)
    assert np.corrcoef(planted, peak)[0, 1] > 0.8
    assert abs(np.corrcoef(planted, null)[0, 1]) < 0.25


def test_scene_cuts_round_trip_with_laplacian(written):
    base, stimuli, truth = written
    arrays, meta = _read(base, "cuts", {"ieeg": {"reference": "laplacian"}})
    frames = stimuli["frames"]
    cut_rows = np.flatnonzero(frames["scene_cut"].to_numpy() == 1)
    assert meta["events"] == [f"cut-{r:05d}" for r in cut_rows]
    assert meta["alignment"] == "vision" and "LA8" not in meta["channels"]
    assert len(meta["channels"]) == 15
    planted = np.r_[truth["runs"][1]["cut_amp"], truth["runs"][2]["cut_amp"]]
    k = meta["channels"].index("RB4")
    peak = arrays["responses"].reshape(len(cut_rows), 15, 8)[:, k, 3:5].mean(axis=1)
    assert np.corrcoef(planted, peak)[0, 1] > 0.8


def _copy(written, tmp_path):
    shutil.copytree(written[0], tmp_path / "copy")
    return tmp_path / "copy", next((tmp_path / "copy" / "bids" / "sub-01" / "ieeg").glob("*run-1*_channels.tsv"))


def test_electrodes_missing_from_channels(written, tmp_path):
    base, _ = _copy(written, tmp_path)
    electrodes = next((base / "bids" / "sub-01" / "ieeg").glob("*_electrodes.tsv"))
    table = pd.read_csv(electrodes, sep="\t", keep_default_na=False)
    table.loc[len(table)] = ["LZ9", 0.01, 0.0, 0.0, "n/a", "insula"]
    table.to_csv(electrodes, sep="\t", index=False)
    with pytest.raises(DatasetError, match=r"electrodes '.*_electrodes.tsv' column 'name' lists "
                       r"\['LZ9'\].*channels '.*run-1.*_channels.tsv' column 'name' lacks"):
        _reader(base).check()


def test_seeg_channel_without_coordinates(written, tmp_path):
    base, _ = _copy(written, tmp_path)
    electrodes = next((base / "bids" / "sub-01" / "ieeg").glob("*_electrodes.tsv"))
    table = pd.read_csv(electrodes, sep="\t", keep_default_na=False)
    table[table["name"] != "RB2"].to_csv(electrodes, sep="\t", index=False)
    with pytest.raises(DatasetError, match=r"SEEG/ECoG channels \['RB2'\] \(1 in all\) without "
                       r"coordinates in electrodes '.*_electrodes.tsv'"):
        _reader(base).check()


def test_events_outside_the_recording(written, tmp_path):
    base, _ = _copy(written, tmp_path)
    events = next((base / "bids" / "sub-01" / "ieeg").glob("*run-2*_events.tsv"))
    table = pd.read_csv(events, sep="\t", keep_default_na=False)
    table.loc[table["trial_type"] == "movie", "onset"] = 10.0
    table.to_csv(events, sep="\t", index=False)
    with pytest.raises(DatasetError, match=r"events '.*run-2.*_events.tsv' of recording .*: \d+ "
                       r"events fall outside the recording of .* 'onset'"):
        _reader(base).check()


def test_unknown_reference(written):
    with pytest.raises(DatasetError, match=r"'preprocess.ieeg.reference' is 'car'.*expected one "
                       r"of: bipolar, average, laplacian, none"):
        _reader(written[0], {"ieeg": {"reference": "car"}}).check()


def test_missing_region_column(written):
    with pytest.raises(DatasetError, match=r"no column 'desikan' \(config 'dataset.region_column'\)"):
        _reader(written[0], region_column="desikan").check()


def test_sampling_rate_too_low_for_the_band(tmp_path):
    stimuli = write_stimuli(tmp_path / "stimuli", runs=(1,), duration=12.0)
    write_ieeg_dataset(tmp_path / "bids", stimuli, runs=(1,), sfreq=250.0)
    with pytest.raises(DatasetError, match=r"recording '.*_ieeg.edf' is sampled at 250 Hz .*"
                       r"Choose a lower band .* or band: null"):
        _reader(tmp_path).check()
    settings = {"ieeg": {"band": [30, 100]}}
    _reader(tmp_path, settings).check()  # a band under Nyquist is accepted


def test_nwb_is_refused_with_how_to_convert(written, tmp_path):
    base, _ = _copy(written, tmp_path)
    folder = base / "bids" / "sub-01" / "ieeg"
    for f in folder.glob("*run-2*_ieeg.*"):
        f.unlink()
    (folder / "sub-01_task-movie_run-2_space-MNI152NLin2009cAsym_ieeg.nwb").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"is NWB, which mne-bids .* cannot read.*"
                       r"write_raw_bids\(raw, bids_path, format='EDF'\)"):
        _reader(base).check()


def test_simulate_writer_round_trip(tmp_path):
    """write_bids_ieeg (the demo's writer) gives files the reader reads back."""
    from brainalign.ieeg.simulate import shaft_layout, simulate_seeg

    write_stimuli(tmp_path / "stimuli", runs=(3,), duration=12.0)
    names, xyz = shaft_layout(3, 6)
    data = simulate_seeg(16.0, 1000.0, len(names), [], np.zeros((0, len(names))), line_freq=50)
    write_bids_ieeg(str(tmp_path / "bids"), "01", "movie", 1, data, 1000.0, names, xyz,
                    ["insula"] * len(names), ["LC2"], {3: 1.5}, 50.0)
    arrays, meta = _read(tmp_path, "words", {"ieeg": {"reference": "average", "n_blocks": 2}})
    assert len(meta["channels"]) == 17 and "LC2" not in meta["channels"]
    assert meta["qc"]["runs"][0]["notch"] == [50.0 * k for k in range(1, 10)]
    assert set(meta["regions"]) == {"insula"}
    assert arrays["responses"].shape[1] == 17 * 8


def test_movie_segment_played_twice(written, tmp_path):
    base, _ = _copy(written, tmp_path)
    events = next((base / "bids" / "sub-01" / "ieeg").glob("*run-2*_events.tsv"))
    table = pd.read_csv(events, sep="\t", keep_default_na=False)
    table.loc[table["trial_type"] == "movie", "value"] = 1
    table.to_csv(events, sep="\t", index=False)
    with pytest.raises(DatasetError, match=r"play a movie segment twice .* e.g. word-00000"):
        _reader(base).check()


def test_regions_from_a_nifti_atlas(written, tmp_path):
    """Without region_column: the atlas at each channel's coordinates (bipolar midpoint)."""
    nib = pytest.importorskip("nibabel")
    base, _, truth = written
    xyz = dict(zip(truth["names"], truth["xyz"]))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-80, -100, -60]
    grid = np.zeros((81, 91, 61), dtype=np.int16)
    centre = (xyz["LA2"] + xyz["LA3"]) / 2  # LA2-LA3's midpoint, 1.75 mm from either contact
    i, j, k = np.rint((centre - affine[:3, 3]) / 2).astype(int)
    grid[i, j, k] = 7
    nib.save(nib.Nifti1Image(grid, affine), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.tsv").write_text("index\tname\n7\tctx-lh-insula\n")
    arrays, meta = _read(base, "words", region_column=None, atlas_image=str(tmp_path / "atlas.nii.gz"),
                         rois=["ctxlhinsula"])
    assert meta["regions"][1] == "ctx-lh-insula"
    assert [r for r in meta["regions"] if r] == ["ctx-lh-insula"]
    assert (arrays["roi"] == 1).sum() == 8 and arrays["roi"][8:16].tolist() == [1] * 8
    n_events = meta["qc"]["n_events"]
    assert list(n_events) == ["run-1", "run-2"] and sum(n_events.values()) == len(meta["events"])
