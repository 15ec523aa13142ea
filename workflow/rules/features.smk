# Per-model feature extraction: layer-wise hidden states under each input condition, once
# per stimulus set (the feature file's task entity: concepts, naturalistic, or a task with
# stimuli of its own), shared by every brain task that shows those stimuli.
from brainalign.features.conditions import noise_table_input


rule make_noise_images:
    input:
        tables=get_stimulus_files,
    output:
        table="results/stimuli/noise/noise_images.tsv",
    log:
        "results/logs/make_noise_images.log",
    conda:
        "../../envs/features.yaml"
    container:
        f"{workflow.basedir}/containers/features.sif"
    params:
        stimuli=STIMULI,
        seed=SEED,
    script:
        "../scripts/make_noise_images.py"


rule extract_features:
    input:
        tables=get_stimulus_tables,
        noise=noise_table_input(config["models"], rules.make_noise_images.output.table),
    output:
        features="results/features/model-{model}/cond-{condition}/model-{model}_cond-{condition}_task-{stimset}_features.safetensors",
    log:
        "results/logs/extract_features/model-{model}_cond-{condition}_task-{stimset}.log",
    benchmark:
        "results/benchmarks/extract_features/model-{model}_cond-{condition}_task-{stimset}.tsv"
    conda:
        "../../envs/features.yaml"
    container:
        f"{workflow.basedir}/containers/features.sif"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        spec=get_model_spec,
        stimset=lookup(dpath="{stimset}", within=FEATURE_SETS),
        seed=SEED,
    script:
        "../scripts/extract_features.py"
