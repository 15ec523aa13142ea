"""Rule make_group_map: the mean over subjects of one analysis's encoding maps (template grid)."""
from brainalign.bundle.steps import group_mean_map
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    group_mean_map(snakemake.input.maps, snakemake.output.map, snakemake.output.sidecar)
