"""Rule make_noise_images: one seeded noise image per stimulus image, with its hash."""
from pathlib import Path

from brainalign.features import make_noise_images
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    make_noise_images(snakemake.params.stimuli, Path(snakemake.output.table).parent, seed=snakemake.params.seed)
