"""Find the atlas of a run on fsaverage, before any work, without network access.

``--atlas`` names an atlas: ``destrieux`` (FreeSurfer ``aparc.a2009s``, as in the paper),
``desikan`` (``aparc``), ``fallback`` (the data-driven parcels of
:mod:`bids_app.parcels.fallback`, always available) or any annotation name. Unless the user
gives one (``auto``, the default), the app looks for Destrieux and falls back, announced in the
log, the reports and the output names (``atlas-fallback``), to the data-driven parcels.

Search order for a named atlas:

1. ``<dir>/fsaverage/label/{lh,rh}.<annot>.annot`` in every FreeSurfer subjects folder the app
   uses: ``--fs-subjects-dir``, else ``<bids_dir>/derivatives/freesurfer`` and
   ``<fmriprep_dir>/sourcedata/freesurfer``;
2. ``$FREESURFER_HOME/subjects/fsaverage/label/{lh,rh}.<annot>.annot``;
3. the TemplateFlow cache (``$TEMPLATEFLOW_HOME``, default ``~/.cache/templateflow``):
   ``tpl-fsaverage/tpl-fsaverage_hemi-{L,R}_den-*_atlas-<Name>*_dseg.label.gii``;
4. nilearn's data cache (``$NILEARN_DATA``, default ``~/nilearn_data``):
   ``destrieux_surface/{lh,rh}.aparc.a2009s.annot`` (fsaverage5, from
   ``nilearn.datasets.fetch_atlas_surf_destrieux``).

An atlas the user names and that is found nowhere stops the run before any work (exit code 66)
with every path searched and how to provide it. ``--atlas-file`` gives the left-hemisphere file
(the right one is found by name); the outputs are then named after the atlas the file holds
(``lh.aparc.annot``: ``atlas-desikan``), and an ``--atlas`` naming another atlas is refused.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bids_app.errors import BadDataError, MissingInputError, UsageError

LOGGER = logging.getLogger(__name__)

#: FreeSurfer annotation of each atlas known by name.
ANNOTATION_NAMES = {"destrieux": "aparc.a2009s", "desikan": "aparc"}
#: Atlas names in TemplateFlow's fsaverage files.
TEMPLATEFLOW_NAMES = {"destrieux": "Destrieux", "desikan": "Desikan"}
#: The atlas of the paper, looked for when the user names none (``--atlas auto``).
DEFAULT_ATLAS = "destrieux"


@dataclass(frozen=True)
class AtlasChoice:
    """The parcellation of a run, resolved before any work.

    Attributes
    ----------
    name : str
        The atlas (``destrieux``, ``desikan``, an annotation name, or ``fallback``).
    files : (Path, Path) or None
        Left and right hemisphere files; None for the data-driven fallback.
    note : str or None
        Why the fallback is used (the default atlas was not found), for the log and reports.
    """

    name: str
    files: tuple[Path, Path] | None
    note: str | None = None

    @property
    def label(self) -> str:
        """The ``atlas`` entity of the output names."""
        return atlas_label(self.name)


def atlas_label(atlas: str) -> str:
    """The ``atlas`` entity of file names: letters and digits only (``aparc.a2009s`` ->
    ``aparca2009s``)."""
    label = re.sub(r"[^A-Za-z0-9]", "", atlas)
    if not label:
        raise UsageError(f"Invalid atlas name '{atlas}': it needs letters or digits.")
    return label


def atlas_name_from_file(path: Path) -> str:
    """The atlas a file holds, from its name.

    ``lh.aparc.a2009s.annot`` -> ``destrieux``, ``lh.aparc.annot`` -> ``desikan``,
    ``lh.<annot>.annot`` -> ``<annot>``; a BIDS/TemplateFlow name with ``atlas-<Name>`` ->
    ``<name>`` (known names in lower case).
    """
    name = Path(path).name
    entity = re.search(r"_atlas-([A-Za-z0-9]+)", name)
    if entity:
        found = entity.group(1)
    else:
        found = re.sub(r"^(lh|rh|left|right)[._]", "", name)
        found = re.sub(r"\.(annot|label\.gii|gii)(\.gz)?$", "", found)
    for known, annot in ANNOTATION_NAMES.items():
        if found.lower() in (known, annot, TEMPLATEFLOW_NAMES[known].lower()):
            return known
    return found


def _same_atlas(a: str, b: str) -> bool:
    return ANNOTATION_NAMES.get(a.lower(), a.lower()) == ANNOTATION_NAMES.get(b.lower(), b.lower())


def _sibling(path: Path) -> Path | None:
    name = path.name
    for left, right in (("lh.", "rh."), ("hemi-L", "hemi-R"), ("_L_", "_R_"), ("left", "right")):
        if left in name:
            return path.with_name(name.replace(left, right, 1))
    return None


def candidate_paths(atlas: str, freesurfer_dirs: Sequence[Path] = ()
                    ) -> list[tuple[Path, Path | None]]:
    """(lh, rh) candidates for a named atlas, in search order (rh None: a pattern searched)."""
    annot = ANNOTATION_NAMES.get(atlas, atlas)
    roots = [Path(d) / "fsaverage" / "label" for d in dict.fromkeys(freesurfer_dirs)]
    if os.environ.get("FREESURFER_HOME"):
        roots.append(Path(os.environ["FREESURFER_HOME"]) / "subjects" / "fsaverage" / "label")
    out: list[tuple[Path, Path | None]] = [
        (r / f"lh.{annot}.annot", r / f"rh.{annot}.annot") for r in roots
    ]
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


def find_atlas(atlas: str, freesurfer_dirs: Sequence[Path] = ()) -> tuple[Path, Path]:
    """The left and right files of a named atlas (:func:`candidate_paths` order).

    Raises
    ------
    MissingInputError
        Nothing found; the message lists every path searched and how to provide the atlas.
    """
    searched = []
    for left, right in candidate_paths(atlas, freesurfer_dirs):
        searched.append(str(left))
        if left.is_file() and right is not None and Path(right).is_file():
            return left, Path(right)
    raise MissingInputError(
        f"No '{atlas}' atlas on fsaverage was found; searched:\n  " + "\n  ".join(searched)
        + "\nProvide it with --atlas-file (a FreeSurfer lh.*.annot or GIFTI label on fsaverage; "
        "the right-hemisphere file beside it), put fsaverage/label/{lh,rh}."
        f"{ANNOTATION_NAMES.get(atlas, atlas)}.annot into the FreeSurfer folder "
        "(--fs-subjects-dir), run in the container image, which holds the atlases, or choose "
        "--atlas fallback (data-driven parcels)."
    )


def atlas_file_pair(atlas_file: Path) -> tuple[Path, Path]:
    """``--atlas-file`` and its right-hemisphere sibling (found by name).

    Raises
    ------
    MissingInputError
        One of the two files does not exist.
    """
    left = Path(atlas_file)
    right = _sibling(left)
    if not left.is_file() or right is None or not right.is_file():
        raise MissingInputError(
            f"--atlas-file {left}: the left file and its right-hemisphere sibling "
            f"({right or 'name must contain lh./hemi-L'}) must both exist."
        )
    return left, right


def resolve_atlas(atlas: str, *, atlas_file: Path | None = None,
                  freesurfer_dirs: Sequence[Path] = ()) -> AtlasChoice:
    """The atlas of a run, from ``--atlas`` and ``--atlas-file`` (module docstring).

    Both hemisphere files are read, so an unreadable atlas stops the run before any work.

    Parameters
    ----------
    atlas : str
        ``auto`` (Destrieux when found, else the fallback, announced), ``fallback``, or the
        name of an atlas, which must be found.
    atlas_file : Path or None
        Left-hemisphere file of the atlas; names the atlas.
    freesurfer_dirs : sequence of Path
        FreeSurfer subjects folders the run uses (searched first).

    Raises
    ------
    UsageError
        ``--atlas`` names another atlas than the one ``--atlas-file`` holds.
    MissingInputError
        A named atlas was found nowhere, or an ``--atlas-file`` lacks its sibling.
    BadDataError
        An atlas file cannot be read or is not on fsaverage.
    """
    if atlas_file is not None:
        files = atlas_file_pair(atlas_file)
        name = atlas_name_from_file(files[0])
        if atlas != "auto" and not _same_atlas(atlas, name):
            raise UsageError(
                f"--atlas {atlas} contradicts --atlas-file {files[0].name}, which holds the "
                f"'{name}' atlas (outputs would be named atlas-{atlas_label(name)}). Give "
                "--atlas-file alone, or rename the file after the atlas it holds."
            )
        choice = AtlasChoice(name, files)
    elif atlas == "fallback":
        choice = AtlasChoice("fallback", None)
    elif atlas == "auto":
        try:
            choice = AtlasChoice(DEFAULT_ATLAS, find_atlas(DEFAULT_ATLAS, freesurfer_dirs))
        except MissingInputError as err:
            note = (f"{err.message}\nThe data-driven fallback parcellation is used instead: "
                    "the outputs are named atlas-fallback (docs/anatomy.md).")
            choice = AtlasChoice("fallback", None, note=note)
    else:
        choice = AtlasChoice(atlas, find_atlas(atlas, freesurfer_dirs))
    if choice.files is not None:
        _check_readable(choice.files)
    return choice


def _check_readable(files: tuple[Path, Path]) -> None:
    from bids_app.parcels.parcellation import ParcellationError, read_annotation

    for path, hemi in zip(files, ("lh", "rh")):
        try:
            read_annotation(path, hemi)
        except ParcellationError as err:
            raise BadDataError(str(err)) from None
