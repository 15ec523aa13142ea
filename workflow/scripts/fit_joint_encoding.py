"""Rule fit_joint_encoding: banded ridge over a joint model's feature spaces, variance partitioning."""

import os

from himalaya.backend import set_backend

from brainalign.encoding.steps import run_fit_joint_encoding
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    set_backend(os.environ.get("BRAINALIGN_BACKEND", "numpy"), on_error="warn")
    run_fit_joint_encoding(
        snakemake.input.brain,
        list(snakemake.input.features),
        joint=snakemake.params.joint,
        params=snakemake.params.encoding,
        seed=snakemake.params.seed,
        out_map=snakemake.output.map,
        out_voxels=snakemake.output.voxels,
        out_rois=snakemake.output.rois,
    )
