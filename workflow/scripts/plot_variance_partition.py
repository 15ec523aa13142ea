"""Rule plot_variance_partition: unique and shared variance of the joint models' feature
spaces per ROI."""
from brainalign import io
from brainalign.figures_encoding import plot_variance_partition
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    plot_variance_partition(
        io.read_table(snakemake.input.group),
        snakemake.output.figures,
        alpha=snakemake.params.alpha,
        dpi=snakemake.params.figures["dpi"],
    )
