"""Rule fit_encoding: nested-CV ridge encoding of one subject x task x model x condition x layer."""

import os

from himalaya.backend import set_backend

from brainalign.encoding.steps import run_fit_encoding
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    run_fit_encoding(
        snakemake.input.brain,
        snakemake.input.features,
        layer=int(snakemake.wildcards.layer),
        params=snakemake.params.encoding,
        seed=snakemake.params.seed,
        out_map=snakemake.output.map,
        out_voxels=snakemake.output.voxels,
        out_rois=snakemake.output.rois,
    )
