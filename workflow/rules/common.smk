# Configuration validation, wildcard constraints and the input functions of every rule.
import re

from brainalign.config import (
    condition_runs_on,
    CONDITION_MODALITIES,
    SYNTHETIC_FORMATS,
    analyses,
    stimulus_sets,
    task_conditions,
    validate_config,
)
from brainalign.contrasts._checks import contrast_spaces
from brainalign.datasets.registry import get_reader
from brainalign.datasets.stimuli_checks import check_run_counts, run_counts
from brainalign.papers.paper000 import family_of
from brainalign.datasets.bids_reader import is_surface_space

CONFIG_SOURCE = "the configuration (config/config.yaml or --configfile)"
config = validate_config(config, source=CONFIG_SOURCE)
SEED = config["seed"]
DATASET = config["dataset"]
STIMULI = config["stimuli"]["root"]
SUBJECTS = DATASET["subjects"]
TASKS = list(DATASET["tasks"])
TASK_KINDS = {task: spec["kind"] for task, spec in DATASET["tasks"].items()}
# Tasks with one pattern per stimulus (RSA runs on these): concepts, and events tasks
# whose single-trial betas become concept patterns.
CONCEPT_TASKS = [t for t, kind in TASK_KINDS.items() if kind in ("concepts", "events")]
ROIS = DATASET["rois"]
RUNS = {
    "concepts": DATASET["concept_runs"],
    "naturalistic": DATASET["naturalistic_runs"],
}
# (task, model, condition): each task with the model conditions it is scored against.
ANALYSES = analyses(config)
# Feature sets: tasks on the same stimuli share one extraction.
STIMULUS_SETS = stimulus_sets(config)
FEATURE_SETS = STIMULUS_SETS["sets"]
FEATURE_SET_OF = STIMULUS_SETS["of_task"]
FORMATS = config["figures"]["formats"]
# Surfaces (space-fsaverage*): maps are CIFTI-2 dense scalars over both hemispheres;
# intracranial units (electrode x time bin) are listed in a TSV with their coordinates.
ELECTRODES = DATASET["format"] in ("ieeg", "synthetic_ieeg", "braintreebank")
SURFACE = not ELECTRODES and is_surface_space(DATASET["space"])
MAP_EXT = ".tsv" if ELECTRODES else ".dscalar.nii" if SURFACE else ".nii.gz"
# The dataset's reader (brainalign.datasets registry): it finds every input file now,
# while the DAG is built, so a missing file or entity stops the run before any job.
READER = get_reader(DATASET, STIMULI, CONFIG_SOURCE, preprocess=config["preprocess"])
if DATASET["format"] not in SYNTHETIC_FORMATS:
    READER.check()
    check_run_counts(config, run_counts(READER, config), CONFIG_SOURCE)
# What each stage contributes to the result bundle: the stage's rule file appends its
# group tables and figures here, and make_bundle collects them.
BUNDLE_TABLES = []
BUNDLE_FIGURES = []


def get_model_layers(wildcards):
    """The configured layers of ``{model}``: a dict lookup, where ``lookup(dpath=...,
    within=config)`` walked the whole config for every job (15-20% of a study's dry run,
    benchmarks/dag_scale.py)."""
    return config["models"][wildcards.model]["layers"]


def _alternatives(values):
    return "|".join(re.escape(str(v)) for v in values)


wildcard_constraints:
    subject=_alternatives(SUBJECTS),
    task=_alternatives(TASKS),
    stimset=_alternatives(FEATURE_SETS),
    model=_alternatives(config["models"]),
    condition=_alternatives(CONDITION_MODALITIES),
    layer=r"\d+",
    roi=_alternatives(ROIS),


# ---- dataset files (found by the reader) ----
def get_brain_inputs(wildcards):
    """Files one subject x task preprocessing job reads, named by the reader.

    The intracranial demo is written by a job, so its files are not there to be found
    when the DAG is built: the job reads the subject's folder, in which the reader finds
    the recordings when it runs.
    """
    if DATASET["format"] == "synthetic_ieeg":
        return {"subject_dir": f"{DATASET['root']}/sub-{wildcards.subject}"}
    return READER.inputs(wildcards.subject, wildcards.task)


class Wildcards:
    """The wildcards of one subject x task, for input functions called outside a job."""

    def __init__(self, subject, task):
        self.subject, self.task = subject, task


def _flatten(files):
    for value in files.values():
        yield from ([value] if isinstance(value, str) else value)


def get_dataset_files(wildcards=None):
    """Every dataset file the configured subjects and tasks read (deduplicated, sorted)."""
    return sorted(
        {
            f
            for s in SUBJECTS
            for t in TASKS
            for f in _flatten(get_brain_inputs(Wildcards(s, t)))
        }
        - set(get_stimulus_files())
    )


# ---- stimuli ----
STIMULUS_TABLES = {
    "concepts": ["concepts.tsv", "sentences.tsv"],
    "naturalistic": [
        "naturalistic/runs.tsv",
        "naturalistic/words.tsv",
        "naturalistic/frames.tsv",
    ],
}
# Event-locked tasks read the film's tables, one row per word or scene cut.
STIMULUS_TABLES["word_events"] = STIMULUS_TABLES["naturalistic"]
STIMULUS_TABLES["scene_events"] = STIMULUS_TABLES["naturalistic"]


def stimulus_tables(stimset):
    spec = FEATURE_SETS[stimset]
    return [f"{spec['stimuli']}/{name}" for name in STIMULUS_TABLES[spec["kind"]]]


def get_stimulus_tables(wildcards):
    return stimulus_tables(wildcards.stimset)


def get_model_spec(wildcards):
    return config["models"][wildcards.model]


def features_path(task, model, condition):
    """The feature file a task's analyses read: its stimulus set's extraction."""
    return rules.extract_features.output.features.format(
        model=model, condition=condition, stimset=FEATURE_SET_OF[task]
    )


def get_task_features(wildcards):
    return features_path(wildcards.task, wildcards.model, wildcards.condition)


# ---- synthetic dataset ----
def get_generator_features(wildcards=None):
    """Feature files of the models that drive the synthetic dataset's ROIs."""
    return {
        f"{roi}_{task}": features_path(task, gen["model"], gen["condition"])
        for roi, gen in config["demo"]["generators"].items()
        for task in TASKS
        if condition_runs_on(config, task, gen["condition"])
    }


# ---- analysis targets ----
def analysis_paths(template, tasks=None, **fixed):
    """Expand ``template`` over every subject and (task, model, condition) analysis."""
    return [
        template.format(
            subject=subject, task=task, model=model, condition=cond, **fixed
        )
        for subject in SUBJECTS
        for task, model, cond in ANALYSES
        if tasks is None or task in tasks
    ]


def get_encoding_tables(wildcards=None):
    return analysis_paths(rules.fit_encoding.output.rois)


def get_encoding_maps(wildcards):
    return analysis_paths(rules.fit_encoding.output.map, tasks=[wildcards.task])


def get_encoding_sidecars(wildcards):
    return analysis_paths(rules.fit_encoding.output.sidecar, tasks=[wildcards.task])


def task_model_conditions(task):
    return [(m, c) for t, m, c in ANALYSES if t == task]


def get_model_rdms(wildcards):
    return [
        rules.compute_model_rdms.output.rdms.format(
            model=model, condition=cond, stimset=FEATURE_SET_OF[wildcards.task]
        )
        for model, cond in task_model_conditions(wildcards.task)
    ]


def get_task_model_rdms(wildcards):
    return rules.compute_model_rdms.output.rdms.format(
        model=wildcards.model,
        condition=wildcards.condition,
        stimset=FEATURE_SET_OF[wildcards.task],
    )


# ---- RSA (per task with one pattern per stimulus) ----
RSA_BRAIN = "results/rsa/sub-{subject}/sub-{subject}_task-{task}_rdms.safetensors"
RSA_UNIT = "results/rsa/task-{task}/model-{model}/task-{task}_model-{model}_cond-{condition}_{name}.parquet"
RSA_ROI = "results/rsa/task-{task}/roi-{roi}/task-{task}_roi-{roi}_{name}.parquet"


def rsa_brain_rdms(wildcards):
    return expand(RSA_BRAIN, subject=SUBJECTS, task=wildcards.task)


def rsa_unit_tables(name):
    def get(wildcards):
        return [
            RSA_UNIT.format(task=wildcards.task, model=m, condition=c, name=name)
            for m, c in task_model_conditions(wildcards.task)
        ]

    return get


def rsa_roi_tables(name):
    def get(wildcards):
        return expand(RSA_ROI, task=wildcards.task, roi=ROIS, name=name)

    return get


def get_figures(wildcards=None):
    return BUNDLE_FIGURES


def get_tables(wildcards=None):
    return BUNDLE_TABLES


def get_feature_files(wildcards=None):
    return sorted({features_path(t, m, c) for t, m, c in ANALYSES})


def get_stimulus_files(wildcards=None):
    return sorted({f for stimset in FEATURE_SETS for f in stimulus_tables(stimset)})


# ---- contrasts (rules in contrasts.smk) ----
CONTRAST_SPACES = contrast_spaces(config)
CONTRAST_UNITS = "results/contrasts/sub-{subject}/task-{task}/sub-{subject}_task-{task}_contrast-{contrast}_units.parquet"
CONTRAST_SHARES = "results/contrasts/sub-{subject}/task-{task}/sub-{subject}_task-{task}_contrast-{contrast}_shares.parquet"
CONTRAST_RESAMPLES = "results/contrasts/sub-{subject}/task-{task}/sub-{subject}_task-{task}_contrast-{contrast}_resamples.npz"
CONTRAST_MAP = (
    "results/contrasts/sub-{subject}/task-{task}/sub-{subject}_task-{task}_contrast-{contrast}_stat-delta_statmap"
    + MAP_EXT
)


def _contrast_runs_on(task, spaces):
    return all(
        condition in task_conditions(config, task, model)
        for side in spaces.values()
        for model, condition, _ in side
    )


# The tasks each contrast applies to: every task on which all its spaces' conditions run.
CONTRAST_TASKS = {
    name: [task for task in TASKS if _contrast_runs_on(task, spaces)]
    for name, spaces in CONTRAST_SPACES.items()
}
CONTRAST_JOBS = [
    (subject, task, name)
    for name, tasks in CONTRAST_TASKS.items()
    for task in tasks
    for subject in SUBJECTS
]
CONTRAST_FIGURE_TASKS = sorted({task for _, task, _ in CONTRAST_JOBS})


def get_contrast_features(wildcards):
    """Feature files of both sides of a contrast, named a0, a1..., b0, b1..."""
    spaces = CONTRAST_SPACES[wildcards.contrast]
    return {
        f"{side}{k}": features_path(wildcards.task, model, condition)
        for side in ("a", "b")
        for k, (model, condition, _) in enumerate(spaces[side])
    }


def contrast_tables(name):
    def get(wildcards=None):
        template = {"units": CONTRAST_UNITS, "shares": CONTRAST_SHARES}[name]
        return [
            template.format(subject=subject, task=task, contrast=contrast)
            for subject, task, contrast in CONTRAST_JOBS
        ]

    return get


def task_contrast_files(template):
    def get(wildcards):
        return [
            template.format(subject=subject, task=task, contrast=contrast)
            for subject, task, contrast in CONTRAST_JOBS
            if task == wildcards.task
        ]

    return get


# The intracranial demo (dataset.format synthetic_ieeg): SEEG in BIDS-iEEG with planted
# site classes driven by model features of the film's words and scene cuts.
IEEG_DEMO_KINDS = {"word_events": "words", "scene_events": "cuts"}


def get_ieeg_generator_features(wildcards=None):
    """Per planted site class and event type present, the features that drive it."""
    files = {}
    for label, site in config["demo"]["ieeg"]["sites"].items():
        for task, kind in TASK_KINDS.items():
            files[f"{label}_{IEEG_DEMO_KINDS[kind]}"] = features_path(
                task, site["model"], site["condition"]
            )
    return files


# ---- paper 000 (rules in paper000.smk) ----
PAPER000_ROI = "results/paper000/task-{task}/task-{task}_roi-{roi}_{name}.parquet"
PAPER000_PARTIAL = "results/paper000/task-{task}/task-{task}_roi-{roi}_model-{model}_cond-{condition}_partial.parquet"
PAPER000_COUNTERPARTS = config["paper000"]["counterparts"]
PAPER000_FAMILIES = {
    name: family_of(spec["extractor"]) for name, spec in config["models"].items()
}
# The partial-correlation ablation: every VLM with a counterpart, in every condition it
# runs on each task with one pattern per stimulus, in every ROI.
PAPER000_PARTIAL_TABLES = [
    PAPER000_PARTIAL.format(task=task, roi=roi, model=model, condition=condition)
    for task in CONCEPT_TASKS
    for roi in ROIS
    for model in PAPER000_COUNTERPARTS
    for condition in task_conditions(config, task, model)
]


def paper000_roi_tables(name):
    def get(wildcards=None):
        return expand(PAPER000_ROI, task=CONCEPT_TASKS, roi=ROIS, name=name)

    return get


def get_paper000_control_rdms(wildcards):
    """The RDM of the VLM's language-only counterpart, under paper000.control_condition."""
    return rules.compute_model_rdms.output.rdms.format(
        model=PAPER000_COUNTERPARTS[wildcards.model],
        condition=config["paper000"]["control_condition"],
        stimset=FEATURE_SET_OF[wildcards.task],
    )


# ---- paper 002 (rules in paper002.smk) ----
PAPER002 = config["paper002"]
PAPER002_TASKS = [task for task, kind in TASK_KINDS.items() if kind == "naturalistic"]
PAPER002_RESIDUAL = (
    "results/paper002/sub-{subject}/sub-{subject}_task-{task}_residual_units.parquet"
)
PAPER002_LAYERS = "results/paper002/sub-{subject}/sub-{subject}_task-{task}_contrast-finetuned_units.parquet"
PAPER002_RESIDUAL_TABLES = (
    expand(PAPER002_RESIDUAL, subject=SUBJECTS, task=PAPER002_TASKS)
    if PAPER002["model"] and PAPER002["residual"]
    else []
)
PAPER002_LAYER_TABLES = (
    expand(PAPER002_LAYERS, subject=SUBJECTS, task=PAPER002_TASKS)
    if PAPER002["finetuned"]
    else []
)


def get_residual_features(wildcards):
    """The model's joint features (joint) and the unimodal spaces (unimodal0, 1...)."""
    files = {"joint": features_path(wildcards.task, PAPER002["model"], "joint")}
    for k, space in enumerate(PAPER002["residual"]):
        files[f"unimodal{k}"] = features_path(
            wildcards.task, space["model"], space["condition"]
        )
    return files


def get_finetuned_features(wildcards):
    tuned = PAPER002["finetuned"]
    return {
        side: features_path(wildcards.task, tuned[side], tuned["condition"])
        for side in ("a", "b")
    }


def get_paper002_voxels(wildcards=None):
    """The encoding stage's per-unit tables of the model's compared conditions."""
    if not PAPER002["model"]:
        raise ValueError(
            "config 'paper002.model' is not set: the paper002 target compares the conditions "
            "of one joint model. Add --configfile config/presets/paper002.yaml (or set it)."
        )
    return [
        rules.fit_encoding.output.voxels.format(
            subject=subject, task=task, model=PAPER002["model"], condition=condition
        )
        for subject in SUBJECTS
        for task in PAPER002_TASKS
        for condition in PAPER002["conditions"]
    ]
