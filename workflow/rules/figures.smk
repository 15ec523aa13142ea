# Group statistics across subjects, and the figures.
BUNDLE_TABLES += [
    "results/group/encoding_subjects.parquet",
    "results/group/encoding_group.parquet",
]
BUNDLE_FIGURES += expand(
    "results/figures/{name}.{ext}",
    name=["encoding_layer_profiles", *(f"encoding_map_task-{t}" for t in TASKS)],
    ext=FORMATS,
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
    log:
        "results/logs/plot_encoding_maps/task-{task}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        figures=config["figures"],
        geometry="electrodes" if ELECTRODES else "surface" if SURFACE else "volume",
    script:
        "../scripts/plot_encoding_maps.py"
