"""Rule plot_condition_bars: each model's input conditions side by side per ROI (the ablations),
with one-sample and paired-test marks."""
from brainalign import io
from brainalign.figures_encoding import plot_condition_bars
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    plot_condition_bars(
        io.read_table(snakemake.input.group),
        io.read_table(snakemake.input.paired),
        snakemake.output.figures,
        alpha=snakemake.params.alpha,
        dpi=snakemake.params.figures["dpi"],
    )
