# Neuron-level alignment (paper 001): every chosen unit (hidden dimension or attention-head
# output) of the models in neurons.models mapped to every voxel - held-out r from the unit's
# FIR-delayed copies, the sign of the relation, significance corrected over the unit x voxel
# family - then the share of units predicting each functional network per layer,
# redundancy, polarity and the architecture shares, pooled over subjects into tables and
# figures. `snakemake paper001` builds exactly these (preset config/presets/paper001.yaml).
from brainalign.neurons._checks_config import neurons_jobs, required_inputs

NEURONS_JOBS = neurons_jobs(config)
NEURONS_OUT = "results/neurons/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_{name}"
NEURONS_TABLES = ["units", "networks", "redundancy", "overlap", "polarity", "architecture"]
NEURONS_FIGURES = ["networks", "redundancy", "polarity", "brain"]
NEURONS_FILES = {
    name: [
        NEURONS_OUT.format(
            subject=subject, task=task, model=model, condition=condition, name=name
        )
        + ext
        for subject in SUBJECTS
        for task, model, condition in NEURONS_JOBS
    ]
    for name, ext in [(t, ".parquet") for t in NEURONS_TABLES]
    + [("npredicting", "_statmap" + MAP_EXT)]
}
NEURONS_MISSING = (
    "config 'neurons.models' is empty: the neuron-level analyses map the units of the models "
    "it names. Add --configfile config/presets/paper001.yaml (or set neurons.models)."
)


rule map_neurons:
    input:
        features=get_task_features,
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        units=NEURONS_OUT.replace("{name}", "units") + ".parquet",
        networks=NEURONS_OUT.replace("{name}", "networks") + ".parquet",
        redundancy=NEURONS_OUT.replace("{name}", "redundancy") + ".parquet",
        overlap=NEURONS_OUT.replace("{name}", "overlap") + ".parquet",
        polarity=NEURONS_OUT.replace("{name}", "polarity") + ".parquet",
        architecture=NEURONS_OUT.replace("{name}", "architecture") + ".parquet",
        pairs=NEURONS_OUT.replace("{name}", "pairs") + ".npz",
        map=NEURONS_OUT.replace("{name}", "npredicting") + "_statmap" + MAP_EXT,
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


rule summarize_neurons:
    input:
        units=required_inputs(NEURONS_FILES["units"], NEURONS_MISSING),
        networks=NEURONS_FILES["networks"],
        redundancy=NEURONS_FILES["redundancy"],
        overlap=NEURONS_FILES["overlap"],
        polarity=NEURONS_FILES["polarity"],
        architecture=NEURONS_FILES["architecture"],
        maps=NEURONS_FILES["npredicting"],
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
