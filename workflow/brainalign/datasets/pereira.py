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
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .registry import DatasetError, register_reader
from .units import roi_masks_from_sets

__all__ = ["PARADIGMS", "pereira_path", "check_pereira_file", "read_pereira", "PereiraReader"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

PARADIGMS = ("sentences", "pictures", "wordclouds")
_REQUIRED = ("examples", "meta", "keyConcept")


def pereira_path(root: PathLike, subject: str, paradigm: str) -> str:
    """``<root>/<subject>/data_180concepts_<paradigm>.mat``, as the release names it."""
    return str(Path(root) / subject / f"data_180concepts_{paradigm}.mat")


def _malformed(path: Path, problem: str) -> DatasetError:
    return DatasetError(
        f"Pereira file '{path}': {problem}. Use the released data_180concepts_*.mat, unmodified."
    )


def _whosmat(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Variables of a ``.mat`` file, {name: (shape, class)}, without reading their data."""
    import scipy.io

    if not path.is_file():
        raise DatasetError(
            f"Pereira file '{path}' does not exist; expected <dataset.root>/<subject>/"
            f"data_180concepts_<paradigm>.mat ({', '.join(PARADIGMS)}). Fix 'dataset.root', "
            "'dataset.subjects' or the task's 'bids_task', or add the file."
        )
    try:
        return {name: (tuple(shape), cls) for name, shape, cls in scipy.io.whosmat(str(path))}
    except (NotImplementedError, ValueError, TypeError, OSError) as err:
        raise DatasetError(
            f"Pereira file '{path}' is not a MATLAB v5/v7 .mat file scipy can read ({err}); "
            "expected the released data_180concepts_*.mat. Re-download it, or re-save a v7.3 "
            "file with save(..., '-v7')."
        ) from None


def _check_variables(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The file's variables, once ``examples``, ``keyConcept`` and ``meta`` are known present."""
    variables = _whosmat(path)
    missing = [name for name in _REQUIRED if name not in variables]
    if missing:
        raise _malformed(path, (
            f"lacks {', '.join(repr(m) for m in missing)}; expected 'examples' (concepts x "
            "voxels betas), 'keyConcept' and the 'meta' struct (voxel coordinates and "
            f"atlases); found {sorted(variables)}"
        ))
    (shape, cls), meta_class = variables["examples"], variables["meta"][1]
    if len(shape) != 2 or cls not in ("double", "single") or meta_class != "struct":
        raise _malformed(path, (
            f"'examples' is {cls} of shape {shape} and 'meta' a {meta_class}; expected a 2-D "
            "numeric (concepts x voxels) array and a struct"
        ))
    return variables


def _load(path: Path, names: Sequence[str]) -> dict[str, Any]:
    import scipy.io

    return scipy.io.loadmat(
        str(path), variable_names=list(names), squeeze_me=False, struct_as_record=False
    )


def _text(value: Any) -> str:
    """A MATLAB char array (or a 1-element cell holding one) as a str."""
    arr = np.asarray(value)
    if arr.dtype == object and arr.size == 1:
        return _text(arr.ravel()[0])
    if arr.dtype.kind == "U":
        return "".join(arr.ravel().tolist())
    raise TypeError(f"expected MATLAB text, got {arr.dtype} of shape {arr.shape}")


def _cells(value: Any) -> list[Any]:
    """Elements of a MATLAB cell array (any orientation), or [value] when it is not a cell."""
    arr = np.asarray(value)
    return list(arr.ravel(order="F")) if arr.dtype == object else [value]


def _row_concepts(data: Mapping[str, Any], n_rows: int, path: Path) -> list[str]:
    """Concept of each row of ``examples``: ``keyConcept``, through ``labelsConcept`` if present."""
    keys = [_text(c).strip() for c in _cells(data["keyConcept"])]
    labels = data.get("labelsConcept")
    if labels is not None and np.asarray(labels).size == n_rows:
        index = np.asarray(labels, dtype=float).ravel(order="F")
        if not np.all((index >= 1) & (index <= len(keys)) & (index == np.round(index))):
            raise _malformed(path, (
                f"'labelsConcept' holds {index.min():g}..{index.max():g}; expected 1-based "
                f"indices into 'keyConcept' (1..{len(keys)})"
            ))
        rows = [keys[int(i) - 1] for i in index]
    elif len(keys) == n_rows:
        rows = keys
    else:
        raise _malformed(path, (
            f"'keyConcept' has {len(keys)} concepts for {n_rows} rows of 'examples'; expected "
            "one concept per row"
        ))
    repeated = sorted({c for c in rows if rows.count(c) > 1})
    if repeated:
        raise _malformed(path, (
            f"concepts {repeated[:5]} have several rows; expected one pattern per concept"
        ))
    return rows


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


def _field(meta: Any, name: str, path: Path) -> Any:
    value = getattr(meta, name, None)
    if value is None:
        raise _malformed(path, (
            f"'meta' lacks field '{name}'; expected the release's meta struct (colToCoord, "
            "dimx/dimy/dimz or coordToCol, atlases, rois, roiColumns or roiMultimask)"
        ))
    return value


def _grid(meta: Any, n_voxels: int, path: Path) -> tuple[np.ndarray, list[int]]:
    """0-based voxel indices (n_voxels, 3) and the grid shape, checked against coordToCol."""
    coords = np.asarray(_field(meta, "colToCoord", path), dtype=float)
    to_col = getattr(meta, "coordToCol", None)
    dims = [getattr(meta, key, None) for key in ("dimx", "dimy", "dimz")]
    if any(d is None for d in dims):
        dims = np.shape(_field(meta, "coordToCol", path))
    shape = [int(np.asarray(d).ravel()[0]) for d in dims]
    ijk = np.round(coords).astype(np.int64) - 1  # MATLAB 1-based -> 0-based
    if coords.shape != (n_voxels, 3) or (ijk < 0).any() or (ijk >= shape).any():
        raise _malformed(path, (
            f"'meta.colToCoord' has shape {coords.shape}, values {coords.min(initial=0):g}.."
            f"{coords.max(initial=0):g}; expected ({n_voxels}, 3) 1-based coordinates in {shape}"
        ))
    if to_col is not None:
        to_col = np.asarray(to_col)
        found = to_col[tuple(ijk.T)] if to_col.shape == tuple(shape) else None
        if found is None or not np.array_equal(found, np.arange(1, n_voxels + 1)):
            raise _malformed(path, (
                f"'meta.coordToCol' (shape {to_col.shape}) does not map 'meta.colToCoord' "
                f"back to columns 1..{n_voxels}; expected inverse tables on the grid {shape}"
            ))
    return ijk.astype(np.int32), shape


def _affine(meta: Any) -> list[list[float]]:
    size = getattr(meta, "voxelSize", getattr(meta, "voxelsize", None))
    diag = np.ones(3)
    if size is not None and np.asarray(size).size == 3:
        diag = np.asarray(size, dtype=float).ravel()
    logger.info("affine: diagonal %s (the release has no affine)", diag.tolist())
    return np.diag([*diag, 1.0]).tolist()


def _alnum(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name)


def _atlas_names(meta: Any, path: Path) -> tuple[list[str], list[list[str]]]:
    """Atlas names and, per atlas, its region names."""
    atlases = [_text(a) for a in _cells(_field(meta, "atlases", path))]
    regions = [[_text(r) for r in _cells(cell)] for cell in _cells(_field(meta, "rois", path))]
    if len(regions) != len(atlases):
        raise _malformed(path, (
            f"'meta.rois' has {len(regions)} entries for {len(atlases)} 'meta.atlases'; "
            "expected one cell of region names per atlas"
        ))
    return atlases, regions


def _label(atlases: list[str], regions: list[list[str]], a: int, r: int | None) -> str:
    return atlases[a] if r is None else f"{atlases[a]}/{regions[a][r]}"


def _catalogue(atlases: list[str], regions: list[list[str]]) -> dict[str, list[tuple]]:
    """ROI name -> the (atlas, region or None) it may mean; several = ambiguous."""
    names: dict[str, list[tuple]] = {}
    for a, atlas in enumerate(atlases):
        for key in (atlas, _alnum(atlas)):
            if (a, None) not in names.setdefault(key, []):
                names[key].append((a, None))
    for a, atlas in enumerate(atlases):
        for r, region in enumerate(regions[a]):
            for key in (region, _alnum(region), _alnum(atlas) + _alnum(region)):
                targets = names.setdefault(key, [])
                if targets and all(t[1] is None for t in targets):
                    continue  # an atlas name wins over a region of the same name
                if (a, r) not in targets:
                    targets.append((a, r))
    return names


def _resolve(
    name: str, atlases: list[str], regions: list[list[str]], path: Path
) -> tuple[int, int | None]:
    catalogue = _catalogue(atlases, regions)
    targets = catalogue.get(name, [])
    if len(targets) == 1:
        return targets[0]
    if not targets:
        close = difflib.get_close_matches(name, list(catalogue), n=4, cutoff=0.6)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise DatasetError(
            f"ROI '{name}' in config 'dataset.rois' is not a network or region of Pereira "
            f"file '{path}'; expected an atlas ({', '.join(map(_alnum, atlases))}) or a "
            f"region name without non-alphanumerics (e.g. 'FrontalInfOperL' for "
            f"Frontal_Inf_Oper_L){hint}. Fix 'dataset.rois'."
        )
    found = ", ".join(_label(atlases, regions, a, r) for a, r in targets)
    raise DatasetError(
        f"ROI '{name}' in config 'dataset.rois' names regions of several atlases of Pereira "
        f"file '{path}' ({found}); expected one. Prefix the atlas, e.g. "
        f"'{_alnum(atlases[targets[0][0]]) + _alnum(name)}', in 'dataset.rois'."
    )


def _region_columns(meta: Any, atlas: str, a: int, n_regions: int, n_voxels: int, path: Path):
    """0-based columns of each region of atlas ``a``, from roiColumns, else roiMultimask."""
    if getattr(meta, "roiColumns", None) is not None:
        cells = _cells(_cells(meta.roiColumns)[a])
        out = [np.asarray(c, dtype=float).ravel().astype(np.int64) - 1 for c in cells]
    else:
        labels = np.asarray(_cells(_field(meta, "roiMultimask", path))[a], dtype=float).ravel()
        labels = np.nan_to_num(labels, nan=0.0).astype(np.int64)
        out = [np.flatnonzero(labels == r + 1) for r in range(n_regions)]
    if len(out) != n_regions or any(((c < 0) | (c >= n_voxels)).any() for c in out):
        raise _malformed(path, (
            f"the ROI columns of atlas '{atlas}' are {len(out)} lists; expected {n_regions} "
            f"lists of 1-based columns 1..{n_voxels} (meta.roiColumns / meta.roiMultimask)"
        ))
    return out


def _roi_sets(
    meta: Any, rois: Sequence[str], n_voxels: int, path: Path
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Membership (n_voxels,) of each requested ROI, and what each name resolved to."""
    atlases, regions = _atlas_names(meta, path)
    sets, definitions = {}, {}
    for name in rois:
        a, r = _resolve(name, atlases, regions, path)
        columns = _region_columns(meta, atlases[a], a, len(regions[a]), n_voxels, path)
        sets[name] = np.zeros(n_voxels, dtype=bool)
        sets[name][np.concatenate(columns) if r is None else columns[r]] = True
        definitions[name] = _label(atlases, regions, a, r)
    return sets, definitions


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
