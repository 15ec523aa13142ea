# Representational similarity analysis of every task with one pattern per stimulus (kinds
# concepts and events): RDMs, per-subject scores, group inference (permutation tests,
# noise ceilings, bootstrap, held-out layer selection), figures. Every path carries the
# task; model RDMs belong to the stimulus set, shared by the tasks that show it.
# (RSA_BRAIN, RSA_UNIT, RSA_ROI and their input functions are in common.smk)
RSA_GROUP_TABLE = "results/group/rsa_task-{task}_{name}.parquet"
RSA_GROUP = [
    "subjects",
    "group",
    "ceiling",
    "selected",
    "models",
    "pairwise",
    "brain_rdms",
]
RSA_FIGURES = ["rdms", "rsa_layer_profiles", "rsa_model_comparison"]
BUNDLE_TABLES += expand(RSA_GROUP_TABLE, task=CONCEPT_TASKS, name=RSA_GROUP)
BUNDLE_FIGURES += expand(
    "results/figures/{name}_task-{task}.{ext}",
    name=RSA_FIGURES,
    task=CONCEPT_TASKS,
    ext=FORMATS,
)


rule compute_brain_rdms:
    input:
        patterns="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        rdms=RSA_BRAIN,
    log:
        "results/logs/compute_brain_rdms/sub-{subject}_task-{task}.log",
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    params:
        rsa=config["rsa"],
        rois=ROIS,
    script:
        "../scripts/compute_brain_rdms.py"


rule compute_model_rdms:
    input:
        features=rules.extract_features.output.features,
    output:
        rdms="results/rsa/model-{model}/model-{model}_cond-{condition}_task-{stimset}_rdms.safetensors",
    log:
        "results/logs/compute_model_rdms/model-{model}_cond-{condition}_task-{stimset}.log",
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    params:
        rsa=config["rsa"],
    script:
        "../scripts/compute_model_rdms.py"


rule compute_rsa:
    input:
        brain=rsa_brain_rdms,
        model=get_task_model_rdms,
    output:
        scores=RSA_UNIT.replace("{name}", "scores"),
        permutation=RSA_UNIT.replace("{name}", "permutation"),
    log:
        "results/logs/compute_rsa/task-{task}_model-{model}_cond-{condition}.log",
    benchmark:
        "results/benchmarks/compute_rsa/task-{task}_model-{model}_cond-{condition}.tsv"
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        rsa=config["rsa"],
        seed=SEED,
    script:
        "../scripts/compute_rsa.py"


rule infer_rsa:
    input:
        brain=rsa_brain_rdms,
        models=get_model_rdms,
    output:
        **{
            name: RSA_ROI.replace("{name}", name)
            for name in ("layers", "ceiling", "selected", "models", "pairwise")
        },
    log:
        "results/logs/infer_rsa/task-{task}_roi-{roi}.log",
    benchmark:
        "results/benchmarks/infer_rsa/task-{task}_roi-{roi}.tsv"
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        rsa=config["rsa"],
        seed=SEED,
    script:
        "../scripts/infer_rsa.py"


rule summarize_rsa:
    input:
        scores=rsa_unit_tables("scores"),
        permutation=rsa_unit_tables("permutation"),
        layers=rsa_roi_tables("layers"),
        ceiling=rsa_roi_tables("ceiling"),
        selected=rsa_roi_tables("selected"),
        models=rsa_roi_tables("models"),
        pairwise=rsa_roi_tables("pairwise"),
        brain=rsa_brain_rdms,
    output:
        **{name: RSA_GROUP_TABLE.replace("{name}", name) for name in RSA_GROUP},
    log:
        "results/logs/summarize_rsa/task-{task}.log",
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    params:
        rsa=config["rsa"],
    script:
        "../scripts/summarize_rsa.py"


rule plot_rsa_rdms:
    input:
        brain=RSA_GROUP_TABLE.replace("{name}", "brain_rdms"),
        models=get_model_rdms,
    output:
        figures=report(
            expand("results/figures/rdms_task-{{task}}.{ext}", ext=FORMATS),
            caption="../report/rdms.rst",
            category="RDMs",
        ),
    log:
        "results/logs/plot_rsa_rdms/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
    script:
        "../scripts/plot_rsa_rdms.py"


rule plot_rsa_layer_profiles:
    input:
        group=RSA_GROUP_TABLE.replace("{name}", "group"),
        ceiling=RSA_GROUP_TABLE.replace("{name}", "ceiling"),
    output:
        figures=report(
            expand(
                "results/figures/rsa_layer_profiles_task-{{task}}.{ext}", ext=FORMATS
            ),
            caption="../report/rsa_layer_profiles.rst",
            category="Layer profiles",
        ),
    log:
        "results/logs/plot_rsa_layer_profiles/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
    script:
        "../scripts/plot_rsa_layer_profiles.py"


rule plot_rsa_model_comparison:
    input:
        models=RSA_GROUP_TABLE.replace("{name}", "models"),
        pairwise=RSA_GROUP_TABLE.replace("{name}", "pairwise"),
        ceiling=RSA_GROUP_TABLE.replace("{name}", "ceiling"),
    output:
        figures=report(
            expand(
                "results/figures/rsa_model_comparison_task-{{task}}.{ext}", ext=FORMATS
            ),
            caption="../report/rsa_model_comparison.rst",
            category="Model comparison",
        ),
    log:
        "results/logs/plot_rsa_model_comparison/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        metric=config["rsa"]["brain_metric"] or config["rsa"]["metric"],
    script:
        "../scripts/plot_rsa_model_comparison.py"
