"""Rule fit_residual_encoding: one subject x task - the joint features with the unimodal ones
regressed out inside each outer training fold, encoded per unit."""
import os

from himalaya.backend import set_backend

from brainalign.encoding.steps_paper002 import run_fit_residual_encoding
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    unimodal = [
        (snakemake.input[f"unimodal{k}"], layer)
        for k, layer in enumerate(snakemake.params.unimodal)
    ]
    run_fit_residual_encoding(
        snakemake.input.brain,
        (snakemake.input.joint, snakemake.params.layer),
        unimodal,
        params=snakemake.params.encoding,
        seed=snakemake.params.seed,
        out_units=snakemake.output.units,
        residual_alpha=snakemake.params.residual_alpha,
        residual_components=snakemake.params.residual_components,
    )
