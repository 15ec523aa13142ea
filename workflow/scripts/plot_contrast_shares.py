"""Rule plot_contrast_shares: share of significant sites (or units) per region, per contrast."""
from brainalign import io
from brainalign.figures_contrasts import plot_contrast_shares
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    plot_contrast_shares(
        io.read_table(snakemake.input.group),
        snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
