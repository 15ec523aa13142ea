"""Rule plot_rsa_rdms: group-average brain RDMs per ROI and model RDMs at each model's deepest layer."""
from brainalign import io
from brainalign.figures_rsa import plot_rsa_rdms
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    plot_rsa_rdms(
        io.read_table(snakemake.input.brain),
        snakemake.input.models,
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
