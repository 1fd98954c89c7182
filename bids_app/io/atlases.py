"""Find the atlas of a run on fsaverage, before any work, without network access.

``--atlas`` names an atlas: ``destrieux`` (FreeSurfer ``aparc.a2009s``, as in the paper),
``desikan`` (``aparc``), ``fallback`` (the data-driven parcels of
:mod:`bids_app.parcels.fallback`, always available) or any annotation name. Unless the user
gives one (``auto``, the default), the app looks for Destrieux and falls back, announced in the
log, the reports and the output names (``atlas-fallback``), to the data-driven parcels.

Search order for a named atlas:

1. ``<dir>/fsaverage/label/{lh,rh}.<annot>.annot`` in every FreeSurfer subjects folder the app
   uses: ``--fs-subjects-dir``, else ``<bids_dir>/derivatives/freesurfer`` and
   ``<fmriprep_dir>/sourcedata/freesurfer``, then the app's own
   ``<output_dir>/sourcedata/freesurfer``;
2. ``$FREESURFER_HOME/subjects/fsaverage/label/{lh,rh}.<annot>.annot``;
3. TemplateFlow's ``tpl-fsaverage`` (``$TEMPLATEFLOW_HOME``, default ``~/.cache/templateflow``),
   asked through its client (``templateflow.api``'s :class:`~templateflow.TemplateFlowClient`)
   for ``atlas-Destrieux2009`` (``aparc.a2009s``) or ``atlas-Desikan2006`` (``seg-aparc``) label
   GIFTIs, densest first (164k, 41k, 10k). The client only lists files here: nothing is
   downloaded, and a TemplateFlow home that does not exist (or is empty) is not created;
4. nilearn's data folders (``$NILEARN_SHARED_DATA``, ``$NILEARN_DATA``, ``~/nilearn_data``):
   ``destrieux_surface/{left,right}.aparc.a2009s.annot`` (fsaverage5, the names
   ``nilearn.datasets.fetch_atlas_surf_destrieux`` gives them).

A file counts only when it holds data: TemplateFlow's 0-byte placeholders, a git-annex/DataLad
file whose content was not fetched (a dangling link, or a pointer file) and empty files are
skipped, with the reason, so that an image or dataset that lacks the content falls back instead
of stopping with "Empty file".

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
#: TemplateFlow's name and entities of each atlas known by name (``tpl-fsaverage``).
TEMPLATEFLOW_ATLASES = {
    "destrieux": {"atlas": "Destrieux2009"},
    "desikan": {"atlas": "Desikan2006", "seg": "aparc"},
}
#: TemplateFlow densities whose vertices start with fsaverage5's (densest first); ``3k`` is ico-4.
TEMPLATEFLOW_DENSITIES = ("164k", "41k", "10k")
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
        if found.lower() in (known, annot, TEMPLATEFLOW_ATLASES[known]["atlas"].lower()):
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


def unusable_reason(path: Path) -> str | None:
    """Why a file cannot be an atlas file, or None when it holds data.

    Absent, a dangling link (git-annex/DataLad content not fetched), empty (TemplateFlow's
    placeholders are 0-byte files), or a git-annex pointer file (an unlocked annexed file whose
    content is not here).
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return "a link to content that is not here (git-annex/DataLad: not fetched)"
    if not path.is_file():
        return "absent"
    size = path.stat().st_size
    if size == 0:
        return "an empty placeholder (0 bytes)"
    if size < 1024:
        with open(path, "rb") as handle:
            head = handle.read(256)
        if b"/annex/objects/" in head:
            return "a git-annex pointer (content not fetched)"
    return None


def templateflow_home() -> Path:
    """TemplateFlow's home as its client resolves it (``$TEMPLATEFLOW_HOME``, else the user
    cache folder), without importing TemplateFlow."""
    env = os.environ.get("TEMPLATEFLOW_HOME")
    if env:
        return Path(env).expanduser().absolute()
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # pragma: no cover - platformdirs comes with templateflow
        return Path.home() / ".cache" / "templateflow"
    return Path(user_cache_dir("templateflow")).absolute()


def templateflow_candidates(atlas: str) -> tuple[list[tuple[Path, Path]], str]:
    """(lh, rh) label GIFTIs of an atlas in TemplateFlow's ``tpl-fsaverage``, densest first,
    and a line saying what was searched.

    The files are listed with TemplateFlow's client (``TemplateFlowClient.ls``, what
    ``templateflow.api.ls`` calls), which reads the local index only; ``get`` is never called,
    since it downloads files that are placeholders. TemplateFlow is imported only when its home
    exists and holds files: importing it otherwise writes a skeleton of placeholder files there
    (and fails on a read-only file system).
    """
    entities = TEMPLATEFLOW_ATLASES.get(atlas, {"atlas": atlas})
    home = templateflow_home()
    what = (f"TemplateFlow {home}/tpl-fsaverage: atlas-{entities['atlas']} label GIFTIs "
            f"(den-{'/'.join(TEMPLATEFLOW_DENSITIES)})")
    try:
        populated = home.is_dir() and any(home.iterdir())
    except OSError:
        populated = False
    if not populated:
        return [], what + " - no TemplateFlow home there"
    try:
        from templateflow import TemplateFlowClient

        client = TemplateFlowClient(root=home)
        pairs = []
        for density in TEMPLATEFLOW_DENSITIES:
            query = dict(entities, density=density, suffix="dseg", extension=".label.gii",
                         desc=None)
            lefts = client.ls("fsaverage", hemi="L", **query)
            rights = client.ls("fsaverage", hemi="R", **query)
            if lefts and rights:
                pairs.append((Path(lefts[0]), Path(rights[0])))
    except Exception as err:  # an old or broken TemplateFlow install must not stop a run
        LOGGER.debug("TemplateFlow could not be queried: %s", err)
        return [], what + f" - TemplateFlow could not be queried ({err})"
    return pairs, what


def nilearn_data_dirs() -> list[Path]:
    """nilearn's data folders, in nilearn's order (``nilearn.datasets.get_data_dirs``)."""
    dirs: list[Path] = []
    for name in ("NILEARN_SHARED_DATA", "NILEARN_DATA"):
        dirs += [Path(d).expanduser() for d in os.environ.get(name, "").split(os.pathsep) if d]
    dirs.append(Path.home() / "nilearn_data")
    return list(dict.fromkeys(dirs))


def candidate_paths(atlas: str, freesurfer_dirs: Sequence[Path] = ()
                    ) -> list[tuple[Path, Path | None, str]]:
    """(lh, rh, where) candidates for a named atlas, in search order (module docstring).

    ``rh`` is None for a place searched without a candidate (``where`` says what was looked
    for).
    """
    annot = ANNOTATION_NAMES.get(atlas, atlas)
    roots = [Path(d) / "fsaverage" / "label" for d in dict.fromkeys(freesurfer_dirs)]
    if os.environ.get("FREESURFER_HOME"):
        roots.append(Path(os.environ["FREESURFER_HOME"]) / "subjects" / "fsaverage" / "label")
    out: list[tuple[Path, Path | None, str]] = [
        (r / f"lh.{annot}.annot", r / f"rh.{annot}.annot", "FreeSurfer") for r in roots
    ]
    pairs, what = templateflow_candidates(atlas)
    out += [(left, right, "TemplateFlow") for left, right in pairs]
    if not pairs:
        out.append((templateflow_home() / "tpl-fsaverage", None, what))
    if annot == "aparc.a2009s":
        for data_dir in nilearn_data_dirs():
            folder = data_dir / "destrieux_surface"
            out.append((folder / "left.aparc.a2009s.annot", folder / "right.aparc.a2009s.annot",
                        "nilearn"))
    return out


def find_atlas(atlas: str, freesurfer_dirs: Sequence[Path] = ()) -> tuple[Path, Path]:
    """The left and right files of a named atlas (:func:`candidate_paths` order); files without
    content (:func:`unusable_reason`) are passed over.

    Raises
    ------
    MissingInputError
        Nothing found; the message lists every path searched, why a file there was not used,
        and how to provide the atlas.
    """
    searched = []
    for left, right, where in candidate_paths(atlas, freesurfer_dirs):
        if right is None:
            searched.append(where)
            continue
        reasons = [(p, unusable_reason(p)) for p in (left, Path(right))]
        bad = [(p, r) for p, r in reasons if r is not None]
        if not bad:
            return left, Path(right)
        if all(r == "absent" for _, r in bad):
            searched.append(str(left))
        elif len(bad) == 2 and bad[0][1] == bad[1][1]:
            searched.append(f"{left}: not used, both hemispheres' files are {bad[0][1]}")
        else:
            searched.append(f"{left}: not used, " + "; ".join(
                f"{p.name} is {r}" for p, r in bad))
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
