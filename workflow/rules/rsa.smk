# Representational similarity analysis of the concept task: RDMs, per-subject scores, group
# inference (permutation tests, noise ceilings, bootstrap, held-out layer selection), figures.
RSA_BRAIN = "results/rsa/sub-{subject}/sub-{subject}_task-concepts_rdms.safetensors"
RSA_UNIT = "results/rsa/model-{model}/model-{model}_cond-{condition}_{name}.parquet"
RSA_ROI = "results/rsa/roi-{roi}/roi-{roi}_{name}.parquet"
RSA_GROUP = [
    "subjects",
    "group",
    "ceiling",
    "selected",
    "models",
    "pairwise",
    "brain_rdms",
]
RSA_BRAIN_RDMS = expand(RSA_BRAIN, subject=SUBJECTS)
RSA_MODEL_CONDITIONS = model_conditions(config)
if "concepts" in TASKS:
    BUNDLE_TABLES += expand("results/group/rsa_{name}.parquet", name=RSA_GROUP)
    BUNDLE_FIGURES += expand(
        "results/figures/{name}.{ext}",
        name=["rdms", "rsa_layer_profiles", "rsa_model_comparison"],
        ext=FORMATS,
    )


rule compute_brain_rdms:
    input:
        patterns="results/preprocess/sub-{subject}/sub-{subject}_task-concepts_desc-preproc_bold.safetensors",
    output:
        rdms=RSA_BRAIN,
    log:
        "results/logs/compute_brain_rdms/sub-{subject}.log",
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
        features="results/features/model-{model}/cond-{condition}/model-{model}_cond-{condition}_task-concepts_features.safetensors",
    output:
        rdms="results/rsa/model-{model}/model-{model}_cond-{condition}_rdms.safetensors",
    log:
        "results/logs/compute_model_rdms/model-{model}_cond-{condition}.log",
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
        brain=RSA_BRAIN_RDMS,
        model="results/rsa/model-{model}/model-{model}_cond-{condition}_rdms.safetensors",
    output:
        scores="results/rsa/model-{model}/model-{model}_cond-{condition}_scores.parquet",
        permutation="results/rsa/model-{model}/model-{model}_cond-{condition}_permutation.parquet",
    log:
        "results/logs/compute_rsa/model-{model}_cond-{condition}.log",
    benchmark:
        "results/benchmarks/compute_rsa/model-{model}_cond-{condition}.tsv"
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
        brain=RSA_BRAIN_RDMS,
        models=get_model_rdms,
    output:
        layers="results/rsa/roi-{roi}/roi-{roi}_layers.parquet",
        ceiling="results/rsa/roi-{roi}/roi-{roi}_ceiling.parquet",
        selected="results/rsa/roi-{roi}/roi-{roi}_selected.parquet",
        models="results/rsa/roi-{roi}/roi-{roi}_models.parquet",
        pairwise="results/rsa/roi-{roi}/roi-{roi}_pairwise.parquet",
    log:
        "results/logs/infer_rsa/roi-{roi}.log",
    benchmark:
        "results/benchmarks/infer_rsa/roi-{roi}.tsv"
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
        scores=[
            RSA_UNIT.format(model=m, condition=c, name="scores")
            for m, c in RSA_MODEL_CONDITIONS
        ],
        permutation=[
            RSA_UNIT.format(model=m, condition=c, name="permutation")
            for m, c in RSA_MODEL_CONDITIONS
        ],
        layers=expand(RSA_ROI, roi=ROIS, name="layers"),
        ceiling=expand(RSA_ROI, roi=ROIS, name="ceiling"),
        selected=expand(RSA_ROI, roi=ROIS, name="selected"),
        models=expand(RSA_ROI, roi=ROIS, name="models"),
        pairwise=expand(RSA_ROI, roi=ROIS, name="pairwise"),
        brain=RSA_BRAIN_RDMS,
    output:
        subjects="results/group/rsa_subjects.parquet",
        group="results/group/rsa_group.parquet",
        ceiling="results/group/rsa_ceiling.parquet",
        selected="results/group/rsa_selected.parquet",
        models="results/group/rsa_models.parquet",
        pairwise="results/group/rsa_pairwise.parquet",
        brain_rdms="results/group/rsa_brain_rdms.parquet",
    log:
        "results/logs/summarize_rsa.log",
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
        brain="results/group/rsa_brain_rdms.parquet",
        models=get_model_rdms,
    output:
        figures=report(
            expand("results/figures/rdms.{ext}", ext=FORMATS),
            caption="../report/rdms.rst",
            category="RDMs",
        ),
    log:
        "results/logs/plot_rsa_rdms.log",
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
        group="results/group/rsa_group.parquet",
        ceiling="results/group/rsa_ceiling.parquet",
    output:
        figures=report(
            expand("results/figures/rsa_layer_profiles.{ext}", ext=FORMATS),
            caption="../report/rsa_layer_profiles.rst",
            category="Layer profiles",
        ),
    log:
        "results/logs/plot_rsa_layer_profiles.log",
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
        models="results/group/rsa_models.parquet",
        pairwise="results/group/rsa_pairwise.parquet",
        ceiling="results/group/rsa_ceiling.parquet",
    output:
        figures=report(
            expand("results/figures/rsa_model_comparison.{ext}", ext=FORMATS),
            caption="../report/rsa_model_comparison.rst",
            category="Model comparison",
        ),
    log:
        "results/logs/plot_rsa_model_comparison.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        metric=config["rsa"]["brain_metric"] or config["rsa"]["metric"],
    script:
        "../scripts/plot_rsa_model_comparison.py"
