# Group statistics across subjects, and the figures of the encoding stage. Every figure is
# written in each format of figures.formats, with its plotted numbers in <figure>.tsv.
ENCODING_FIGURES = [
    "encoding_layer_profiles",
    "encoding_conditions",
    "encoding_shares",
    *(f"encoding_map_task-{t}" for t in TASKS),
    *(["encoding_joint"] if JOINT_MODELS else []),
]
BUNDLE_TABLES += [
    "results/group/encoding_subjects.parquet",
    "results/group/encoding_group.parquet",
]
BUNDLE_FIGURES += expand(
    "results/figures/{name}.{ext}", name=ENCODING_FIGURES, ext=[*FORMATS, "tsv"]
)
# The RSA stage's tables, figures and rules are in rsa.smk.


rule summarize_encoding:
    input:
        tables=get_encoding_tables,
    output:
        subjects="results/group/encoding_subjects.parquet",
        group="results/group/encoding_group.parquet",
    log:
        "results/logs/summarize_encoding.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    script:
        "../scripts/summarize_encoding.py"


rule plot_layer_profiles:
    input:
        group="results/group/{analysis}_group.parquet",
        subjects="results/group/{analysis}_subjects.parquet",
    output:
        figures=report(
            expand("results/figures/{{analysis}}_layer_profiles.{ext}", ext=FORMATS),
            caption="../report/layer_profiles.rst",
            category="Layer profiles",
        ),
        table="results/figures/{analysis}_layer_profiles.tsv",
    log:
        "results/logs/plot_layer_profiles/{analysis}.log",
    wildcard_constraints:
        analysis="encoding",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        families=PAPER000_FAMILIES,
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/plot_layer_profiles.py"


rule plot_encoding_maps:
    input:
        maps=get_encoding_maps,
        sidecars=get_encoding_sidecars,
    output:
        figures=report(
            expand("results/figures/encoding_map_task-{{task}}.{ext}", ext=FORMATS),
            caption="../report/encoding_map.rst",
            category="Encoding maps",
        ),
        table="results/figures/encoding_map_task-{task}.tsv",
    log:
        "results/logs/plot_encoding_maps/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        geometry="electrodes" if ELECTRODES else "surface" if SURFACE else "volume",
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/plot_encoding_maps.py"


rule plot_condition_bars:
    input:
        group="results/group/encoding_group.parquet",
        paired="results/group/encoding_conditions_paired.parquet",
    output:
        figures=report(
            expand("results/figures/encoding_conditions.{ext}", ext=FORMATS),
            caption="../report/encoding_conditions.rst",
            category="Ablations",
        ),
        table="results/figures/encoding_conditions.tsv",
    log:
        "results/logs/plot_condition_bars.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/plot_condition_bars.py"


rule plot_significant_shares:
    input:
        subjects="results/group/encoding_subjects.parquet",
    output:
        figures=report(
            expand("results/figures/encoding_shares.{ext}", ext=FORMATS),
            caption="../report/encoding_shares.rst",
            category="Encoding maps",
        ),
        table="results/figures/encoding_shares.tsv",
    log:
        "results/logs/plot_significant_shares.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/plot_significant_shares.py"


rule plot_variance_partition:
    input:
        group="results/group/encoding_joint_group.parquet",
    output:
        figures=report(
            expand("results/figures/encoding_joint.{ext}", ext=FORMATS),
            caption="../report/encoding_joint.rst",
            category="Ablations",
        ),
        table="results/figures/encoding_joint.tsv",
    log:
        "results/logs/plot_variance_partition.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        alpha=config["encoding"]["fdr_q"],
    script:
        "../scripts/plot_variance_partition.py"
