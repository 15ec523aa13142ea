# Paper 000 (concept RSA, Pereira 2018) as a named analysis: `snakemake paper000` builds
# both estimands (group-mean brain RDM, subject mean with ceilings), the best layer
# against every other layer, the model x model RDM similarity, the partial-correlation
# ablation of each VLM against its language-only counterpart (paper000.counterparts), the
# pooled tables and the paper's figures. Per task with one pattern per stimulus and ROI.
# (PAPER000_* paths and job lists are in common.smk)


rule paper000_estimands:
    input:
        brain=rsa_brain_rdms,
        models=get_model_rdms,
    output:
        estimands=PAPER000_ROI.replace("{name}", "estimands"),
        best_layers=PAPER000_ROI.replace("{name}", "bestlayers"),
        similarity=PAPER000_ROI.replace("{name}", "similarity"),
        matrix=PAPER000_ROI.replace("{name}", "similaritymatrix"),
    log:
        "results/logs/paper000_estimands/task-{task}_roi-{roi}.log",
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
        "../scripts/paper000_estimands.py"


rule paper000_partial:
    input:
        brain=rsa_brain_rdms,
        model=get_task_model_rdms,
        control=get_paper000_control_rdms,
    output:
        partial=PAPER000_PARTIAL,
    log:
        "results/logs/paper000_partial/task-{task}_roi-{roi}_model-{model}_cond-{condition}.log",
    conda:
        "../../envs/rsa.yaml"
    container:
        f"{workflow.basedir}/containers/rsa.sif"
    params:
        rsa={**config["rsa"], "partial_kind": config["paper000"]["partial_kind"]},
        seed=SEED,
    script:
        "../scripts/paper000_partial.py"


rule paper000_summary:
    input:
        estimands=paper000_roi_tables("estimands"),
        best_layers=paper000_roi_tables("bestlayers"),
        similarity=paper000_roi_tables("similarity"),
        partial=PAPER000_PARTIAL_TABLES,
    output:
        estimands="results/paper000/paper000_estimands.parquet",
        best_layers="results/paper000/paper000_bestlayers.parquet",
        similarity="results/paper000/paper000_similarity.parquet",
        partial="results/paper000/paper000_partial.parquet",
        layers=report(
            expand("results/figures/paper000_layers.{ext}", ext=FORMATS),
            caption="../report/paper000.rst",
            category="Paper 000",
        ),
        ablation=report(
            expand("results/figures/paper000_ablation.{ext}", ext=FORMATS),
            caption="../report/paper000.rst",
            category="Paper 000",
        ),
    log:
        "results/logs/paper000_summary.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        families=PAPER000_FAMILIES,
        figures=config["figures"],
        q=config["rsa"]["fdr_alpha"],
    script:
        "../scripts/paper000_summary.py"
