# Paper 002 (joint vs ablated encoding of naturalistic video) as a named analysis:
# `snakemake paper002` builds the ROI t-tests of the joint model's conditions (joint vs
# language-only vs vision-only), the residual representation (unimodal features regressed
# out inside each training fold) against zero, and the fine-tuned vs pretrained contrast
# at every layer, with their figures; and, for the joint models of paper002.streams (banded
# ridge over e.g. vision, language and audio spaces), the joint r and each stream's unique
# variance per ROI. (PAPER002_* paths and job lists are in common.smk)
PAPER002_STREAM_TABLES = expand(
    JOINT_ROIS, subject=SUBJECTS, task=PAPER002_TASKS, joint=PAPER002["streams"]
)
# The per-voxel contrasts of the preset's contrasts.pairs (joint vs language-only vs
# vision-only): maps of significant delta with FDR, shares per ROI.
PAPER002_CONTRASTS = (
    [
        "results/group/contrasts_group.parquet",
        *expand(
            "results/figures/{name}.{ext}",
            name=[
                "contrasts_shares",
                *(f"contrasts_task-{t}" for t in CONTRAST_FIGURE_TASKS),
            ],
            ext=FORMATS,
        ),
    ]
    if CONTRAST_JOBS
    else []
)


rule fit_residual_encoding:
    input:
        unpack(get_residual_features),
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        units=PAPER002_RESIDUAL,
    log:
        "results/logs/fit_residual_encoding/sub-{subject}_task-{task}.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        layer=config["paper002"]["layer"],
        unimodal=[space["layer"] for space in config["paper002"]["residual"]],
        residual_alpha=config["paper002"]["residual_alpha"],
        residual_components=config["paper002"]["residual_components"],
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/fit_residual_encoding.py"


rule fit_layer_contrast:
    input:
        unpack(get_finetuned_features),
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
    output:
        units=PAPER002_LAYERS,
        shares=PAPER002_LAYERS.replace("_units", "_shares"),
        resamples=PAPER002_LAYERS.replace("_units.parquet", "_resamples.npz"),
    log:
        "results/logs/fit_layer_contrast/sub-{subject}_task-{task}.log",
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        encoding=config["encoding"],
        settings=config["contrasts"]["settings"],
        seed=SEED,
    script:
        "../scripts/fit_layer_contrast.py"


rule paper002_summary:
    input:
        voxels=get_paper002_voxels,
        brains=expand(
            "results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
            subject=SUBJECTS,
            task=PAPER002_TASKS,
        ),
        residual=PAPER002_RESIDUAL_TABLES,
        layers=PAPER002_LAYER_TABLES,
        streams=PAPER002_STREAM_TABLES,
    output:
        tables=directory("results/paper002/tables"),
        bars=report(
            expand("results/figures/paper002_rois.{ext}", ext=FORMATS),
            caption="../report/paper002.rst",
            category="Paper 002",
        ),
        layers=report(
            expand(
                "results/figures/paper002_layers.{ext}",
                ext=FORMATS if PAPER002_LAYER_TABLES else [],
            ),
            caption="../report/paper002.rst",
            category="Paper 002",
        ),
        streams=report(
            expand(
                "results/figures/paper002_streams.{ext}",
                ext=FORMATS if PAPER002_STREAM_TABLES else [],
            ),
            caption="../report/paper002.rst",
            category="Paper 002",
        ),
    log:
        "results/logs/paper002_summary.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        paper002=config["paper002"],
        subjects=SUBJECTS,
        tasks=PAPER002_TASKS,
        figures=config["figures"],
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/paper002_summary.py"
