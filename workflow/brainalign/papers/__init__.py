"""The papers' analyses as named presets: what each preset's summary rules compute.

- :mod:`~brainalign.papers.paper000` - concept RSA (Pereira 2018): both estimands, the
  partial-correlation ablation, model x model similarity, best-layer tests, figures.

Each preset is a configuration fragment (``config/presets/<paper>.yaml``) and a Snakemake
target of the same name (``snakemake paper000``) that builds exactly its tables and
figures.
"""

__all__: list[str] = []
