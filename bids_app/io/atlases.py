"""Find atlas files on fsaverage without network access, and build the parcellation.

Search order for a named atlas (``destrieux`` = FreeSurfer ``aparc.a2009s``, ``desikan`` =
``aparc``, or any annotation name):

1. ``--atlas-file`` (and its right-hemisphere sibling, found by replacing ``lh``/``L`` by
   ``rh``/``R`` in the name);
2. ``<fs_subjects_dir>/fsaverage/label/{lh,rh}.<annot>.annot``;
3. ``$FREESURFER_HOME/subjects/fsaverage/label/{lh,rh}.<annot>.annot``;
4. the TemplateFlow cache (``$TEMPLATEFLOW_HOME``, default ``~/.cache/templateflow``):
   ``tpl-fsaverage/tpl-fsaverage_hemi-{L,R}_den-*_atlas-<Name>*_dseg.label.gii``;
5. nilearn's data cache (``$NILEARN_DATA``, default ``~/nilearn_data``):
   ``destrieux_surface/{lh,rh}.aparc.a2009s.annot`` (fsaverage5, from
   ``nilearn.datasets.fetch_atlas_surf_destrieux``).

The Docker image holds FreeSurfer's fsaverage and the caches. When nothing is found, the
data-driven fallback parcellation (:mod:`bids_app.parcels.fallback`) is used with a warning that
lists the searched paths and how to provide an atlas — or, when the atlas was given explicitly as
a file, it is an error.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from bids_app.errors import MissingInputError

LOGGER = logging.getLogger(__name__)

ANNOTATION_NAMES = {"destrieux": "aparc.a2009s", "desikan": "aparc"}
TEMPLATEFLOW_NAMES = {"destrieux": "Destrieux", "desikan": "Desikan"}


def atlas_label(atlas: str) -> str:
    """The ``atlas`` entity of file names: letters and digits only (``aparc.a2009s`` ->
    ``aparca2009s``)."""
    label = re.sub(r"[^A-Za-z0-9]", "", atlas)
    if not label:
        raise MissingInputError(f"Invalid atlas name '{atlas}'.")
    return label


def _sibling(path: Path) -> Path | None:
    name = path.name
    for left, right in (("lh.", "rh."), ("hemi-L", "hemi-R"), ("_L_", "_R_"), ("left", "right")):
        if left in name:
            return path.with_name(name.replace(left, right, 1))
    return None


def candidate_paths(atlas: str, fs_subjects_dir: Path | None = None
                    ) -> list[tuple[Path, Path | None]]:
    """(lh, rh) candidates for a named atlas, in search order (rh None: a pattern searched)."""
    annot = ANNOTATION_NAMES.get(atlas, atlas)
    roots = []
    if fs_subjects_dir is not None:
        roots.append(Path(fs_subjects_dir) / "fsaverage" / "label")
    if os.environ.get("FREESURFER_HOME"):
        roots.append(Path(os.environ["FREESURFER_HOME"]) / "subjects" / "fsaverage" / "label")
    out = [(r / f"lh.{annot}.annot", r / f"rh.{annot}.annot") for r in roots]
    tf_home = Path(os.environ.get("TEMPLATEFLOW_HOME", Path.home() / ".cache" / "templateflow"))
    tf_name = TEMPLATEFLOW_NAMES.get(atlas, atlas)
    for left in sorted((tf_home / "tpl-fsaverage").glob(
            f"tpl-fsaverage_hemi-L_den-*_atlas-{tf_name}*_dseg.label.gii")):
        out.append((left, _sibling(left)))
    if len(out) == len(roots):  # nothing in TemplateFlow: still say where we looked
        out.append((tf_home / "tpl-fsaverage" / f"tpl-fsaverage_hemi-L_den-*_atlas-{tf_name}"
                    "_dseg.label.gii", None))
    if annot == "aparc.a2009s":
        nl_home = Path(os.environ.get("NILEARN_DATA", Path.home() / "nilearn_data"))
        out.append((nl_home / "destrieux_surface" / "lh.aparc.a2009s.annot",
                    nl_home / "destrieux_surface" / "rh.aparc.a2009s.annot"))
    return out


def find_atlas(atlas: str, *, atlas_file: Path | None = None,
               fs_subjects_dir: Path | None = None) -> tuple[Path, Path]:
    """The left and right files of the atlas.

    Raises
    ------
    MissingInputError
        Nothing found; the message lists every path searched and how to provide the atlas.
    """
    if atlas_file is not None:
        left = Path(atlas_file)
        right = _sibling(left)
        if not left.is_file() or right is None or not right.is_file():
            raise MissingInputError(
                f"--atlas-file {left}: the left file and its right-hemisphere sibling "
                f"({right or 'name must contain lh./hemi-L'}) must both exist."
            )
        return left, right
    searched = []
    for left, right in candidate_paths(atlas, fs_subjects_dir):
        searched.append(str(left))
        if left.is_file() and right is not None and Path(right).is_file():
            return left, Path(right)
    raise MissingInputError(
        f"No '{atlas}' atlas on fsaverage was found; searched:\n  " + "\n  ".join(searched)
        + "\nProvide one with --atlas-file (a FreeSurfer lh.*.annot or GIFTI label on fsaverage),"
        " --fs-subjects-dir with an fsaverage subject, or run in the container image, which "
        "holds the atlases."
    )
