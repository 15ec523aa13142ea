"""Rule plot_encoding_maps: subject-average r maps of each model/condition at its deepest layer
(slices of the MNI brain for volumes, the inflated fsaverage surface for vertices, every
subject's electrodes on a glass brain for intracranial data)."""
from brainalign.figures import plot_encoding_maps
from brainalign.figures_electrodes import electrode_map_table, plot_electrode_maps
from brainalign.figures_surface import plot_surface_maps
from brainalign.logs import log_to_file
from brainalign.pipeline import group_maps_by_unit, group_surface_maps_by_unit

with log_to_file(snakemake.log[0]):
    title = f"held-out r, task {snakemake.wildcards.task}"
    if snakemake.params.geometry == "electrodes":
        plot_electrode_maps(
            electrode_map_table(snakemake.input.maps, deepest_only=True),
            snakemake.output.figures,
            title=f"{title} (best time bin per electrode)",
            dpi=snakemake.params.figures["dpi"],
        )
    elif snakemake.params.geometry == "surface":
        plot_surface_maps(
            group_surface_maps_by_unit(snakemake.input.maps, deepest_only=True),
            snakemake.output.figures,
            threshold=0.05,  # fixed |r|: surfaces have no group test yet
            title=title,
            dpi=snakemake.params.figures["dpi"],
        )
    else:
        plot_encoding_maps(
            group_maps_by_unit(snakemake.input.maps, deepest_only=True),
            paths=snakemake.output.figures,
            title=title,
            alpha=snakemake.params.alpha,
            dpi=snakemake.params.figures["dpi"],
        )
