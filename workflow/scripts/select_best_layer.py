"""Rule select_best_layer: nested choice of a model's best layer per ROI, held-out score per fold."""

import os

from himalaya.backend import set_backend

from brainalign.encoding.steps import run_select_best_layer
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    run_select_best_layer(
        snakemake.input.brain,
        snakemake.input.features,
        layers=list(snakemake.params.layers),
        params=snakemake.params.encoding,
        seed=snakemake.params.seed,
        out=snakemake.output.folds,
    )
