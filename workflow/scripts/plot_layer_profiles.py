"""Rule plot_layer_profiles: group-mean score per layer, per ROI, per model and condition."""
from brainalign import io
from brainalign.figures import plot_layer_profiles
from brainalign.logs import log_to_file

LABELS = {"encoding": "held-out Pearson r (mean over ROI voxels)"}

with log_to_file(snakemake.log[0]):
    plot_layer_profiles(
        io.read_table(snakemake.input.group),
        value_label=LABELS[snakemake.wildcards.analysis],
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
