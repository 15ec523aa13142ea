"""Rule compute_brain_rdms: one subject's concept RDM in one ROI."""
from brainalign.logs import log_to_file
from brainalign.pipeline import run_brain_rdm

with log_to_file(snakemake.log[0]):
    run_brain_rdm(
        snakemake.input.patterns,
        snakemake.wildcards.roi,
        metric=snakemake.params.rsa["metric"],
        out=snakemake.output.rdm,
    )
