"""Tests of brainalign.datasets.confounds against nilearn's own fMRIPrep interface."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy
from nilearn.interfaces.fmriprep.load_confounds_strategy import preset_strategies

from brainalign.datasets.confounds import (
    DEFAULT_CONFOUNDS,
    STRATEGIES,
    check_confounds,
    needs_confounds,
    select_confounds,
)
from brainalign.datasets.registry import DatasetError

from tests._fmriprep_files import MOTION, write_fmriprep_tree

REPO = Path(__file__).resolve().parents[1]
N_DUMMY = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """One fMRIPrep run: 40 volumes, 3 non-steady-state volumes, one motion spike."""
    tree = write_fmriprep_tree(
        tmp_path_factory.mktemp("fmriprep"),
        subjects=("01",),
        sessions=None,
        runs_per_session=(1,),
        n_volumes=40,
        n_dummy=N_DUMMY,
        fd_spikes=1,
        seed=3,
    )
    return tree["subjects"]["01"]["runs"][0]


def _table(run) -> pd.DataFrame:
    return pd.read_csv(run["confounds"], sep="\t", na_values=["n/a"])


def _copy_run(run, tmp_path: Path, drop=(), keep_json=True) -> dict:
    """The run's BOLD name and confounds in tmp_path, without the columns in ``drop``."""
    bold = tmp_path / Path(run["bold"]).name
    bold.touch()
    conf = tmp_path / Path(run["confounds"]).name
    _table(run).drop(columns=list(drop)).to_csv(conf, sep="\t", index=False, na_rep="n/a")
    if keep_json:
        shutil.copy(Path(run["confounds"]).with_suffix(".json"), conf.with_suffix(".json"))
    return {**run, "bold": bold, "confounds": conf}


# ----------------------------------------------------------------------------- the tree
def test_tree_confounds_look_like_fmriprep(run):
    table = _table(run)
    assert table.shape == (40, len(table.columns)) and len(table.columns) > 100
    first = table.iloc[0]
    for name in (
        "trans_x_derivative1",
        "rot_z_derivative1_power2",
        "csf_derivative1",
        "framewise_displacement",
        "dvars",
        "std_dvars",
        "rmsd",
    ):
        assert np.isnan(first[name]) and np.isfinite(table[name].iloc[1:]).all()
    assert np.isfinite(first[["trans_x", "trans_x_power2", "white_matter", "a_comp_cor_00"]]).all()
    nss = table.filter(like="non_steady_state_outlier").to_numpy()
    assert nss.shape[1] == N_DUMMY and (np.flatnonzero(nss.sum(axis=1)) == range(N_DUMMY)).all()
    assert "n/a" in Path(run["confounds"]).read_text().splitlines()[1].split("\t")


def test_strategies_are_nilearns_presets():
    assert {
        name: {**p, "strategy": tuple(p["strategy"])} for name, p in STRATEGIES.items()
    } == preset_strategies


def test_default_is_the_schemas_conservative_strategy():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    default = schema["properties"]["preprocess"]["properties"]["confounds"]["default"]
    assert default == DEFAULT_CONFOUNDS
    assert set(DEFAULT_CONFOUNDS["strategy"]) == {
        "motion",
        "wm_csf",
        "high_pass",
        "non_steady_state",
    }
    assert needs_confounds(DEFAULT_CONFOUNDS) and needs_confounds("simple")
    assert not needs_confounds([])


# ----------------------------------------------------------------------------- against nilearn
SPECS = [
    "simple",
    "scrubbing",
    "compcor",
    DEFAULT_CONFOUNDS,
    {"strategy": ["motion", "compcor", "high_pass"], "compcor": "anat_separated", "n_compcor": 3},
    {
        "strategy": ["motion", "compcor", "high_pass"],
        "compcor": "temporal_anat_combined",
        "n_compcor": 2,
    },
    {"strategy": ["global_signal", "wm_csf"], "global_signal": "full", "wm_csf": "derivatives"},
    {"strategy": ["motion", "scrub"], "motion": "power2", "scrub": 0, "fd_threshold": 0.9},
]


def _nilearn(bold, spec):
    if isinstance(spec, str):
        return load_confounds_strategy(str(bold), denoise_strategy=spec)
    return load_confounds(str(bold), **spec)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "spec", SPECS, ids=lambda s: s if isinstance(s, str) else "+".join(s["strategy"])
)
def test_selection_equals_nilearn(run, spec):
    expected, expected_mask = _nilearn(run["bold"], spec)
    matrix, sample_mask, report = select_confounds(
        run["bold"], spec, n_volumes=run["n_volumes"], confounds_file=run["confounds"]
    )
    assert report["columns"] == list(expected.columns) and report["n_columns"] == expected.shape[1]
    assert matrix.shape == (run["n_volumes"], expected.shape[1])
    assert np.allclose(matrix, expected.to_numpy()) and np.isfinite(matrix).all()
    assert np.array_equal(sample_mask, expected_mask)
    assert report["dropped_volumes"] == sorted(set(range(run["n_volumes"])) - set(expected_mask))
    assert report["fmriprep_high_pass"] == any(c.startswith("cosine") for c in expected.columns)


def test_listed_columns_equal_nilearns_motion_derivatives(run):
    """NaN first rows of derivative columns are filled as nilearn fills them (row 1)."""
    columns = [m + s for m in MOTION for s in ("", "_derivative1")]
    matrix, sample_mask, report = select_confounds(
        run["bold"], columns, n_volumes=run["n_volumes"], confounds_file=run["confounds"]
    )
    expected, expected_mask = load_confounds(
        str(run["bold"]), strategy=["motion"], motion="derivatives"
    )
    assert report["columns"] == columns and not report["fmriprep_high_pass"]
    assert np.allclose(matrix, expected[columns].to_numpy())
    assert np.array_equal(sample_mask, expected_mask)


def test_non_steady_state_volumes_are_dropped(run):
    for spec in (DEFAULT_CONFOUNDS, ["csf"], "compcor"):
        _, sample_mask, report = select_confounds(
            run["bold"], spec, n_volumes=run["n_volumes"], confounds_file=run["confounds"]
        )
        assert report["dropped_volumes"] == list(range(N_DUMMY))
        assert sample_mask.tolist() == list(range(N_DUMMY, run["n_volumes"]))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scrubbing_drops_the_motion_spike(run):
    _, sample_mask, report = select_confounds(
        run["bold"], "scrubbing", n_volumes=run["n_volumes"], confounds_file=run["confounds"]
    )
    assert set(run["spikes"]) <= set(report["dropped_volumes"])
    assert not set(run["spikes"]) & set(sample_mask)
    listed = select_confounds(
        run["bold"],
        ["csf", "motion_outlier00"],
        n_volumes=run["n_volumes"],
        confounds_file=run["confounds"],
    )
    assert listed[2]["columns"] == ["csf"]  # outlier columns become the sample mask, as in nilearn
    assert listed[2]["dropped_volumes"] == [*range(N_DUMMY), *run["spikes"]]


def test_leading_nans_filled_with_first_finite_value(run, tmp_path):
    copy = _copy_run(run, tmp_path)
    table = _table(copy)
    table.loc[:1, "csf"] = np.nan  # two leading n/a
    table.to_csv(copy["confounds"], sep="\t", index=False, na_rep="n/a")
    matrix, sample_mask, _ = select_confounds(
        None, ["csf", "dvars"], n_volumes=40, confounds_file=copy["confounds"]
    )
    raw = table[["csf", "dvars"]].to_numpy()
    filled = raw.copy()
    filled[:2, 0], filled[0, 1] = raw[2, 0], raw[1, 1]
    assert np.allclose(matrix, filled - filled[sample_mask].mean(axis=0))


def test_no_confounds(run):
    assert select_confounds(run["bold"], [], n_volumes=run["n_volumes"]) == (
        None,
        None,
        {
            "strategy": "[]",
            "columns": [],
            "n_columns": 0,
            "dropped_volumes": [],
            "fmriprep_high_pass": False,
        },
    )


def test_confounds_found_next_to_the_bold_file(run):
    matrix, _, report = select_confounds(run["bold"], ["trans_x"], n_volumes=run["n_volumes"])
    assert matrix.shape == (run["n_volumes"], 1) and report["columns"] == ["trans_x"]


def test_logs_what_was_regressed(run, caplog):
    with caplog.at_level(logging.INFO, logger="brainalign.datasets.confounds"):
        select_confounds(
            run["bold"],
            DEFAULT_CONFOUNDS,
            n_volumes=run["n_volumes"],
            confounds_file=run["confounds"],
        )
    n_cosines = len([c for c in _table(run).columns if c.startswith("cosine")])
    assert f"regressed {8 + n_cosines} columns" in caplog.text
    assert f"dropped {N_DUMMY} volumes [0, 1, 2]" in caplog.text


# ----------------------------------------------------------------------------- errors
def test_unknown_strategy(run):
    with pytest.raises(
        DatasetError,
        match=r"^config 'preprocess.confounds' names strategy 'simpel', which nilearn's "
        r"load_confounds_strategy does not know; expected one of: compcor, ica_aroma, scrubbing, "
        r"simple \(did you mean 'simple'\?\).*Edit cfg.yaml\.$",
    ):
        check_confounds(run["confounds"], "simpel", source="cfg.yaml")


def test_unknown_column_with_close_matches(run):
    with pytest.raises(
        DatasetError,
        match=r"^confounds '.*_desc-confounds_timeseries.tsv' lacks columns 'trans_xx' \(close: "
        r"trans_x.*\), 'whitematter' \(close: white_matter.*\) that config 'preprocess.confounds' "
        r"\(\[\"trans_xx\", \"csf\", \"whitematter\"\]\) needs; it has \d+ columns\.",
    ):
        check_confounds(run["confounds"], ["trans_xx", "csf", "whitematter"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"strategy": ["motion", "wm-csf"]},
            r"non-empty 'strategy' list of motion, .*; got unknown "
            r"arguments \[\] and strategy \['motion', 'wm-csf'\]",
        ),
        ({"strategy": ["motion"], "motoin": "full"}, r"got unknown arguments \['motoin'\]"),
        (
            {"strategy": ["motion"], "motion": "all"},
            r"'preprocess.confounds.motion' must be one of "
            r"basic, power2, derivatives, full; got 'all'",
        ),
        ({"strategy": ["compcor"]}, r"uses compcor without high_pass"),
        (
            42,
            r"must be a strategy name, a mapping of load_confounds arguments or a list of column "
            r"names; got 42",
        ),
    ],
)
def test_bad_spec(run, spec, message):
    with pytest.raises(DatasetError, match=message):
        check_confounds(run["confounds"], spec)


def test_compcor_needs_the_json(run, tmp_path):
    copy = _copy_run(run, tmp_path, keep_json=False)
    with pytest.raises(
        DatasetError,
        match=r"has no JSON sidecar '.*_desc-confounds_timeseries.json', "
        r"which the compcor strategy needs",
    ):
        check_confounds(copy["confounds"], "compcor")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "drop",
    [
        ["white_matter"],
        ["rot_z_derivative1_power2"],
        ["a_comp_cor_05"],
        ["std_dvars"],
        ["cosine00"],
        ["global_signal_power2"],
    ],
)
def test_header_check_agrees_with_nilearn(run, tmp_path, drop):
    """check_confounds (header only, no nilearn) refuses exactly what nilearn refuses."""
    copy = _copy_run(run, tmp_path, drop=drop)
    for spec in SPECS:
        try:
            _nilearn(copy["bold"], spec)
            nilearn_ok = True
        except (ValueError, KeyError):
            nilearn_ok = False
        try:
            check_confounds(copy["confounds"], spec)
            ours_ok = True
        except DatasetError:
            ours_ok = False
        assert ours_ok == nilearn_ok, (drop, spec)


def test_rows_must_match_volumes(run):
    with pytest.raises(
        DatasetError, match=r"confounds '.*' has 40 rows but BOLD '.*' has 41 volumes"
    ):
        select_confounds(run["bold"], ["csf"], n_volumes=41, confounds_file=run["confounds"])


def test_missing_values_inside_a_column(run, tmp_path):
    copy = _copy_run(run, tmp_path)
    table = _table(copy)
    table.loc[10, "csf"] = np.nan
    table.to_csv(copy["confounds"], sep="\t", index=False, na_rep="n/a")
    with pytest.raises(
        DatasetError, match=r"column \['csf'\] has missing values after its first rows"
    ):
        select_confounds(None, ["csf"], n_volumes=40, confounds_file=copy["confounds"])


def test_json_sidecar_is_fmriprep_like(run):
    meta = json.loads(Path(run["confounds"]).with_suffix(".json").read_text())
    masks = {meta[k]["Mask"] for k in meta if k.startswith("a_comp_cor")}
    assert masks == {"combined", "CSF", "WM"} and meta["dropped_0"]["Retained"] is False


def test_full_ica_aroma_needs_the_aroma_image(run, tmp_path):
    with pytest.raises(
        DatasetError,
        match=r"^BOLD '.*desc-preproc_bold.nii.gz' is not fMRIPrep's ICA-AROMA output, which config "
        r"'preprocess.confounds' \(ica_aroma, full\) needs; set 'dataset.desc: smoothAROMAnonaggr'",
    ):
        select_confounds(run["bold"], "ica_aroma", n_volumes=40, confounds_file=run["confounds"])
    aroma = tmp_path / Path(run["bold"]).name.replace("desc-preproc", "desc-smoothAROMAnonaggr")
    aroma.touch()
    shutil.copy(run["confounds"], tmp_path)
    shutil.copy(Path(run["confounds"]).with_suffix(".json"), tmp_path)
    expected, expected_mask = load_confounds_strategy(str(aroma), denoise_strategy="ica_aroma")
    matrix, sample_mask, report = select_confounds(aroma, "ica_aroma", n_volumes=40)
    assert report["columns"] == list(expected.columns) == ["cosine00", "csf", "white_matter"]
    assert np.allclose(matrix, expected.to_numpy()) and np.array_equal(sample_mask, expected_mask)
