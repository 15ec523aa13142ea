"""Rule paper002_summary: paper 002's ROI t-tests (condition pairs, residual vs 0, fine-tuned
- pretrained per layer) and figures."""
from pathlib import Path

import pandas as pd

from brainalign import io
from brainalign.logs import log_to_file
from brainalign.papers.paper002 import (
    encoding_units,
    paper002_tables,
    plot_layer_deltas,
    plot_roi_bars,
    plot_stream_bars,
)

with log_to_file(snakemake.log[0]):
    settings = snakemake.params.paper002
    brains = {
        (subject, task): path
        for (subject, task), path in zip(
            [(s, t) for s in snakemake.params.subjects for t in snakemake.params.tasks],
            snakemake.input.brains,
        )
    }
    units = encoding_units(snakemake.input.voxels, brains, settings["layer"])

    def concat(paths):
        return pd.concat([io.read_table(p) for p in paths], ignore_index=True) if paths else None

    alpha = snakemake.params.alpha
    tables = paper002_tables(units, settings["conditions"], concat(snakemake.input.residual),
                             concat(snakemake.input.layers), concat(snakemake.input.streams),
                             alpha=alpha)
    out = Path(snakemake.output.tables)
    for name, table in tables.items():
        io.write_table(table, out / f"paper002_{name}.parquet")
    dpi = snakemake.params.figures["dpi"]
    plot_roi_bars(tables, snakemake.output.bars, alpha=alpha, dpi=dpi)
    if snakemake.output.layers:
        plot_layer_deltas(tables["layers"], snakemake.output.layers, dpi=dpi)
    if snakemake.output.streams:
        plot_stream_bars(tables["streams"], snakemake.output.streams, alpha=alpha, dpi=dpi)
