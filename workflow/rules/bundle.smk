# The publishable result bundle: tables, figures and provenance, with a checksum manifest.
# Snakemake's HTML report is added by `snakemake --report results/bundle/report.html`.


rule write_provenance:
    input:
        stimuli=get_stimulus_files,
        dataset=get_dataset_files,
        features=get_feature_files,
    output:
        provenance="results/bundle/provenance.json",
    log:
        "results/logs/write_provenance.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        config=config,
    script:
        "../scripts/write_provenance.py"


rule make_bundle:
    input:
        tables=get_tables,
        figures=get_figures,
        provenance="results/bundle/provenance.json",
    output:
        manifest="results/bundle/MANIFEST.tsv",
        tables=directory("results/bundle/tables"),
        figures=directory("results/bundle/figures"),
    log:
        "results/logs/make_bundle.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    script:
        "../scripts/make_bundle.py"
