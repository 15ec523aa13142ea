# Per-unit model contrasts (voxels, vertices, electrode x time bins): both sides fitted
# with the same folds, a paired bootstrap of their held-out scores with resample indices
# shared by the sides and the subjects, site selection, BH-FDR, shares per ROI / region.
# contrasts.pairs was checked against the models by validate_config (check_contrasts).
if CONTRAST_JOBS:
    BUNDLE_TABLES += expand(
        "results/group/contrasts_{name}.parquet", name=["units", "group"]
    )
    BUNDLE_FIGURES += expand(
        "results/figures/{name}.{ext}",
        name=[
            "contrasts_shares",
            *(f"contrasts_task-{t}" for t in CONTRAST_FIGURE_TASKS),
        ],
        ext=FORMATS,
    )


rule fit_contrast:
    input:
        unpack(get_contrast_features),
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        units=CONTRAST_UNITS,
        shares=CONTRAST_SHARES,
        resamples=CONTRAST_RESAMPLES,
        map=CONTRAST_MAP,
    log:
        "results/logs/fit_contrast/sub-{subject}_task-{task}_contrast-{contrast}.log",
    benchmark:
        "results/benchmarks/fit_contrast/sub-{subject}_task-{task}_contrast-{contrast}.tsv"
    wildcard_constraints:
        contrast=r"[A-Za-z0-9]+",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        spaces=lookup(dpath="{contrast}", within=CONTRAST_SPACES),
        encoding=config["encoding"],
        settings=config["contrasts"]["settings"],
        seed=SEED,
    script:
        "../scripts/fit_contrast.py"


rule summarize_contrasts:
    input:
        units=contrast_tables("units"),
        shares=contrast_tables("shares"),
    output:
        units="results/group/contrasts_units.parquet",
        group="results/group/contrasts_group.parquet",
    log:
        "results/logs/summarize_contrasts.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    params:
        ci_level=config["contrasts"]["settings"]["ci_level"],
    script:
        "../scripts/summarize_contrasts.py"


rule plot_contrast_shares:
    input:
        group="results/group/contrasts_group.parquet",
    output:
        figures=report(
            expand("results/figures/contrasts_shares.{ext}", ext=FORMATS),
            caption="../report/contrast_shares.rst",
            category="Contrasts",
        ),
    log:
        "results/logs/plot_contrast_shares.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
    script:
        "../scripts/plot_contrast_shares.py"


rule plot_contrast_maps:
    input:
        units=task_contrast_files(CONTRAST_UNITS),
        maps=task_contrast_files(CONTRAST_MAP),
    output:
        figures=report(
            expand("results/figures/contrasts_task-{{task}}.{ext}", ext=FORMATS),
            caption="../report/contrast_maps.rst",
            category="Contrasts",
        ),
    log:
        "results/logs/plot_contrast_maps/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        geometry="electrodes" if ELECTRODES else "surface" if SURFACE else "volume",
    script:
        "../scripts/plot_contrast_maps.py"
