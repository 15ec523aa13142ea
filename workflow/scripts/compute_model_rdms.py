"""Rule compute_model_rdms: the concept RDM of every layer of one model x condition."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps import run_model_rdms

with log_to_file(snakemake.log[0]):
    run_model_rdms(
        snakemake.input.features,
        metric=snakemake.params.rsa["metric"],
        out=snakemake.output.rdms,
    )
