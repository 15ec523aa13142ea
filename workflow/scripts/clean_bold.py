"""Rule clean_bold: mask, detrend, high-pass, regress confounds and z-score naturalistic BOLD per run."""
from brainalign import io
from brainalign.logs import log_to_file
from brainalign.preprocess import preprocess_naturalistic

with log_to_file(snakemake.log[0]):
    runs = io.read_table(snakemake.input.runs)
    settings = snakemake.params.preprocess
    arrays, meta = preprocess_naturalistic(
        snakemake.input.bold,
        snakemake.input.confounds,
        snakemake.input.mask,
        snakemake.input.atlas,
        snakemake.input.labels,
        tr=float(runs["tr"].iloc[0]),
        high_pass=settings["high_pass"],
        detrend=settings["detrend"],
        confounds=settings["confounds"],
        subject=snakemake.wildcards.subject,
    )
    io.save_arrays(snakemake.output.bold, arrays, meta)
