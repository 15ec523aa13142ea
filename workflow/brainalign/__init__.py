"""brainalign: how closely model representations align with human brain recordings.

The science lives in this package; the Snakemake rules in ``workflow/rules`` and the
thin scripts in ``workflow/scripts`` only read their inputs and call it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
