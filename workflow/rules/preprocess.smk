# Per-subject preprocessing, one rule for every dataset format: the reader of
# dataset.format (brainalign.datasets registry) turns a subject's task into the labelled
# representation every analysis reads (concept patterns or cleaned time series, over
# voxels or vertices, with ROI labels).


rule preprocess_brain:
    input:
        unpack(get_brain_inputs),
    output:
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
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
