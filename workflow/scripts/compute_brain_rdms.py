"""Rule compute_brain_rdms: one subject's concept RDM in every ROI."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps import run_brain_rdms

with log_to_file(snakemake.log[0]):
    rsa = snakemake.params.rsa
    run_brain_rdms(
        snakemake.input.patterns,
        snakemake.params.rois,
        metric=rsa["brain_metric"] or rsa["metric"],
        noise=rsa["noise"],
        out=snakemake.output.rdms,
    )
