"""Rule map_neurons: one subject x task x model x condition - every chosen unit of the model
mapped to every voxel (held-out r, sign, corrected significance), and the analyses' tables."""
from brainalign.logs import log_to_file
from brainalign.neurons.steps import TABLES, run_map_units

with log_to_file(snakemake.log[0]):
    neurons = snakemake.params.neurons
    run_map_units(
        snakemake.input.features,
        snakemake.input.brain,
        {name: snakemake.output[name] for name in (*TABLES, "pairs", "map")},
        model=snakemake.wildcards.model,
        condition=snakemake.wildcards.condition,
        spec=neurons["models"][snakemake.wildcards.model],
        params=neurons,
        encoding=snakemake.params.encoding,
        seed=snakemake.params.seed,
    )
