"""Rule make_neurons_demo_dataset: synthetic naturalistic fMRI driven by planted model units."""
from pathlib import Path

from brainalign.demo.neurons_dataset import make_neurons_dataset
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    demo = snakemake.params.demo
    make_neurons_dataset(
        Path(snakemake.output.truth).parents[1],
        features={model: snakemake.input[model] for model in snakemake.input.keys()},
        plants=demo["plants"],
        n_subjects=len(snakemake.params.subjects),
        group_size=demo["group_size"],
        voxel_size=demo["voxel_size"],
        snr=demo["snr"],
        ar1_phi=demo["ar1_phi"],
        seed=snakemake.params.seed,
    )
