"""Pereira et al. (2018) experiment 1: the released ``data_180concepts_<paradigm>.mat`` files.

One file per subject and paradigm (sentences, pictures, wordclouds), one beta pattern per
concept, read with ``loadmat(squeeze_me=False, struct_as_record=False)`` (MATLAB v5/v7):

- ``examples`` (n_concepts, n_voxels) double: the betas, used as released;
- ``keyConcept`` cell (n_concepts, 1) of words, through ``labelsConcept`` (1-based) if present;
- ``meta`` 1 x 1 struct: ``dimx/dimy/dimz`` (grid shape), ``colToCoord`` (n_voxels, 3)
  1-based x, y, z of each column, ``coordToCol`` (dimx, dimy, dimz) 1-based column or 0
  (checked to invert ``colToCoord``), ``atlases`` cell (1, n_atlases) of names, ``rois``
  cell of (n_regions, 1) cells of region names, ``roiColumns{a}{r}`` (k, 1) 1-based columns
  of region r of atlas a (read; integer class in the release, as loaders index numpy with
  it), ``roiMultimask{a}`` (n_voxels, 1) 1-based region or 0 / NaN (read when roiColumns is
  absent). Field order (5 and 11 seen in public code, the rest as in experiments 2-3):
  dimx, dimy, dimz, dimensions, indicesIn3D, colToCoord (5), coordToCol, voxelsToNeighbours,
  numberOfNeighbours, atlases, rois, roiColumns (11), roiMultimask.

Layout confirmed on public code: dmg-illc/vl-concept-processing ``rsa/getting_brain_rdms.ipynb``
(paper 000: networks ``languageLH``, ``languageRH``, ``visual`` are atlases of
``meta.atlases``; a network's voxels are ``meta.roiColumns{a}{r} - 1`` over its regions,
applied to ``examples`` as released); brain-score/language
``brainscore_language/data/pereira2018/data_packaging.py`` (commit 0e0bb4a:
``meta['roiMultimask'][0, 0][a, 0][voxel, 0]`` 1-based into ``meta['rois'][0, 0][a, 0]``,
``colToCoord``, ``indicesIn3D``); other public readers found by text search (repositories not
shown): ``keyConcept[i][0][0]`` is row i's word, ``meta[0][0][5]`` is colToCoord and
``meta[0][0][11][0][14]`` the 333 Gordon regions, and ``meta.atlases`` = aal_1ofN,
languageParcelsConservative_aal, languageParcels_aal, semantic_aal, multipleDemand_aal, MD,
DMN, languageLH, languageRH, visual_body, visual_face, visual_object, visual_scene, visual,
gordon (languageLH regions are named ``L_*``).

ROI names (``dataset.rois``, pattern ``^[A-Za-z0-9]+$``) resolve to, in this order: an atlas
(a network: all its regions) by its name with or without non-alphanumerics (``languageLH``,
``DMN``, ``visualbody``); a region of one atlas by its name with or without
non-alphanumerics (``FrontalInfOperL`` for ``Frontal_Inf_Oper_L``); the stripped atlas name
followed by the stripped region name (``aal1ofNFrontalInfOperL``), needed when atlases share
a region name. Networks and atlas regions overlap, hence ``roi_masks``.

The release has no affine: the grid is the file's own (``space`` "pereira"), with a diagonal
affine from ``meta.voxelSize`` when present, else the identity. Voxels with NaN / infinite or
constant betas are dropped from the units, counted in ``meta['qc']`` and logged.

The MATLAB layout (variables, ``meta``, ROI names) is read in
:mod:`brainalign.datasets.pereira_mat`; this module turns it into units and registers the reader.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .pereira_mat import (
    _REQUIRED,
    PARADIGMS,
    _affine,
    _atlas_names,
    _check_variables,
    _grid,
    _load,
    _resolve,
    _roi_sets,
    _row_concepts,
)
from .registry import DatasetError, register_reader
from .units import roi_masks_from_sets

__all__ = ["PARADIGMS", "pereira_path", "check_pereira_file", "read_pereira", "PereiraReader"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def pereira_path(root: PathLike, subject: str, paradigm: str) -> str:
    """``<root>/<subject>/data_180concepts_<paradigm>.mat``, as the release names it."""
    return str(Path(root) / subject / f"data_180concepts_{paradigm}.mat")


def _check_against_stimuli(
    file_concepts: Sequence[str], stimuli: Sequence[str], path: Path
) -> None:
    known = set(stimuli)
    lacking = [c for c in file_concepts if c not in known]
    if lacking:
        raise DatasetError(
            f"Pereira file '{path}' has {len(lacking)} concepts that the stimuli's "
            f"concepts.tsv lacks (e.g. {', '.join(repr(c) for c in lacking[:5])}); expected "
            "every keyConcept in concepts.tsv. Add them to concepts.tsv (with their sentences "
            "and images) or point 'stimuli.root' at the Pereira stimuli."
        )


def check_pereira_file(mat_path: PathLike, concepts_from_stimuli: Sequence[str]) -> None:
    """Cheap parse-time check of one Pereira file: reads names and ``keyConcept`` only.

    Parameters
    ----------
    mat_path : path-like
        A ``data_180concepts_<paradigm>.mat`` file.
    concepts_from_stimuli : sequence of str
        The ``concept`` column of the stimuli folder's ``concepts.tsv``.

    Raises
    ------
    DatasetError
        One line when the file is missing or unreadable, lacks ``examples``, ``meta`` or
        ``keyConcept``, has ``examples`` that is not 2-D, or has concepts the stimuli lack.
    """
    path = Path(mat_path)
    variables = _check_variables(path)
    names = [n for n in ("keyConcept", "labelsConcept") if n in variables]
    file_concepts = _row_concepts(_load(path, names), variables["examples"][0][0], path)
    _check_against_stimuli(file_concepts, concepts_from_stimuli, path)


def _concept_rows(
    file_concepts: list[str], concepts: Sequence[str] | None, path: Path
) -> tuple[list[int], list[str], list[str]]:
    """Rows of ``examples`` in stimuli order, the stimuli kept, and those without data."""
    if concepts is None:
        return list(range(len(file_concepts))), list(file_concepts), []
    concepts = [str(c) for c in concepts]
    _check_against_stimuli(file_concepts, concepts, path)
    where = {c: i for i, c in enumerate(file_concepts)}
    kept = [c for c in concepts if c in where]
    absent = [c for c in concepts if c not in where]
    if absent:
        logger.warning(
            "%d stimuli concepts have no pattern in %s and are left out: %s",
            len(absent), path, absent[:10],
        )
    return [where[c] for c in kept], kept, absent


def _drop_unusable(
    patterns: np.ndarray, sets: Mapping[str, np.ndarray], absent: list[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Drop voxels with NaN / infinite or constant betas; kept mask and counts (``qc``)."""
    bad = ~np.isfinite(patterns).all(axis=0)
    flat = patterns.max(axis=0, initial=-np.inf) == patterns.min(axis=0, initial=np.inf)
    constant = ~bad & flat
    keep = ~(bad | constant)
    qc = {
        "n_voxels_file": int(keep.size),
        "n_voxels_nan": int(bad.sum()),
        "n_voxels_constant": int(constant.sum()),
        "n_voxels_dropped": int((~keep).sum()),
        "n_voxels": int(keep.sum()),
        "dropped_by_roi": {name: int((mask & ~keep).sum()) for name, mask in sets.items()},
        "stimuli_without_data": absent,
    }
    return patterns[:, keep], keep, qc


def _log_rois(sets: Mapping[str, np.ndarray], definitions: Mapping[str, str], qc: Any, path: Path):
    """Log each ROI's voxel count; an ROI left without voxels is an error."""
    for name, mask in sets.items():
        if not mask.any():
            raise DatasetError(
                f"ROI '{name}' in config 'dataset.rois' has no usable voxels in Pereira file "
                f"'{path}' ({qc['dropped_by_roi'][name]} dropped as NaN or constant); expected "
                "at least one. Remove it from 'dataset.rois' or check the file."
            )
        logger.info(
            "ROI %s = %s: %d voxels (%d dropped)",
            name, definitions[name], int(mask.sum()), qc["dropped_by_roi"][name],
        )


def _zscore(patterns: np.ndarray) -> np.ndarray:
    centred = patterns - patterns.mean(axis=0)
    return centred / centred.std(axis=0)


def read_pereira(
    mat_path: PathLike,
    *,
    rois: list[str],
    concepts: list[str] | None,
    zscore: bool = False,
    subject: str,
    task: str,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read one Pereira 2018 experiment-1 file into the labelled brain representation.

    Parameters
    ----------
    mat_path : path-like
        ``data_180concepts_<paradigm>.mat`` of one subject.
    rois : list of str
        Networks or atlas regions, by name (see the module docstring); they may overlap.
    concepts : list of str or None
        Row order of the patterns (the stimuli's ``concepts.tsv``); every concept of the file
        must be in it; stimuli concepts without a pattern are left out (logged, in ``qc``).
        None: the file's order.
    zscore : bool
        Z-score each voxel across concepts; False keeps the betas as released (paper 000).
    subject, task : str
        Recorded in the metadata.

    Returns
    -------
    arrays : dict
        ``patterns`` float32 (n_concepts, n_voxels), ``ijk`` int32 (n_voxels, 3) 0-based,
        ``roi`` int32 (n_voxels,) and, as ROIs overlap, ``roi_masks`` uint8 (n_rois, n_voxels).
        The voxels are the file's columns (the subject's own set), in file order, less those
        with NaN / infinite or constant betas.
    meta : dict
        ``subject``, ``task``, ``kind`` "concepts", ``geometry`` "volume", ``space``
        "pereira", ``shape``, ``affine``, ``stimuli``, ``n_repeats`` 1, ``rois``,
        ``roi_names`` (when ROIs overlap), ``roi_definitions`` ({name: "atlas" or
        "atlas/region"}), ``zscore``, ``source`` and ``qc`` (voxel counts: in the file, NaN,
        constant, dropped, kept, dropped per ROI; ``stimuli_without_data``).

    Raises
    ------
    DatasetError
        One line on a missing or malformed file, concepts the stimuli lack, or an unknown,
        ambiguous or empty ROI.
    """
    path = Path(mat_path)
    variables = _check_variables(path)
    data = _load(path, [n for n in (*_REQUIRED, "labelsConcept") if n in variables])
    examples = np.asarray(data["examples"])
    meta_struct = np.asarray(data["meta"]).ravel()[0]  # a scipy mat_struct
    file_concepts = _row_concepts(data, examples.shape[0], path)
    rows, stimuli, absent = _concept_rows(file_concepts, concepts, path)
    ijk, shape = _grid(meta_struct, examples.shape[1], path)
    sets, definitions = _roi_sets(meta_struct, rois, examples.shape[1], path)
    patterns, keep, qc = _drop_unusable(examples[rows], sets, absent)
    del data, examples  # the float64 betas: hundreds of MB for a real file
    if zscore:
        patterns = _zscore(patterns.astype(np.float64))
    sets = {name: mask[keep] for name, mask in sets.items()}
    logger.info(
        "sub-%s task-%s: %s: %d concepts x %d voxels kept of %d; dropped %d voxels with "
        "NaN/infinite and %d with constant betas; betas %s",
        subject, task, path.name, *patterns.shape, qc["n_voxels_file"], qc["n_voxels_nan"],
        qc["n_voxels_constant"], "z-scored per voxel" if zscore else "as released",
    )
    _log_rois(sets, definitions, qc, path)
    roi_arrays, roi_meta = roi_masks_from_sets(sets, int(keep.sum()))
    arrays = {"patterns": patterns.astype(np.float32), "ijk": ijk[keep], **roi_arrays}
    meta = {
        "subject": subject, "task": task, "kind": "concepts", "geometry": "volume",
        "space": "pereira", "shape": shape, "affine": _affine(meta_struct),
        "stimuli": stimuli, "n_repeats": 1, **roi_meta, "roi_definitions": definitions,
        "zscore": bool(zscore), "source": str(path), "qc": qc,
    }
    return arrays, meta


@register_reader("pereira")
class PereiraReader:
    """``dataset.format: pereira``: each task (kind ``concepts``) is one paradigm.

    The paradigm is the task's ``bids_task``, else its name: sentences, pictures or
    wordclouds. Concepts are checked against, and ordered as, ``<stimuli_root>/concepts.tsv``.
    Constructed with the validated ``dataset`` section, the stimuli root and the config name.
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        stimuli_root: str,
        source: str = "config/config.yaml",
        preprocess: Mapping[str, Any] | None = None,
    ) -> None:
        self.dataset, self.stimuli_root, self.source = dataset, str(stimuli_root), source
        tasks = dataset["tasks"]  # the config normalises a list of names to a mapping
        self.tasks = dict(tasks) if isinstance(tasks, Mapping) else {t: {"kind": t} for t in tasks}

    def paradigm(self, task: str) -> str:
        """The paradigm of a task: its ``bids_task``, else its name; checked."""
        if task not in self.tasks:
            raise DatasetError(
                f"task '{task}' is not in config 'dataset.tasks' ({', '.join(self.tasks)}); "
                f"expected one of them. Edit {self.source}."
            )
        spec = self.tasks[task]
        paradigm = spec.get("bids_task") or task
        if spec.get("kind") != "concepts" or paradigm not in PARADIGMS:
            raise DatasetError(
                f"config 'dataset.tasks.{task}' is kind '{spec.get('kind')}', paradigm "
                f"'{paradigm}'; format pereira expects kind 'concepts' and a paradigm (the "
                f"task name or 'bids_task') in {', '.join(PARADIGMS)}. Edit {self.source}."
            )
        return paradigm

    def _stimulus_concepts(self, path: str) -> list[str]:
        from .. import io

        if not Path(path).is_file():
            raise DatasetError(
                f"stimuli file '{path}' does not exist; format pereira checks and orders the "
                f"concepts by its 'concept' column. Fix 'stimuli.root' in {self.source}."
            )
        table = io.read_table(path)
        if "concept" not in table.columns:
            raise DatasetError(
                f"stimuli file '{path}' has columns {list(table.columns)}; expected a "
                "'concept' column. Fix the stimuli folder."
            )
        return [str(c) for c in table["concept"]]

    def check(self) -> None:
        """Check every subject x task file (names and concepts; no betas are read).

        The ROI names are resolved on the first file's ``meta`` (the release's atlases are
        the same in every file); empty ROIs are found when a file is read.
        """
        paradigms = [self.paradigm(task) for task in self.tasks]
        concepts = self._stimulus_concepts(str(Path(self.stimuli_root) / "concepts.tsv"))
        for subject in self.dataset["subjects"]:
            for paradigm in paradigms:
                check_pereira_file(pereira_path(self.dataset["root"], subject, paradigm), concepts)
        first = Path(pereira_path(self.dataset["root"], self.dataset["subjects"][0], paradigms[0]))
        atlases, regions = _atlas_names(np.asarray(_load(first, ["meta"])["meta"]).ravel()[0], first)
        for name in self.dataset["rois"]:
            _resolve(name, atlases, regions, first)

    def inputs(self, subject: str, task: str) -> dict[str, str | list[str]]:
        """``{"mat": <the subject's file of the task's paradigm>, "concepts": concepts.tsv}``."""
        mat = pereira_path(self.dataset["root"], subject, self.paradigm(task))
        return {"mat": mat, "concepts": str(Path(self.stimuli_root) / "concepts.tsv")}

    def preprocess(
        self,
        inputs: Mapping[str, Any],
        subject: str,
        task: str,
        params: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read one subject x task with :func:`read_pereira`; ``zscore`` None means False."""
        concepts = self._stimulus_concepts(str(inputs["concepts"]))
        zscore = bool(params.get("zscore") or False)  # null: the betas as released
        arrays, meta = read_pereira(
            inputs["mat"], rois=list(self.dataset["rois"]), concepts=concepts, zscore=zscore,
            subject=subject, task=task,
        )
        meta["paradigm"] = self.paradigm(task)
        return arrays, meta
