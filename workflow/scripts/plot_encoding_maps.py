"""Rule plot_encoding_maps: subject-average r maps of each model/condition at its deepest layer."""
from brainalign.figures import plot_encoding_maps
from brainalign.logs import log_to_file
from brainalign.pipeline import group_maps_by_unit

with log_to_file(snakemake.log[0]):
    plot_encoding_maps(
        group_maps_by_unit(snakemake.input.maps, deepest_only=True),
        paths=snakemake.output.figures,
        title=f"held-out r, task {snakemake.wildcards.task}",
        dpi=snakemake.params.figures["dpi"],
    )
