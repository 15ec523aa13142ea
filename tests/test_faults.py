"""Data and config faults never pass silently: each is counted and handled, or stops the run
with one line naming the file or key, what was expected, what was found and the fix.

Bad inputs are written with the real writers (nibabel NIfTI, pandas TSV with n/a, the demo's
stimuli writer, the fMRIPrep tree writer of the tests). Faults already pinned elsewhere:
NaN in a third of an ROI's voxels for 2 TRs stops preprocessing (test_formats_workflow),
flagged units are left out of fits, maps, ROI means and FDR (test_encoding_steps*), the
per-ROI flagged share and its threshold (test_datasets_bids_reader).
"""

from __future__ import annotations

import logging
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from brainalign.datasets.confounds import select_confounds
from brainalign.datasets.confounds_rank import reduce_confounds
from brainalign.datasets.registry import DatasetError
from brainalign.datasets.stimuli_checks import check_spans
from brainalign.datasets.units import check_flagged_share, roi_masks_from_sets, unit_qc
from brainalign.encoding import fit_encoding
from brainalign.datasets.stimuli_checks import check_encoding_config
from brainalign.encoding.stats import permutation_test
from brainalign.gitinfo import _git_dir, _read_commit, git_info
from brainalign.preprocess import clean_run, mask_run

from .conftest import REPO


# ----------------------------------------------------------------------------- NaN / dead units
def _write_bold(tmp_path, data):
    import nibabel as nib

    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    bold = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), bold)
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(data.shape[:3], np.uint8), affine), mask)
    return bold, mask, nib.load(mask)


def test_nan_inf_and_dead_voxels_are_flagged_zeroed_and_counted(tmp_path, caplog):
    """All-NaN, 3 NaN TRs, one infinite TR, constant over the run, constant over the kept
    volumes only: each flagged (never filled by nilearn's masking), 0 in the output."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 4, 2, 30)) + 100.0  # 24 voxels, 30 volumes
    data[0, 0, 0] = np.nan
    data[0, 1, 0, [4, 9, 17]] = np.nan
    data[0, 2, 0, 11] = np.inf
    data[0, 3, 0] = 100.0
    data[1, 0, 0, 2:] = 7.0  # constant once the first two volumes are dropped
    bold, mask_file, mask_img = _write_bold(tmp_path, data)
    masked = mask_run(bold, mask_img, mask_file)
    assert np.isnan(masked[:, 0]).all() and np.isnan(masked[:, 2]).sum() == 3  # not 0
    with caplog.at_level(logging.WARNING):
        cleaned, qc = clean_run(masked, None, np.arange(2, 30), tr=2.0)
    # C order of the mask: voxel (i, j, k) -> i * 8 + j * 2 + k
    assert qc["nan_units"] == [0, 2, 4] and qc["constant_units"] == [6, 8]
    assert np.all(cleaned[:, [0, 2, 4, 6, 8]] == 0) and np.isfinite(cleaned).all()
    assert np.allclose(cleaned[:, 1].std(ddof=1), 1.0)
    assert "3 units with NaN / infinite values and 2 constant units" in caplog.text


def test_flagged_share_over_the_threshold_names_subject_task_roi_and_run():
    arrays, meta = roi_masks_from_sets({"language": np.arange(20) < 10,
                                        "visual": np.arange(20) >= 10}, 20)
    meta.update(subject="01", task="movie",
                qc={"flagged_units": [0, 1], "runs": [{"run": 1, "nan_units": []},
                                                      {"run": 2, "nan_units": [0, 1]}]})
    table = unit_qc(arrays, meta)
    assert table.set_index("roi").loc["language", "n_flagged"] == 2
    with pytest.raises(ValueError, match=r"^sub-01 task movie ROI language: 2 of 10 units \(20%\) "
                       r"have NaN or constant signal \(in run\(s\) 2\), more than config "
                       r"'preprocess.max_flagged_share' 0.1; check .* or raise the threshold.$"):
        check_flagged_share(table, 0.1)


# ----------------------------------------------------------------------------- confounds
def test_degenerate_and_collinear_confounds_are_reduced_not_inverted():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 3))
    matrix = np.column_stack([base, np.full(40, 2.0), base[:, 0] + base[:, 1], base[:, 2],
                              np.full(40, np.nan)])
    matrix[:3, 3] = 5.0  # constant only over the kept volumes 3..39
    names = ["a", "b", "c", "const", "a_plus_b", "c_again", "empty"]
    kept, columns, dropped = reduce_confounds(matrix, names, np.arange(3, 40), "conf.tsv")
    assert dropped == {"not_finite": ["empty"], "constant": ["const"],
                       "collinear": ["a_plus_b", "c_again"]}
    assert columns == ["a", "b", "c"] and kept.shape == (40, 3)
    finite = matrix[3:, :6] - matrix[3:, :6].mean(axis=0)  # numpy's SVD rank as reference
    assert np.linalg.matrix_rank(kept[3:]) == np.linalg.matrix_rank(finite) == 3


def test_an_all_na_confound_column_is_dropped_with_a_log_line(tmp_path, caplog):
    rng = np.random.default_rng(2)
    table = pd.DataFrame(rng.standard_normal((25, 3)), columns=["trans_x", "trans_y", "csf"])
    table["csf"] = np.nan
    path = tmp_path / "sub-01_task-movie_desc-confounds_timeseries.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    with caplog.at_level(logging.WARNING):
        matrix, _, report = select_confounds(None, ["trans_x", "trans_y", "csf"], n_volumes=25,
                                             confounds_file=path)
    assert report["columns"] == ["trans_x", "trans_y"] and matrix.shape == (25, 2)
    assert "columns ['csf'] are all n/a; dropped" in caplog.text


# ----------------------------------------------------------------------------- config time
def _demo_config():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["dataset"]["tasks"] = {"naturalistic": {"kind": "naturalistic"}}
    return config


def test_fir_delays_longer_than_a_run_stop_before_any_job():
    config = _demo_config()
    config["encoding"]["delays"] = [1, 2, 200]
    with pytest.raises(ValueError, match=r"^config 'encoding.delays' must be shorter than every "
                       r"naturalistic run \(200 TRs in config 'demo.n_trs'\); got delays \[1, 2, "
                       r"200\]\. Use delays of a few TRs"):
        check_encoding_config(config, "config.yaml")


@pytest.mark.parametrize("block", [200, 100, 67])
def test_a_permutation_block_as_long_as_a_run_stops_before_any_job(block):
    """2 runs of 200 TRs: blocks of 200, 100 or 67 TRs give 1, 4 or 36 orders (36 passes)."""
    config = _demo_config()
    config["encoding"]["block_size"] = block
    if block == 67:
        check_encoding_config(config, "config.yaml")
        return
    with pytest.raises(ValueError, match=r"^config 'encoding.block_size' must cut the runs "
                       rf"\(\[200, 200\] TRs in config 'demo.n_trs'\) into blocks .* got {block} "
                       r"\(blocks per run .*\)\. Use shorter blocks"):
        check_encoding_config(config, "config.yaml")


def test_a_run_length_from_runs_tsv_is_checked(tmp_path):
    config = _demo_config()
    config["dataset"]["format"] = "bids"
    config["stimuli"]["root"] = str(tmp_path)
    (tmp_path / "naturalistic").mkdir()
    pd.DataFrame({"run": [1, 2], "tr": [2.0, 2.0], "n_trs": [120, 3]}).to_csv(
        tmp_path / "naturalistic" / "runs.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"\(3 TRs in '.*runs.tsv' \(column n_trs\)\)"):
        check_encoding_config(config, "config.yaml")


def test_block_permutation_that_cannot_reach_005_is_refused_at_run_time():
    rng = np.random.default_rng(0)
    X, Y, runs = rng.standard_normal((60, 3)), rng.standard_normal((60, 2)), np.repeat([1, 2], 30)
    result = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=[1.0, 10.0], delays=(1,))
    with pytest.raises(ValueError, match=r"'block_size' 30 leaves runs of \[30, 30\] samples"):
        permutation_test(result, X, Y, kind="timeseries", groups=runs, n_permutations=10,
                         block_size=30)


def test_sentence_spans_that_miss_the_concept_word_stop_before_any_job(tmp_path):
    from brainalign.demo.stimuli import make_demo_stimuli

    root = make_demo_stimuli(tmp_path / "stim", n_concepts=4, n_contexts=2, n_runs=1, n_trs=30,
                             image_size=16)
    check_spans(root)  # the demo's own spans select their words
    sentences = pd.read_csv(root / "sentences.tsv", sep="\t")
    sentences[["char_start", "char_end"]] += 2  # shifted by two characters
    sentences.to_csv(root / "sentences.tsv", sep="\t", index=False)
    concept = sentences["concept"].iloc[0]
    with pytest.raises(ValueError, match=rf"^stimuli '.*sentences.tsv' row 2: span \[\d+, \d+\) "
                       rf"selects '.*', expected the concept '{concept}' \(8 of 8 rows miss it\); "
                       r"fix char_start / char_end"):
        check_spans(root)


def test_word_spans_of_the_transcript_are_checked(tmp_path):
    from brainalign.demo.stimuli import make_demo_stimuli

    root = make_demo_stimuli(tmp_path / "stim", n_concepts=4, n_contexts=2, n_runs=1, n_trs=30,
                             image_size=16)
    words = pd.read_csv(root / "naturalistic" / "words.tsv", sep="\t", keep_default_na=False)
    words.loc[5, "char_end"] += 1
    words.to_csv(root / "naturalistic" / "words.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"words.tsv' row 7: .*expected the word"):
        check_spans(root)


# ----------------------------------------------------------------------------- ROIs
def test_a_configured_roi_with_no_voxel_stops_preprocessing(tmp_path):
    from brainalign.datasets.bids_preprocess import _volume_geometry

    from ._fmriprep_files import write_fmriprep_tree

    tree = write_fmriprep_tree(tmp_path, subjects=("01",), sessions=None, runs_per_session=(1,),
                               n_volumes=12, atlas="demo", n_acompcor=2)
    labels = next(tmp_path.glob("*atlas-demo_dseg.tsv"))
    table = pd.read_csv(labels, sep="\t")
    table.loc[len(table)] = [99, "amygdala"]  # listed, but no voxel carries it
    table.to_csv(labels, sep="\t", index=False)
    atlas = next(tmp_path.glob("*atlas-demo_dseg.nii.gz"))
    mask = next(tmp_path.glob("sub-01/anat/*desc-brain_mask.nii.gz"))
    inputs = {"atlas": str(atlas), "labels": str(labels), "mask": str(mask),
              "bold": [str(p) for p in tmp_path.glob("sub-01/func/*desc-preproc_bold.nii.gz")]}
    assert tree["root"]
    with pytest.raises(DatasetError, match=r"^atlas '.*' within mask '.*': ROI \['amygdala'\] has "
                       r"no voxel or vertex; expected at least one in every ROI of config "
                       r"'dataset.rois'\. Remove it"):
        _volume_geometry(inputs, [table["name"].iloc[0], "amygdala"])
    with pytest.raises(DatasetError, match=r"have no ROI \['nowhere'\]"):
        _volume_geometry(inputs, ["nowhere"])


# ----------------------------------------------------------------------------- git commit
def test_git_commit_is_found_from_a_work_folder_outside_the_checkout(tmp_path):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    info = git_info(tmp_path)  # the work folder: no checkout there
    assert info["commit"] == head and info["source"] == "git"
    assert _read_commit(_git_dir(REPO)) == head  # without git, from the repository files


def test_git_commit_is_read_from_packed_refs_without_git(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    (repo / "f").write_text("x")
    subprocess.run([*run, "add", "f"], check=True)
    subprocess.run([*run, "commit", "-qm", "x"], check=True)
    subprocess.run([*run, "pack-refs", "--all"], check=True)
    head = subprocess.run([*run, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert _read_commit(_git_dir(repo)) == head
    assert git_info(repo)["commit"] == head and git_info(repo)["checkout"] == str(repo)


def test_validate_config_runs_the_fault_checks_before_any_job():
    from brainalign.config import ConfigError, validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["encoding"]["block_size"] = 200
    with pytest.raises(ConfigError, match=r"^config 'encoding.block_size' must cut the runs"):
        validate_config(config)
