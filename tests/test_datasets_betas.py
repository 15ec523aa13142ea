"""Single-trial betas (LSA, LSS): nilearn's FirstLevelModel as reference, planted truth, errors."""

from __future__ import annotations

import gc
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix

from brainalign.datasets.betas import check_events, estimate_betas, read_events
from brainalign.datasets.registry import DatasetError

TR = 2.0
SHAPE = (7, 8, 9)
STIMULUS_TYPES = ["word", "picture", "sound"]
PEAK = 0.3349  # peak of a 1 s event's glover regressor sampled at TR 2 s (nilearn's scaling)
# nilearn's column of a trial's beta, per HRF model (written here, not taken from the module)
MAIN_COLUMN = {"glover": "{}", "spm + derivative": "{}", "glover + derivative + dispersion": "{}",
               "fir": "{}_delay_0"}


def mixed_run(seed: int, n_scans: int = 150) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """An event-related run with three stimulus types, button presses and two confounds.

    Returns standardized data (n_scans, 504 voxels), the events in shuffled file order
    (20 stimulus trials: 10 words, 9 pictures and one sound, whose LSS design has no
    'other trials' regressor; 4 presses) and the confounds (n_scans, 2).
    """
    rng = np.random.default_rng(seed)
    onsets = 4.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(4.0, 12.0, 23))])
    kinds = np.array(["word"] * 10 + ["picture"] * 9 + ["sound"] + ["button"] * 4)
    rng.shuffle(kinds)
    events = pd.DataFrame({
        "onset": onsets, "duration": rng.choice([0.0, 1.0, 1.5], 24), "trial_type": kinds,
        "concept": [f"c{i % 7}" if kind != "button" else "n/a" for i, kind in enumerate(kinds)],
        "response_time": rng.uniform(0.3, 1.0, 24),
    }).sample(frac=1.0, random_state=seed)
    confounds = rng.standard_normal((n_scans, 2))
    data = rng.standard_normal((n_scans, int(np.prod(SHAPE)))).cumsum(axis=0) * 0.1
    data += rng.standard_normal(data.shape)
    return (data - data.mean(0)) / data.std(0), events, confounds


def first_level(data: np.ndarray, events: pd.DataFrame, confounds: np.ndarray, hrf_model: str,
                drift_model: str | None) -> FirstLevelModel:
    """nilearn's FirstLevelModel (OLS, no scaling) fitted on ``data`` as a 7x8x9 NIfTI."""
    mask = np.ones(SHAPE, dtype=bool)
    volume = np.zeros((*SHAPE, data.shape[0]))
    volume[mask] = data.T
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    model = FirstLevelModel(
        t_r=TR, noise_model="ols", signal_scaling=False, hrf_model=hrf_model,
        drift_model=drift_model, high_pass=0.01, mask_img=nib.Nifti1Image(mask.astype(np.int8), affine),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.freeze()  # nilearn calls gc.collect on every image load: cheap on a frozen heap
        try:
            model.fit(nib.Nifti1Image(volume, affine), events=events[["onset", "duration", "trial_type"]],
                      confounds=pd.DataFrame(confounds, columns=["conf_a", "conf_b"]))
        finally:
            gc.unfreeze()
    return model


def effect(model: FirstLevelModel, column: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.compute_contrast(column, output_type="effect_size").get_fdata()[np.ones(SHAPE, bool)]


def stimulus_trials(events: pd.DataFrame) -> pd.DataFrame:
    """The stimulus trials in onset order (the reference's own ordering)."""
    return events[events["trial_type"] != "button"].sort_values("onset")


def nilearn_lss(data, events, confounds, hrf_model, drift_model) -> np.ndarray:
    """nilearn's LSS loop (plot_beta_series): per trial, relabel it and fit a FirstLevelModel."""
    betas = []
    for row in stimulus_trials(events).index:
        relabelled = events.copy()
        relabelled.loc[row, "trial_type"] = "target__000"
        model = first_level(data, relabelled, confounds, hrf_model, drift_model)
        betas.append(effect(model, MAIN_COLUMN[hrf_model].format("target__000")))
    return np.array(betas)


def nilearn_lsa(data, events, confounds, hrf_model, drift_model) -> np.ndarray:
    """nilearn's LSA: one FirstLevelModel with a condition per stimulus trial."""
    relabelled = events.copy()
    names = {row: f"trial__{i:03d}" for i, row in enumerate(stimulus_trials(events).index)}
    relabelled.loc[list(names), "trial_type"] = list(names.values())
    model = first_level(data, relabelled, confounds, hrf_model, drift_model)
    return np.array([effect(model, MAIN_COLUMN[hrf_model].format(name)) for name in names.values()])


@pytest.mark.parametrize(
    ("hrf_model", "drift_model"),
    [("glover", "cosine"), ("spm + derivative", "polynomial"),
     ("glover + derivative + dispersion", "cosine"), ("fir", None)],
)
def test_fast_lss_equals_nilearn_per_trial_loop(hrf_model, drift_model):
    data, events, confounds = mixed_run(seed=1)
    betas, trials = estimate_betas(
        data, events, tr=TR, method="lss", hrf_model=hrf_model, drift_model=drift_model,
        trial_types=STIMULUS_TYPES, confounds=confounds,
    )
    reference = nilearn_lss(data, events, confounds, hrf_model, drift_model)
    assert betas.shape == (20, 504) and betas.dtype == np.float32
    # relative to the largest beta (float32 output: rounding alone is 6e-8); measured 3.5e-8 to 4.1e-8
    assert np.abs(betas - reference).max() <= 1e-6 * max(1.0, np.abs(reference).max())
    assert set(trials["trial_type"]) == set(STIMULUS_TYPES)
    expected = stimulus_trials(events)
    np.testing.assert_array_equal(trials["onset"], expected["onset"])
    assert trials["stimulus"].tolist() == expected["concept"].tolist()
    assert list(trials.columns) == ["stimulus", "onset", "duration", "trial_type"]


@pytest.mark.parametrize("hrf_model", ["glover", "spm + derivative"])
def test_lsa_equals_nilearn_first_level_model(hrf_model):
    data, events, confounds = mixed_run(seed=2)
    betas, _ = estimate_betas(data, events, tr=TR, method="lsa", hrf_model=hrf_model,
                              trial_types=STIMULUS_TYPES, confounds=confounds)
    reference = nilearn_lsa(data, events, confounds, hrf_model, "cosine")
    # relative to the largest beta, as for LSS; measured 3.0e-8 (glover), 3.3e-8 (spm + derivative)
    assert np.abs(betas - reference).max() <= 1e-6 * max(1.0, np.abs(reference).max())


def planted_run(seed: int, isi: tuple[float, float], cnr: float, n_trials: int = 40, n_units: int = 300):
    """Event-related BOLD with planted single-trial patterns (20 concepts x 2 trials).

    Each trial's true pattern is its concept's pattern plus trial variability (sd 0.3);
    the BOLD is the sum of the trials' glover regressors scaled by their patterns, a
    baseline and white noise of sd ``PEAK / cnr`` (``cnr``: contrast-to-noise ratio of
    one trial's response peak, with pattern sd 1).
    """
    rng = np.random.default_rng(seed)
    onsets = 6.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(*isi, n_trials - 1))])
    n_scans = int(np.ceil((onsets[-1] + 24.0) / TR))
    concepts = rng.permutation(np.repeat(np.arange(n_trials // 2), 2))
    truth = rng.standard_normal((n_trials // 2, n_units))[concepts]
    truth += 0.3 * rng.standard_normal((n_trials, n_units))
    names = [f"t{i:03d}" for i in range(n_trials)]
    single = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": names})
    frame_times = np.arange(n_scans) * TR
    regressors = make_first_level_design_matrix(frame_times, single, drift_model=None)[names].to_numpy()
    bold = regressors @ truth + 100.0 + PEAK / cnr * rng.standard_normal((n_scans, n_units))
    events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": "word",
                           "concept": [f"concept{c:02d}" for c in concepts]})
    return bold, events, truth


def pattern_correlation(betas: np.ndarray, truth: np.ndarray) -> float:
    """Mean over trials of the correlation across units of estimated and true patterns."""
    b = betas - betas.mean(1, keepdims=True)
    t = truth - truth.mean(1, keepdims=True)
    return float(np.mean((b * t).sum(1) / np.sqrt((b * b).sum(1) * (t * t).sum(1))))


@pytest.mark.parametrize("method", ["lss", "lsa"])
def test_betas_recover_planted_single_trial_patterns(method):
    # measured (seeds 0-4, ISI 4-8 s, CNR 2): LSS r = 0.870 [0.867, 0.875], LSA r = 0.893 [0.888, 0.899]
    bold, events, truth = planted_run(seed=0, isi=(4.0, 8.0), cnr=2.0)
    shuffled = events.sample(frac=1.0, random_state=0)
    betas, trials = estimate_betas(bold, shuffled, tr=TR, method=method)
    assert trials["stimulus"].tolist() == events["concept"].tolist()
    assert pattern_correlation(betas, truth) > 0.8
    assert abs(pattern_correlation(betas, np.roll(truth, 1, axis=0))) < 0.2


def test_lss_no_worse_than_lsa_under_collinearity():
    # ISI 2-3 s at TR 2 s, CNR 1; measured over seeds 0-4: LSS r = 0.619 [0.607, 0.627],
    # LSA r = 0.360 [0.338, 0.383]. (With CNR 4, LSA wins: 0.823 vs 0.691; Mumford 2012.)
    scores = {"lss": [], "lsa": []}
    for seed in range(3):
        bold, events, truth = planted_run(seed=seed, isi=(2.0, 3.0), cnr=1.0)
        for method, values in scores.items():
            values.append(pattern_correlation(estimate_betas(bold, events, tr=TR, method=method)[0], truth))
    assert all(lss >= lsa for lss, lsa in zip(scores["lss"], scores["lsa"])), scores
    assert np.mean(scores["lss"]) > 0.55


EVENTS = pd.DataFrame({"onset": [2.0, 10.0], "duration": [1.0, 1.0],
                       "trial_type": ["word", "word"], "concept": ["apple", "chair"]})


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda t: t.drop(columns="onset"), {},
         r"^events 'sub-01_events.tsv' must have an 'onset' column; got columns "
         r"\['duration', 'trial_type', 'concept'\]; add it"),
        (lambda t: t.drop(columns="duration"), {}, r"must have a 'duration' column; got columns"),
        (lambda t: t.drop(columns="concept"), {},
         r"must have a 'concept' column; .* set preprocess.betas.stimulus_column"),
        (lambda t: t.assign(onset=["2.0", "soon"]), {},
         r"column 'onset' must hold numbers of seconds >= 0; got 'soon' in data row 2"),
        (lambda t: t.assign(onset=[-1.0, 2.0]), {}, r"column 'onset' .* got -1.0 in data row 1"),
        (lambda t: t.assign(duration=[np.nan, 2.0]), {}, r"column 'duration' .* got nan in data row 1"),
        (lambda t: t, {"trial_types": ["picture"]},
         r"no stimulus trial: preprocess.betas.trial_types \['picture'\] matches none of its "
         r"trial_type values \['word'\]"),
        (lambda t: t.iloc[:0], {}, r"no stimulus trial: it has no rows"),
        (lambda t: t.drop(columns="trial_type"), {"trial_types": ["word"]},
         r"has no 'trial_type' column, but preprocess.betas.trial_types is \['word'\]"),
        (lambda t: t.assign(concept=["apple", ""]), {}, r"column 'concept' is empty in data row 2"),
    ],
)
def test_check_events_errors_are_one_line(change, kwargs, message):
    with pytest.raises(DatasetError, match=message) as error:
        check_events(change(EVENTS), "sub-01_events.tsv", stimulus_column="concept", **kwargs)
    assert "\n" not in str(error.value)


def test_check_events_cleans_and_sorts():
    table = EVENTS.iloc[::-1].drop(columns="trial_type").assign(onset=["10", "2.5"])
    clean = check_events(table, "e.tsv", stimulus_column="concept", trial_types=None)
    assert clean["onset"].tolist() == [2.5, 10.0]
    assert clean["trial_type"].tolist() == ["stimulus", "stimulus"]
    assert clean["concept"].tolist() == ["apple", "chair"]


def test_read_events_reads_bids_tsv(tmp_path):
    path = tmp_path / "sub-01_task-words_run-1_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tconcept\tresponse_time\n"
                    "12.0\t1.0\tword\tnull\tn/a\n3\t0\tbutton\tn/a\t0.5\n")
    events = read_events(path, stimulus_column="concept", trial_types=["word"])
    assert events["concept"].tolist()[1] == "null" and pd.isna(events["concept"].tolist()[0])
    message = r"column 'concept' is empty in data row 2, a stimulus trial \(trial_type 'button'\)"
    with pytest.raises(DatasetError, match=message):
        read_events(path, stimulus_column="concept", trial_types=["button"])


def test_estimate_betas_bad_input():
    data = np.zeros((20, 5))
    late = r"trial at onset 50 s, after the end of its run \(20 scans x TR 2 s = 40 s\); pair each"
    with pytest.raises(DatasetError, match=late):
        estimate_betas(data, EVENTS.assign(onset=[2.0, 50.0]), tr=TR, events_file="e.tsv")
    many = pd.DataFrame({"onset": np.arange(45) * 1.0, "duration": 1.0, "concept": "a"})
    with pytest.raises(DatasetError, match=r"'lsa' needs at most one regressor per scan; got \d+ regressors "
                                           r"for 40 scans; use method: lss"):
        estimate_betas(np.zeros((40, 5)), many, tr=TR, method="lsa")
    with pytest.raises(ValueError, match=r"betas.method must be one of \['lss', 'lsa'\]; got 'lsx'"):
        estimate_betas(data, EVENTS, tr=TR, method="lsx")
    with pytest.raises(ValueError, match=r"confounds must have one row per scan \(20\); got shape \(19, 2\)"):
        estimate_betas(data, EVENTS, tr=TR, confounds=np.zeros((19, 2)))
