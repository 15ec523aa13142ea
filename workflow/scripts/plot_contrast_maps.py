"""Rule plot_contrast_maps: where each contrast is significant - electrodes on a glass brain
coloured by delta, or the subject-average map of significant delta (volumes, surfaces)."""
import pandas as pd

from brainalign import io
from brainalign.figures_contrasts import mean_surface_maps, plot_electrode_contrasts
from brainalign.figures import plot_encoding_maps
from brainalign.figures_surface import plot_surface_maps
from brainalign.logs import log_to_file
from brainalign.pipeline import parse_entities

with log_to_file(snakemake.log[0]):
    title = f"held-out r, side a - side b, where significant: task {snakemake.wildcards.task}"
    dpi = snakemake.params.figures["dpi"]
    geometry = snakemake.params.geometry
    if geometry == "electrodes":
        units = pd.concat([io.read_table(p) for p in snakemake.input.units], ignore_index=True)
        plot_electrode_contrasts(units, snakemake.output.figures, title=title, dpi=dpi)
    elif geometry == "surface":
        plot_surface_maps(mean_surface_maps(snakemake.input.maps), snakemake.output.figures,
                          threshold=None, title=title, value_label="delta r", dpi=dpi)
    else:
        maps = {}
        for path in snakemake.input.maps:
            maps.setdefault(parse_entities(path)["contrast"], []).append(path)
        plot_encoding_maps(maps, paths=snakemake.output.figures, title=title, dpi=dpi, alpha=None,
                           value_label="delta r (side a - side b)")
