# Voxel-wise ridge encoding with nested cross-validation: per-voxel alphas, permutation
# tests with FDR, noise ceilings, joint (banded ridge) models with variance partitioning,
# nested best-layer selection, and their group tables.
# encoding.joint was checked against the models by validate_config (common.smk).
JOINT_MODELS = {joint["name"]: joint for joint in config["encoding"]["joint"]}
ENCODING_GROUP = "results/group/encoding_{name}.parquet"
BUNDLE_TABLES += expand(
    ENCODING_GROUP,
    name=[
        "conditions_paired",
        "bestlayer_subjects",
        "bestlayer_group",
        "bestlayer_paired",
    ],
)
if JOINT_MODELS:
    BUNDLE_TABLES += expand(ENCODING_GROUP, name=["joint_subjects", "joint_group"])


# Paths of the rules' outputs, expanded here for the group rules and the bundle.
ENCODING_MAP = (
    "results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_stat-r_statmap"
    + MAP_EXT
)
ENCODING_ROIS = "results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_rois.parquet"
JOINT_ROIS = "results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_joint-{joint}_rois.parquet"
BEST_LAYER_FOLDS = "results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_desc-bestlayer_folds.parquet"
# The feature file of every space of each joint model, per task: {joint: {task: [paths]}}.
JOINT_FEATURES = {
    name: {
        task: [
            features_path(task, space["model"], space["condition"])
            for space in joint["spaces"]
        ]
        for task in TASKS
    }
    for name, joint in JOINT_MODELS.items()
}
JOINT_TABLES = expand(
    JOINT_ROIS, subject=SUBJECTS, task=TASKS, joint=list(JOINT_MODELS)
)
BEST_LAYER_TABLES = analysis_paths(BEST_LAYER_FOLDS)


# One job per subject x task x model x condition fits every layer (a job per layer spent
# most of its time starting Python); rows and map volumes are per layer.
rule fit_encoding:
    input:
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
        features=get_task_features,
    output:
        map=ENCODING_MAP,
        sidecar=ENCODING_MAP.replace(MAP_EXT, ".json"),
        voxels="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_voxels.parquet",
        rois=ENCODING_ROIS,
        best_layer=BEST_LAYER_FOLDS,
    log:
        "results/logs/fit_encoding/sub-{subject}_task-{task}_model-{model}_cond-{condition}.log",
    benchmark:
        "results/benchmarks/fit_encoding/sub-{subject}_task-{task}_model-{model}_cond-{condition}.tsv"
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        layers=get_model_layers,
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/fit_encoding.py"


rule fit_joint_encoding:
    input:
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
        features=lookup(dpath="{joint}/{task}", within=JOINT_FEATURES),
    output:
        map="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_joint-{joint}_stat-r_statmap"
        + MAP_EXT,
        voxels="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_joint-{joint}_voxels.parquet",
        rois=JOINT_ROIS,
    log:
        "results/logs/fit_joint_encoding/sub-{subject}_task-{task}_joint-{joint}.log",
    benchmark:
        "results/benchmarks/fit_joint_encoding/sub-{subject}_task-{task}_joint-{joint}.tsv"
    wildcard_constraints:
        joint=r"[A-Za-z0-9]+",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        joint=lookup(dpath="{joint}", within=JOINT_MODELS),
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/fit_joint_encoding.py"


rule summarize_best_layer:
    input:
        tables=BEST_LAYER_TABLES,
    output:
        subjects="results/group/encoding_bestlayer_subjects.parquet",
        group="results/group/encoding_bestlayer_group.parquet",
        paired="results/group/encoding_bestlayer_paired.parquet",
    log:
        "results/logs/summarize_best_layer.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    script:
        "../scripts/summarize_best_layer.py"


rule summarize_joint_encoding:
    input:
        tables=JOINT_TABLES,
    output:
        subjects="results/group/encoding_joint_subjects.parquet",
        group="results/group/encoding_joint_group.parquet",
    log:
        "results/logs/summarize_joint_encoding.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    script:
        "../scripts/summarize_joint_encoding.py"


rule compare_encoding_conditions:
    input:
        subjects="results/group/encoding_subjects.parquet",
    output:
        paired="results/group/encoding_conditions_paired.parquet",
    log:
        "results/logs/compare_encoding_conditions.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    script:
        "../scripts/compare_encoding_conditions.py"
