"""brainalign.ieeg: MNE preprocessing against MNE's own functions, binning against a loop,
planted high-gamma responses recovered, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

mne = pytest.importorskip("mne")

from brainalign.datasets.registry import DatasetError  # noqa: E402
from brainalign.ieeg import DEFAULT_IEEG, ieeg_settings  # noqa: E402
from brainalign.ieeg._checks import check_electrodes  # noqa: E402
from brainalign.ieeg.epochs import cv_blocks, epoch_bins, epochs_arrays, time_bins  # noqa: E402
from brainalign.ieeg.preprocess import bipolar_pairs, preprocess_raw  # noqa: E402
from brainalign.ieeg.regions import atlas_regions, channel_xyz  # noqa: E402
from brainalign.ieeg.simulate import shaft_layout, simulate_seeg  # noqa: E402

SFREQ = 1000.0
OFF = {**DEFAULT_IEEG, "notch": False, "reference": "none", "band": None, "sfreq": SFREQ,
       "zscore": False}


def _recording(n_shafts=2, n_contacts=7, duration=20.0, seed=0, bads=()):
    names, _ = shaft_layout(n_shafts, n_contacts)
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.5, duration - 1.0, 40))
    amp = np.zeros((len(times), len(names)))
    amp[:, 2] = rng.uniform(0, 1, len(times))
    data = simulate_seeg(duration, SFREQ, len(names), times, amp, random_state=seed)
    info = mne.create_info(names, SFREQ, "seeg")
    info["line_freq"] = 60.0
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.info["bads"] = list(bads)
    return raw, times, amp


def _power_at(data, freq):
    f, p = scipy.signal.welch(data, fs=SFREQ, nperseg=2000)
    return p[:, np.argmin(np.abs(f - freq))].mean()


def test_notch_matches_mne_and_removes_line_noise():
    raw, _, _ = _recording()
    out, qc = preprocess_raw(raw.copy(), {**OFF, "notch": True}, "rec.edf")
    expected = raw.copy().notch_filter(np.arange(60.0, 500.0, 60.0), verbose=False).get_data()
    np.testing.assert_allclose(out.get_data(), expected, atol=1e-12)
    assert qc["notch"] == [60.0 * k for k in range(1, 9)]
    assert _power_at(out.get_data(), 60.0) < 0.01 * _power_at(raw.get_data(), 60.0)


def test_bad_and_non_seeg_channels_dropped():
    raw, _, _ = _recording(bads=["LA2"])
    raw.set_channel_types({"RB7": "misc"}, on_unit_change="ignore")
    out, qc = preprocess_raw(raw, OFF, "rec.edf")
    assert "LA2" not in out.ch_names and "RB7" not in out.ch_names and len(out.ch_names) == 12
    assert qc["dropped_bad"] == ["LA2"] and qc["dropped_other"] == ["RB7"]


def test_bipolar_matches_mne_and_skips_missing_neighbours():
    raw, _, _ = _recording(bads=["LA4"])
    out, _ = preprocess_raw(raw.copy(), {**OFF, "reference": "bipolar"}, "rec.edf")
    anodes = ["LA1", "LA2", "LA5", "LA6"] + [f"RB{k}" for k in range(1, 7)]
    cathodes = ["LA2", "LA3", "LA6", "LA7"] + [f"RB{k}" for k in range(2, 8)]
    ref = mne.set_bipolar_reference(raw.copy().drop_channels(["LA4"]), anodes, cathodes,
                                    verbose=False)
    names = [f"{a}-{c}" for a, c in zip(anodes, cathodes)]
    assert out.ch_names == names
    np.testing.assert_allclose(out.get_data(), ref.get_data(picks=names), atol=1e-15)
    assert bipolar_pairs(["LA'1", "LA'2", "X"]) == [("LA'1", "LA'2")]


def test_average_reference_matches_mne():
    raw, _, _ = _recording()
    out, _ = preprocess_raw(raw.copy(), {**OFF, "reference": "average"}, "rec.edf")
    ref = raw.copy().set_eeg_reference("average", ch_type="seeg", verbose=False)
    np.testing.assert_allclose(out.get_data(), ref.get_data(), atol=1e-15)


def test_laplacian_matches_explicit_formula():
    raw, _, _ = _recording(bads=["RB3"])
    out, _ = preprocess_raw(raw.copy(), {**OFF, "reference": "laplacian"}, "rec.edf")
    x = {n: raw.get_data(picks=[n])[0] for n in raw.ch_names}
    expected = {}
    for shaft, n_contacts in (("LA", 7), ("RB", 7)):
        for k in range(1, n_contacts + 1):
            name = f"{shaft}{k}"
            if name == "RB3":
                continue
            near = [f"{shaft}{j}" for j in (k - 1, k + 1) if f"{shaft}{j}" in x and f"{shaft}{j}" != "RB3"]
            if near:
                expected[name] = x[name] - sum(x[n] for n in near) / len(near)
    assert out.ch_names == list(expected)
    np.testing.assert_allclose(out.get_data(), np.array(list(expected.values())), atol=1e-15)


def test_high_gamma_envelope_and_resample_match_mne_and_scipy():
    raw, _, _ = _recording()
    settings = {**OFF, "band": [70, 150], "sfreq": 200, "zscore": True}
    out, qc = preprocess_raw(raw.copy(), settings, "rec.edf")
    filtered = mne.filter.filter_data(raw.get_data(), SFREQ, 70.0, 150.0, verbose=False)
    envelope = np.abs(scipy.signal.hilbert(filtered, axis=-1))
    resampled = mne.filter.resample(envelope, up=200.0, down=SFREQ, npad="auto", verbose=False)
    expected = (resampled - resampled.mean(1, keepdims=True)) / resampled.std(1, keepdims=True)
    assert out.get_data().shape == expected.shape == (14, 4000)
    np.testing.assert_allclose(out.get_data(), expected, atol=1e-6)
    assert qc["sfreq"] == 200.0 and qc["band"] == [70.0, 150.0]


def test_epoch_bins_match_a_loop():
    rng = np.random.default_rng(3)
    data, sfreq = rng.normal(size=(5, 3001)), 200.0
    times = np.array([0.3, 2.0, 7.123, 14.8])
    window, width = (-0.1, 0.2), 0.025
    got = epoch_bins(data, sfreq, times, window, width, "rec.edf")
    bins = time_bins(window, width)
    assert got.shape == (4, 5, 12) and len(bins) == 12
    for e, t in enumerate(times):
        for b, (start, _) in enumerate(bins):
            s = int(round((t + start) * sfreq))
            np.testing.assert_allclose(got[e, :, b], data[:, s:s + 5].mean(axis=1))


def test_cv_blocks_are_contiguous_equal_chunks():
    group = cv_blocks(23, 5)
    assert group.dtype == np.int32 and (np.diff(group) >= 0).all()
    sizes = [len(chunk) for chunk in np.array_split(np.arange(23), 5)]
    assert np.bincount(group).tolist() == sizes == [5, 5, 5, 4, 4]
    with pytest.raises(DatasetError, match="n_blocks"):
        cv_blocks(3, 5)


def test_planted_amplitudes_recovered():
    names, _ = shaft_layout(2, 8)
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(1.0, 59.0, 150))
    amp = np.zeros((150, 16))
    amp[:, names.index("LA3")] = rng.uniform(0, 1, 150)
    info = mne.create_info(names, SFREQ, "seeg")
    info["line_freq"] = 60.0
    raw = mne.io.RawArray(simulate_seeg(60.0, SFREQ, 16, times, amp), info, verbose=False)
    out, _ = preprocess_raw(raw, DEFAULT_IEEG, "rec.edf")
    binned = epoch_bins(out.get_data(), 200.0, times, (0.0, 0.2), 0.025, "rec.edf")
    planted = amp[:, names.index("LA3")]
    peak = binned[:, out.ch_names.index("LA2-LA3"), 3:5].mean(axis=1)
    null = binned[:, out.ch_names.index("RB2-RB3"), 3:5].mean(axis=1)
    assert np.corrcoef(planted, peak)[0, 1] > 0.8
    assert abs(np.corrcoef(planted, null)[0, 1]) < 0.25


def test_epochs_arrays_are_channel_major():
    responses = np.arange(3 * 4 * 2, dtype=float).reshape(3, 4, 2)
    xyz = np.arange(12.0).reshape(4, 3)
    arrays, meta = epochs_arrays(responses, ["A1-A2", "A2-A3", "B1", "B2"], xyz,
                                 ["x", "y", "", "x"], ["x", "z"], [[0, 0.1], [0.1, 0.2]], "MNI")
    assert arrays["responses"][1, 5] == responses[1, 2, 1]
    assert arrays["channel"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert arrays["bin"].tolist() == [0, 1] * 4
    np.testing.assert_array_equal(arrays["xyz"][5], xyz[2])
    assert arrays["roi"].tolist() == [1, 1, 0, 0, 0, 0, 1, 1] and meta["rois"] == {"x": 1, "z": 2}
    assert meta["kind"] == "epochs" and meta["geometry"] == "electrodes"


def test_atlas_lookup_nearest_voxel_and_bipolar_midpoint(tmp_path):
    nib = pytest.importorskip("nibabel")
    grid = np.zeros((7, 8, 9), dtype=np.int16)
    grid[2, 3, 4], grid[5, 5, 5] = 1, 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10, -20, -30]
    nib.save(nib.Nifti1Image(grid, affine), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.tsv").write_text("index\tname\n1\tone\n2\ttwo\n")
    xyz = channel_xyz(["A1-A2", "B1", "C1"], {"A1": [-6.6, -14, -22], "A2": [-5.4, -14, -22],
                                              "B1": [0.4, -10.3, -20.2], "C1": [500, 0, 0]})
    np.testing.assert_allclose(xyz[0], [-6.0, -14, -22])
    assert atlas_regions(xyz, str(tmp_path / "atlas.nii.gz")) == ["one", "two", ""]


def test_bad_input_messages():
    with pytest.raises(DatasetError, match=r"preprocess.ieeg.reference' is 'car'.*bipolar, average, laplacian, none"):
        ieeg_settings({"ieeg": {"reference": "car"}})
    raw, times, _ = _recording()
    raw.resample(250.0, verbose=False)
    with pytest.raises(DatasetError, match=r"'sub-01_ieeg.edf' is sampled at 250 Hz.*band: null"):
        preprocess_raw(raw, DEFAULT_IEEG, "sub-01_ieeg.edf")
    with pytest.raises(DatasetError, match=r"rec.edf: 1 events fall outside the recording of 2 s.*'onset'"):
        epoch_bins(np.zeros((2, 400)), 200.0, np.array([0.5, 1.9]), (0.0, 0.2), 0.025, "rec.edf")
    with pytest.raises(DatasetError, match=r"electrodes 'e.tsv' column 'name' lists \['LZ9'\].*'c.tsv'"):
        check_electrodes({"LA1": "SEEG"}, ["LA1", "LZ9"], "c.tsv", "e.tsv")
    with pytest.raises(DatasetError, match=r"SEEG/ECoG channels \['LA2'\] \(1 in all\) without coordinates in electrodes 'e.tsv'"):
        check_electrodes({"LA1": "SEEG", "LA2": "SEEG", "DC1": "TRIG"}, ["LA1"], "c.tsv", "e.tsv")
