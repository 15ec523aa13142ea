"""Rule compute_rsa: compare a brain RDM with one model layer's RDM."""
from brainalign.logs import log_to_file
from brainalign.pipeline import run_rsa

with log_to_file(snakemake.log[0]):
    run_rsa(
        snakemake.input.brain,
        snakemake.input.model,
        layer=int(snakemake.wildcards.layer),
        method=snakemake.params.rsa["comparison"],
        out=snakemake.output.table,
    )
