# Per-subject preprocessing, one rule for every dataset format: the reader of
# dataset.format (brainalign.datasets registry) turns a subject's task into the labelled
# representation every analysis reads (concept patterns or cleaned time series, over
# voxels or vertices, with ROI labels), and counts the units with NaN or constant signal.
BUNDLE_TABLES += ["results/group/qc_units.parquet"]


rule preprocess_brain:
    input:
        unpack(get_brain_inputs),
    output:
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
        qc="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-qc_units.tsv",
    log:
        "results/logs/preprocess_brain/sub-{subject}_task-{task}.log",
    benchmark:
        "results/benchmarks/preprocess_brain/sub-{subject}_task-{task}.tsv"
    conda:
        "../../envs/preprocess.yaml"
    container:
        f"{workflow.basedir}/containers/preprocess.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        dataset=DATASET,
        stimuli=STIMULI,
        preprocess=config["preprocess"],
    script:
        "../scripts/preprocess_brain.py"


rule summarize_qc:
    input:
        tables=expand(rules.preprocess_brain.output.qc, subject=SUBJECTS, task=TASKS),
    output:
        qc="results/group/qc_units.parquet",
        report=report(
            "results/group/qc_units.tsv",
            caption="../report/qc.rst",
            category="Quality control",
        ),
    log:
        "results/logs/summarize_qc.log",
    conda:
        "../../envs/preprocess.yaml"
    container:
        f"{workflow.basedir}/containers/preprocess.sif"
    script:
        "../scripts/summarize_qc.py"
