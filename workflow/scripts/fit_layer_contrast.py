"""Rule fit_layer_contrast: one subject x task - the fine-tuned vs the pretrained model, unit
by unit, at every matched layer (shared resamples across layers)."""
import os

from himalaya.backend import set_backend

from brainalign.contrasts.layers import run_layer_contrast
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    run_layer_contrast(
        snakemake.input.brain,
        snakemake.input.a,
        snakemake.input.b,
        name="finetuned",
        params=snakemake.params.encoding,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        out_units=snakemake.output.units,
        out_shares=snakemake.output.shares,
        out_resamples=snakemake.output.resamples,
    )
