"""Rule fit_encoding: nested-CV ridge encoding of every layer of one subject x task x model x
condition, with permutation tests and the nested best-layer choice."""

import os

from himalaya.backend import set_backend

from brainalign.encoding.steps import run_fit_encoding
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    run_fit_encoding(
        snakemake.input.brain,
        snakemake.input.features,
        layers=list(snakemake.params.layers),
        params=snakemake.params.encoding,
        seed=snakemake.params.seed,
        out_map=snakemake.output.map,
        out_voxels=snakemake.output.voxels,
        out_rois=snakemake.output.rois,
        out_best_layer=snakemake.output.best_layer,
    )
