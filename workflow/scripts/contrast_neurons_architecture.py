"""Rule contrast_neurons_architecture: one subject x task - the share of unified voxels per
network, cross-modal model minus two-tower model, with a block bootstrap shared by both."""
from brainalign.logs import log_to_file
from brainalign.neurons.steps import run_architecture_contrast

with log_to_file(snakemake.log[0]):
    run_architecture_contrast(
        {"a": snakemake.input.a, "b": snakemake.input.b},
        snakemake.input.brain,
        snakemake.output.table,
        models=snakemake.params.models,
        params=snakemake.params.neurons,
        encoding=snakemake.params.encoding,
        seed=snakemake.params.seed,
    )
