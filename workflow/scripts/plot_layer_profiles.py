"""Rule plot_layer_profiles: group-mean score per layer (or relative depth), per ROI, per model
and condition grouped by family, with the noise ceiling and FDR-significant layers."""
from brainalign import io
from brainalign.figures import plot_layer_profiles
from brainalign.logs import log_to_file

LABELS = {"encoding": "held-out Pearson r (mean over ROI voxels)"}

with log_to_file(snakemake.log[0]):
    figures = snakemake.params.figures
    plot_layer_profiles(
        io.read_table(snakemake.input.group),
        subjects=io.read_table(snakemake.input.subjects),
        families=snakemake.params.families,
        relative_depth=figures.get("layer_axis", "layer") == "relative",
        alpha=snakemake.params.alpha,
        value_label=LABELS[snakemake.wildcards.analysis],
        paths=snakemake.output.figures,
        dpi=figures["dpi"],
    )
