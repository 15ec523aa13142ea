# Neuron-level alignment (paper 001): every chosen unit (hidden dimension or attention-head
# output) of the models in neurons.models mapped to every voxel - held-out r from the unit's
# FIR-delayed copies, the sign of the relation, significance corrected over the unit x voxel
# family - then the share of units predicting each functional network per layer,
# redundancy, polarity and the architecture shares, pooled over subjects into tables and
# figures. `snakemake paper001` builds exactly these (preset config/presets/paper001.yaml).
from brainalign.neurons._checks_config import neurons_jobs, required_inputs

NEURONS_JOBS = neurons_jobs(config)
NEURONS_PREFIX = "results/neurons/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}"
NEURONS_TABLES = [
    "units",
    "networks",
    "redundancy",
    "countnull",
    "overlap",
    "polarity",
    "architecture",
]
NEURONS_FIGURES = ["networks", "redundancy", "polarity", "brain"]
NEURONS_FILES = {
    name: [
        f"{NEURONS_PREFIX}_{name}{ext}".format(
            subject=subject, task=task, model=model, condition=condition
        )
        for subject in SUBJECTS
        for task, model, condition in NEURONS_JOBS
    ]
    for name, ext in [(t, ".parquet") for t in NEURONS_TABLES]
    + [("npredicting", f"_statmap{MAP_EXT}")]
}
# The architecture contrast (neurons.contrast): cross-modal model a vs two-tower model b.
NEURONS_CONTRAST = "results/neurons/sub-{subject}/task-{task}/sub-{subject}_task-{task}_contrast-architecture.parquet"
NEURONS_CONTRAST_SIDES = {
    task: {
        side: features_path(
            task, model, config["neurons"]["models"][model]["condition"]
        )
        for side, model in (
            ("a", (config["neurons"]["contrast"] or {}).get("cross")),
            ("b", (config["neurons"]["contrast"] or {}).get("two_tower")),
        )
        if model
    }
    for task in sorted({task for task, _, _ in NEURONS_JOBS})
}
NEURONS_CONTRAST_TABLES = [
    NEURONS_CONTRAST.format(subject=subject, task=task)
    for subject in SUBJECTS
    for task, sides in NEURONS_CONTRAST_SIDES.items()
    if len(sides) == 2
]
NEURONS_MISSING = (
    "config 'neurons.models' is empty: the neuron-level analyses map the units of the models "
    "it names. Add --configfile config/presets/paper001.yaml (or set neurons.models)."
)


rule map_neurons:
    input:
        features=get_task_features,
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        units=f"{NEURONS_PREFIX}_units.parquet",
        networks=f"{NEURONS_PREFIX}_networks.parquet",
        redundancy=f"{NEURONS_PREFIX}_redundancy.parquet",
        countnull=f"{NEURONS_PREFIX}_countnull.parquet",
        overlap=f"{NEURONS_PREFIX}_overlap.parquet",
        polarity=f"{NEURONS_PREFIX}_polarity.parquet",
        architecture=f"{NEURONS_PREFIX}_architecture.parquet",
        pairs=f"{NEURONS_PREFIX}_pairs.npz",
        map=f"{NEURONS_PREFIX}_npredicting_statmap{MAP_EXT}",
    log:
        "results/logs/map_neurons/sub-{subject}_task-{task}_model-{model}_cond-{condition}.log",
    benchmark:
        "results/benchmarks/map_neurons/sub-{subject}_task-{task}_model-{model}_cond-{condition}.tsv"
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        neurons=config["neurons"],
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/map_neurons.py"


rule contrast_neurons_architecture:
    input:
        a=lookup(dpath="{task}/a", within=NEURONS_CONTRAST_SIDES),
        b=lookup(dpath="{task}/b", within=NEURONS_CONTRAST_SIDES),
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        table=NEURONS_CONTRAST,
    log:
        "results/logs/contrast_neurons_architecture/sub-{subject}_task-{task}.log",
    benchmark:
        "results/benchmarks/contrast_neurons_architecture/sub-{subject}_task-{task}.tsv"
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        models={
            "a": (config["neurons"]["contrast"] or {}).get("cross"),
            "b": (config["neurons"]["contrast"] or {}).get("two_tower"),
        },
        neurons=config["neurons"],
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/contrast_neurons_architecture.py"


rule summarize_neurons:
    input:
        units=required_inputs(NEURONS_FILES["units"], NEURONS_MISSING),
        networks=NEURONS_FILES["networks"],
        redundancy=NEURONS_FILES["redundancy"],
        countnull=NEURONS_FILES["countnull"],
        overlap=NEURONS_FILES["overlap"],
        polarity=NEURONS_FILES["polarity"],
        architecture=NEURONS_FILES["architecture"],
        maps=NEURONS_FILES["npredicting"],
        contrast=NEURONS_CONTRAST_TABLES,
    output:
        tables=directory("results/neurons/tables"),
        networks=report(
            expand("results/figures/neurons_networks.{ext}", ext=FORMATS),
            caption="../report/neurons.rst",
            category="Neurons",
        ),
        redundancy=report(
            expand("results/figures/neurons_redundancy.{ext}", ext=FORMATS),
            caption="../report/neurons.rst",
            category="Neurons",
        ),
        polarity=report(
            expand("results/figures/neurons_polarity.{ext}", ext=FORMATS),
            caption="../report/neurons.rst",
            category="Neurons",
        ),
        brain=report(
            expand("results/figures/neurons_brain.{ext}", ext=FORMATS),
            caption="../report/neurons.rst",
            category="Neurons",
        ),
    log:
        "results/logs/summarize_neurons.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
    script:
        "../scripts/summarize_neurons.py"
