# Configuration validation, wildcard constraints and the input functions of every rule.
import re

from brainalign.config import (
    CONDITION_MODALITIES,
    model_conditions,
    validate_config,
)

config = validate_config(
    config, source="the configuration (config/config.yaml or --configfile)"
)
SEED = config["seed"]
DATASET = config["dataset"]
STIMULI = config["stimuli"]["root"]
SUBJECTS = DATASET["subjects"]
TASKS = DATASET["tasks"]
ROIS = DATASET["rois"]
RUNS = {
    "concepts": DATASET["concept_runs"],
    "naturalistic": DATASET["naturalistic_runs"],
}
FORMATS = config["figures"]["formats"]
# What each stage contributes to the result bundle: the stage's rule file appends its
# group tables and figures here, and make_bundle collects them.
BUNDLE_TABLES = []
BUNDLE_FIGURES = []


def _alternatives(values):
    return "|".join(re.escape(str(v)) for v in values)


wildcard_constraints:
    subject=_alternatives(SUBJECTS),
    task=_alternatives(TASKS),
    model=_alternatives(config["models"]),
    condition=_alternatives(CONDITION_MODALITIES),
    layer=r"\d+",
    roi=_alternatives(ROIS),


# ---- dataset files (BIDS-style, under dataset.root) ----
DATASET_FILES = {
    "mask": "{root}/space-MNI152_desc-brain_mask.nii.gz",
    "atlas": "{root}/space-MNI152_atlas-{atlas}_dseg.nii.gz",
    "labels": "{root}/space-MNI152_atlas-{atlas}_dseg.tsv",
    "bold": "{root}/sub-{subject}/func/sub-{subject}_task-{task}_run-{run}_bold.nii.gz",
    "trials": "{root}/sub-{subject}/func/sub-{subject}_task-{task}_run-{run}_desc-trials_bold.nii.gz",
    "events": "{root}/sub-{subject}/func/sub-{subject}_task-{task}_run-{run}_events.tsv",
    "sidecar": "{root}/sub-{subject}/func/sub-{subject}_task-{task}_run-{run}_bold.json",
    "confounds": "{root}/sub-{subject}/func/sub-{subject}_task-{task}_run-{run}_desc-confounds_timeseries.tsv",
}


def dataset_file(kind, **entities):
    """Path of one dataset file, from the templates above and the configured root."""
    return DATASET_FILES[kind].format(
        root=DATASET["root"], atlas=DATASET["atlas"], **entities
    )


def dataset_files(kind, subject, task):
    """Paths of one kind of file for every configured run of a subject's task."""
    return [
        dataset_file(kind, subject=subject, task=task, run=run) for run in RUNS[task]
    ]


def get_atlas_files(wildcards=None):
    return {kind: dataset_file(kind) for kind in ("mask", "atlas", "labels")}


def get_dataset_files(wildcards=None):
    """Every dataset file the configured subjects and tasks read."""
    files = list(get_atlas_files().values())
    for subject in SUBJECTS:
        for task in TASKS:
            kinds = (
                ("trials", "events")
                if task == "concepts"
                else ("bold", "sidecar", "confounds")
            )
            for kind in kinds:
                files += dataset_files(kind, subject, task)
    return files


# ---- stimuli ----
STIMULUS_TABLES = {
    "concepts": ["concepts.tsv", "sentences.tsv"],
    "naturalistic": [
        "naturalistic/runs.tsv",
        "naturalistic/words.tsv",
        "naturalistic/frames.tsv",
    ],
}


def get_stimulus_tables(wildcards):
    return [f"{STIMULI}/{name}" for name in STIMULUS_TABLES[wildcards.task]]


def get_model_spec(wildcards):
    return config["models"][wildcards.model]


# ---- synthetic dataset ----
def get_generator_features(wildcards=None):
    """Feature files of the models that drive the synthetic dataset's ROIs."""
    return {
        f"{roi}_{task}": rules.extract_features.output.features.format(task=task, **gen)
        for roi, gen in config["demo"]["generators"].items()
        for task in TASKS
    }


# ---- preprocessing ----
def get_naturalistic_inputs(wildcards):
    files = {
        kind: dataset_files(kind, wildcards.subject, "naturalistic")
        for kind in ("bold", "sidecar", "confounds")
    }
    return {**files, **get_atlas_files(), "runs": f"{STIMULI}/naturalistic/runs.tsv"}


def get_concept_inputs(wildcards):
    files = {
        kind: dataset_files(kind, wildcards.subject, "concepts")
        for kind in ("trials", "events")
    }
    return {**files, **get_atlas_files(), "concepts": f"{STIMULI}/concepts.tsv"}


# ---- analysis targets ----
def model_condition_paths(template, **fixed):
    """Expand ``template`` over every subject and (model, condition) pair."""
    return [
        template.format(subject=subject, model=model, condition=cond, **fixed)
        for subject in SUBJECTS
        for model, cond in model_conditions(config)
    ]


def get_encoding_tables(wildcards=None):
    return [
        p
        for task in TASKS
        for p in model_condition_paths(rules.fit_encoding.output.rois, task=task)
    ]


def get_encoding_maps(wildcards):
    return model_condition_paths(rules.fit_encoding.output.map, task=wildcards.task)


def get_encoding_sidecars(wildcards):
    return model_condition_paths(rules.fit_encoding.output.sidecar, task=wildcards.task)


def get_model_rdms(wildcards=None):
    return [
        rules.compute_model_rdms.output.rdms.format(model=model, condition=cond)
        for model, cond in model_conditions(config)
    ]


def get_figures(wildcards=None):
    return BUNDLE_FIGURES


def get_tables(wildcards=None):
    return BUNDLE_TABLES


def get_feature_files(wildcards=None):
    return [
        rules.extract_features.output.features.format(
            model=model, condition=cond, task=task
        )
        for model, cond in model_conditions(config)
        for task in TASKS
    ]


def get_stimulus_files(wildcards=None):
    return [f"{STIMULI}/{name}" for task in TASKS for name in STIMULUS_TABLES[task]]
