"""The anatomy of a BIDS / fMRIPrep dataset: each subject's brain mask and atlas.

Found among the files :mod:`brainalign.datasets.bids` walked: the brain mask (a shared
``dataset.mask``, else the subject's anat mask, else the first run's mask with a warning) and
the atlas ``dataset.atlas`` (volumes: the subject's or the root's ``dseg.nii.gz`` with its
labels ``.tsv``; surfaces: ``hemi-{L,R}`` label GIfTI files or ``{lh,rh}.<atlas>.annot``).
"""

from __future__ import annotations

import logging
import os
import re

from .bids_files import _VOLUME, _describe, _File, _pick, parse_entities
from .registry import DatasetError

logger = logging.getLogger(__name__)


def _subject_mask(subject: str, files: list[_File], space: str | None, like, source) -> str:
    masks = [f for f in files if f.get("suffix") == "mask" and f.get("desc") == "brain"
             and f.get("extension") in _VOLUME]
    in_space = [f for f in masks if f.get("space") == space]
    anat = [f for f in in_space if f.get("task") is None]
    if anat:
        anat.sort(key=lambda f: f.get("session") is not None)  # subject-level masks first
        sessionless = [f for f in anat if f.get("session") == anat[0].get("session")]
        return _pick(sessionless, like, f"brain mask of sub-{subject}").path
    if in_space:
        chosen = sorted(in_space, key=lambda f: f.path)[0]
        logger.warning("sub-%s has no anatomical brain mask in space %s; using the run mask %s "
                       "for every run", subject, space, chosen.path)
        return chosen.path
    raise DatasetError(
        f"sub-{subject} has no brain mask: expected sub-{subject}[_ses-*]_space-{space}_desc-"
        f"brain_mask.nii.gz (fMRIPrep's anat mask, or run masks) under its folder; found "
        f"masks: {_describe(masks, ('space',))}. Set 'dataset.mask' to a mask shared by every "
        f"subject (a file under the root) or 'dataset.space' in {source}."
    )


def _shared_file(root: str, name: str, source: str) -> str:
    path = name if os.path.isabs(name) else os.path.join(root, name)
    if not os.path.isfile(path):
        raise DatasetError(
            f"config 'dataset.mask' is '{name}', but {path} does not exist; expected a brain "
            f"mask shared by every subject (a path under {root}). Fix it in {source}, or set "
            "it to null for each subject's own mask."
        )
    return path


def _atlas_matches(f: _File, atlas: str, space: str | None) -> bool:
    return (f.get("atlas") == atlas and f.get("suffix") == "dseg"
            and f.get("extension") in _VOLUME
            and (f.get("space") == space or (f.get("space") is None and f.get("tpl") == space)))


def _labels(atlas_file: str, root_files: list[_File], atlas: str, space, where: str, source) -> str:
    own = re.sub(r"\.nii(\.gz)?$", ".tsv", atlas_file)
    if os.path.isfile(own):
        return own
    shared = [f for f in root_files if f.get("atlas") == atlas and f.get("suffix") == "dseg"
              and f.get("extension") == ".tsv" and f.get("space") in (None, space)
              and f.get("subject") is None]
    desc = parse_entities(os.path.basename(atlas_file)).get("desc")
    shared = [f for f in shared if f.get("desc") == desc] or shared
    if not shared:
        raise DatasetError(
            f"atlas labels missing for {where}: expected {os.path.basename(own)} next to "
            f"'{atlas_file}' or [space-{space}_]atlas-{atlas}_dseg.tsv (columns index, name) at "
            f"the root. Write the labels table (or fix 'dataset.atlas' in {source})."
        )
    return sorted(shared, key=lambda f: -len(f.ents))[0].path


def _volume_atlas(subject, files, root_files, atlas, space, like, source) -> dict[str, str]:
    own = [f for f in files if _atlas_matches(f, atlas, space)]
    shared = [f for f in root_files if _atlas_matches(f, atlas, space) and f.get("subject") is None]
    chosen = own or shared
    if not chosen:
        found = {f"{f.get('atlas')} (space {f.get('space') or f.get('tpl')})"
                 for f in [*files, *root_files] if f.get("atlas") and f.get("suffix") == "dseg"}
        raise DatasetError(
            f"no atlas '{atlas}' in space {space} for sub-{subject}: expected "
            f"sub-{subject}_space-{space}_atlas-{atlas}_dseg.nii.gz in its anat folder or a shared "
            f"[tpl-{space}_]space-{space}_atlas-{atlas}_dseg.nii.gz at the root; found atlases "
            f"{sorted(found) or 'none'}. Fix 'dataset.atlas' in {source} or add the atlas."
        )
    picked = _pick(chosen, like, f"atlas '{atlas}' of sub-{subject}").path
    labels = _labels(picked, root_files, atlas, space, f"sub-{subject}", source)
    return {"atlas": picked, "labels": labels}


def _surface_atlas(subject, files, root_files, root, atlas, space, source) -> dict[str, str]:
    out = {}
    for hemi, fs in (("L", "lh"), ("R", "rh")):
        label = [f for f in [*files, *root_files]
                 if f.get("atlas") == atlas and f.get("hemi") == hemi
                 and f.get("space") == space and f.path.endswith("_dseg.label.gii")]
        annot = os.path.join(root, f"{fs}.{atlas}.annot")
        if label:
            out[hemi] = sorted(label, key=lambda f: f.get("subject") is None)[0].path
        elif os.path.isfile(annot):
            out[hemi] = annot
        else:
            raise DatasetError(
                f"no surface atlas '{atlas}' for hemisphere {hemi} of sub-{subject}: expected "
                f"[sub-{subject}_]hemi-{hemi}_space-{space}_atlas-{atlas}_dseg.label.gii or "
                f"{fs}.{atlas}.annot under {root}. Fix 'dataset.atlas' in {source} or add the "
                "atlas."
            )
    return out
