"""Rule fit_contrast: one subject x task x contrast, both sides fitted on the same folds and
compared unit by unit with a paired bootstrap of their held-out scores."""

import os

from himalaya.backend import set_backend

from brainalign.contrasts.maps import write_delta_map
from brainalign.contrasts.steps import run_contrast
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    spaces = snakemake.params.spaces
    sides = {
        side: [(snakemake.input[f"{side}{k}"], layer) for k, (_, _, layer) in enumerate(spaces[side])]
        for side in ("a", "b")
    }
    run_contrast(
        snakemake.input.brain,
        sides,
        name=snakemake.wildcards.contrast,
        params=snakemake.params.encoding,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        out_units=snakemake.output.units,
        out_shares=snakemake.output.shares,
        out_resamples=snakemake.output.resamples,
    )
    write_delta_map(snakemake.input.brain, snakemake.output.units, snakemake.output.map)
