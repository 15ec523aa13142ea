"""Rule make_ieeg_demo_dataset: synthetic SEEG in BIDS-iEEG with planted site classes."""
from pathlib import Path

from brainalign.demo.ieeg_dataset import make_ieeg_demo_dataset
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    if len(snakemake.params.bids_task) != 1:
        raise ValueError(
            "config 'dataset.tasks': the intracranial demo records one film, so every task "
            f"must share one bids_task; got {snakemake.params.bids_task}"
        )
    features = {}
    for name, path in snakemake.input.items():
        label, _, kind = name.rpartition("_")
        if kind in ("words", "cuts"):
            features.setdefault(label, {})[kind] = path
    make_ieeg_demo_dataset(
        Path(snakemake.output.truth).parent.parent,
        Path(snakemake.input.words).parent.parent,
        features,
        params=snakemake.params.demo,
        subjects=snakemake.params.subjects,
        bids_task=snakemake.params.bids_task[0],
        seed=snakemake.params.seed,
    )
