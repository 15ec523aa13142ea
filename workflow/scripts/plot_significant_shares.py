"""Rule plot_significant_shares: share of each ROI's voxels significant in the subjects'
encoding tests, per model and condition."""
from brainalign import io
from brainalign.figures_encoding import plot_significant_shares
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    plot_significant_shares(
        io.read_table(snakemake.input.subjects),
        snakemake.output.figures,
        fdr_q=snakemake.params.alpha,
        dpi=snakemake.params.figures["dpi"],
    )
