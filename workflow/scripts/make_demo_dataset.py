"""Rule make_demo_dataset: a synthetic BIDS-style dataset driven by known model features."""
from pathlib import Path

from brainalign.demo import make_demo_dataset
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    demo = snakemake.params.demo
    generators = {
        roi: {
            **{
                task: snakemake.input[f"{roi}_{task}"]
                for task in snakemake.params.tasks
                if f"{roi}_{task}" in snakemake.input.keys()
            },
            "layer": gen["layer"],
        }
        for roi, gen in demo["generators"].items()
    }
    make_demo_dataset(
        Path(snakemake.output.truth).parents[1],
        generators=generators,
        n_subjects=len(snakemake.params.subjects),
        n_concept_runs=len(snakemake.params.concept_runs),
        n_contexts=demo["n_contexts"],
        voxel_size=demo["voxel_size"],
        snr=demo["snr"],
        ar1_phi=demo["ar1_phi"],
        seed=snakemake.params.seed,
    )
