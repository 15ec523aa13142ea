"""Each real dataset format through the whole workflow, recovering planted truth.

The datasets are written in exactly the distributed formats (Pereira 2018 ``.mat`` files,
an fMRIPrep derivatives tree, event-related BOLD with ``events.tsv``, fsaverage GIfTI
surfaces) with responses planted from a tiny BERT's features in one ROI (the ``language``
network) and noise elsewhere; the workflow runs with that same tiny BERT.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ._format_study import planted, roi_scores, study_config, study_stimuli, tiny_features, write_study_config
from .conftest import snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def _run(workdir: Path, config: dict, *args: str, check: bool = True):
    path = write_study_config(workdir, config)
    return snakemake(workdir, "--configfile", str(path), "--cores", "2", *args, check=check)


# ----------------------------------------------------------------------------- Pereira
def _pereira_dataset(root: Path, stimuli: Path, subjects: list[str], rng) -> None:
    from ._pereira_files import write_pereira_mat

    concepts, meta = tiny_features(stimuli, "concepts", root)
    names = list(meta["stimuli"])
    shape = (9, 8, 7)
    ijk = np.argwhere(np.ones(shape, dtype=bool))
    for s, subject in enumerate(subjects):
        keep = np.sort(rng.choice(len(ijk), 300, replace=False))  # each subject its own voxels
        sub_ijk = ijk[keep]
        columns = np.arange(len(keep))
        lang_l, lang_r, visual = columns[:60], columns[60:120], columns[120:180]
        examples = rng.standard_normal((len(names), len(keep)))
        examples[:, lang_l] += 1.5 * planted(concepts, len(lang_l), seed=10 + s)
        order = rng.permutation(len(names))  # the file's own concept order
        atlases = {"languageLH": {"LIFG": lang_l[:30], "LMTG": lang_l[30:]},
                   "languageRH": {"RIFG": lang_r}, "visual": {"V": visual}}
        write_pereira_mat(root / subject / "data_180concepts_sentences.mat", examples[order],
                          [names[i] for i in order], sub_ijk, shape, atlases)


def test_pereira_files_recover_the_planted_network(tmp_path):
    rng = np.random.default_rng(0)
    stimuli = study_stimuli(tmp_path / "stimuli")
    subjects = ["M01", "P01"]
    _pereira_dataset(tmp_path / "pereira", stimuli, subjects, rng)
    dataset = {"format": "pereira", "root": str(tmp_path / "pereira"), "subjects": subjects,
               "tasks": {"sentences": {"kind": "concepts", "conditions": ["sentence"]}},
               "rois": ["languageLH", "languageRH", "visual"]}
    _run(tmp_path, study_config(dataset, stimuli))
    scores = roi_scores(tmp_path).groupby("roi")["mean_r"].mean()
    assert scores["languageLH"] > 0.4, scores
    assert abs(scores["languageRH"]) < 0.15 and abs(scores["visual"]) < 0.15, scores
    rsa = pd.read_parquet(tmp_path / "results/group/rsa_task-sentences_subjects.parquet")
    rsa = rsa[rsa["layer"] == 2].groupby("roi")["score"].mean()
    assert rsa["languageLH"] > 0.3 and abs(rsa["visual"]) < 0.15, rsa
    _pereira_bad_inputs(tmp_path, dataset, stimuli)


def _pereira_bad_inputs(tmp_path: Path, dataset: dict, stimuli: Path) -> None:
    """Concepts of the .mat files that the stimuli folder lacks stop the run before any job."""
    from brainalign.io import read_table, write_table

    concepts = read_table(stimuli / "concepts.tsv")
    write_table(concepts.iloc[1:], stimuli / "concepts.tsv")
    workdir = tmp_path / "bad"
    workdir.mkdir()
    proc = _run(workdir, study_config(dataset, stimuli), "--dry-run", check=False)
    assert proc.returncode != 0
    lacking = re.escape(repr(concepts["concept"].iloc[0]))
    pattern = rf"Pereira file '.*M01/data_180concepts_sentences.mat' has 1 concepts that the stimuli's concepts.tsv lacks \(e.g. {lacking}\)"
    assert re.search(pattern, proc.stdout + proc.stderr), proc.stdout[-2000:]
    assert not (workdir / "results").exists()
