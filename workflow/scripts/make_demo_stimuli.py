"""Rule make_demo_stimuli: the demo's words, sentences, images, transcript and frames."""
from pathlib import Path

from brainalign.demo import make_demo_stimuli
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    demo = snakemake.params.demo
    make_demo_stimuli(
        Path(snakemake.output.concepts).parent,
        n_concepts=demo["n_concepts"],
        n_contexts=demo["n_contexts"],
        n_runs=snakemake.params.n_runs,
        n_trs=demo["n_trs"],
        tr=demo["tr"],
        image_size=demo["image_size"],
        seed=snakemake.params.seed,
    )
