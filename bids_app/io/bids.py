"""Find the inputs of each participant in a BIDS dataset (pybids) and pair MEG with BOLD runs.

MEG and fMRI runs are paired by subject, task and run label (DESIGN 3). They may sit in different
sessions (``ses-meg`` / ``ses-mri`` as in ds000117); when a (task, run) occurs in several sessions
of one modality, pairing also requires the same session. The result is a :class:`DatasetPlan`:
one :class:`SubjectPlan` per participant with its run pairs, anatomy, MEG calibration files and
FreeSurfer / fMRIPrep derivatives, plus the warnings met on the way.

Nothing here writes to the dataset: pybids indexes in memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bids_app.errors import (
    AppError,
    BadDataError,
    InvalidBIDSError,
    MissingInputError,
    NoMatchError,
    UsageError,
    relpath,
)

if TYPE_CHECKING:
    from bids_app.io.atlases import AtlasChoice

LOGGER = logging.getLogger(__name__)

#: Top-level folders of a dataset that discovery does not index (pybids' ``ignore``).
NOT_INDEXED = ("code", "stimuli", "sourcedata", "derivatives", "models")
#: Top-level folders the app never reads: neither indexed nor given to the BIDS validator.
NOT_READ = ("code", "sourcedata", "derivatives")
BOLD_EXTENSIONS = (".nii.gz", ".nii")
MEG_EXTENSIONS = (".fif",)
FSAVERAGE_SPACES = ("fsaverage5", "fsaverage6", "fsaverage")
#: A BIDS label (subject, session, task, run...): letters and digits only (BIDS "label").
LABEL = re.compile(r"[A-Za-z0-9]+")
#: A BIDS file name: ``key-label`` entities joined by ``_``, a suffix and an extension
#: (BIDS specification, "Filenames"); nothing else (no space, ``;``, ``$``, quotes, accents).
BIDS_FILENAME = re.compile(r"sub-[A-Za-z0-9]+(_[a-z]+-[A-Za-z0-9]+)*_[A-Za-z0-9]+(\.[A-Za-z0-9]+)+")


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunPair:
    """One MEG run and the BOLD run of the same subject, task and run label."""

    subject: str
    task: str
    run: str | None
    meg: Path
    meg_events: Path
    bold: Path
    bold_events: Path
    repetition_time: float
    meg_session: str | None = None
    bold_session: str | None = None
    fmriprep_bold: tuple[Path, Path] | None = None

    @property
    def label(self) -> str:
        """Short name for logs and reports, e.g. ``task-naming_run-01``."""
        return f"task-{self.task}" + (f"_run-{self.run}" if self.run is not None else "")


@dataclass
class SubjectPlan:
    """Everything the participant level needs for one subject."""

    subject: str
    pairs: list[RunPair]
    t1w: Path | None = None
    meg_calibration: Path | None = None
    meg_crosstalk: Path | None = None
    fs_subjects_dir: Path | None = None
    fs_subject: str | None = None
    trans: Path | None = None
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return sorted({p.task for p in self.pairs})

    def describe(self, root: Path | None = None) -> str:
        """A readable multi-line summary of the plan (logged and put in the report)."""
        lines = [f"sub-{self.subject}: {len(self.pairs)} MEG+BOLD run pair(s)"]
        for p in self.pairs:
            bold = (
                f"fMRIPrep {relpath(p.fmriprep_bold[0].parent, None)}"
                if p.fmriprep_bold
                else relpath(p.bold, root)
            )
            lines.append(f"  {p.label}: MEG {relpath(p.meg, root)} <-> BOLD {bold} (TR {p.repetition_time:g} s)")
        lines.append(f"  T1w: {relpath(self.t1w, root) if self.t1w else 'none'}")
        if self.fs_subjects_dir is not None:
            lines.append(f"  FreeSurfer: {self.fs_subjects_dir / self.fs_subject}")
        else:
            lines.append("  FreeSurfer: no reconstruction found")
        if self.trans is not None:
            lines.append(f"  head-MRI transform: {relpath(self.trans, root)}")
        cal = relpath(self.meg_calibration, root) if self.meg_calibration else "none"
        ct = relpath(self.meg_crosstalk, root) if self.meg_crosstalk else "none"
        lines.append(f"  MEG fine calibration: {cal}; cross-talk: {ct}")
        for item in self.skipped:
            lines.append(f"  skipped: {item}")
        return "\n".join(lines)


@dataclass
class DatasetPlan:
    """The participant plans of one run of the app."""

    bids_dir: Path
    subjects: list[SubjectPlan]
    warnings: list[str] = field(default_factory=list)
    #: FreeSurfer subjects folders the run uses: ``--fs-subjects-dir``, else the dataset's
    #: ``derivatives/freesurfer`` and fMRIPrep's ``sourcedata/freesurfer`` (existing or not)
    freesurfer_roots: list[Path] = field(default_factory=list)
    #: The parcellation, found before any work (:func:`bids_app.io.atlases.resolve_atlas`)
    atlas: AtlasChoice | None = None

    @property
    def tasks(self) -> list[str]:
        return sorted({t for s in self.subjects for t in s.tasks})


# --------------------------------------------------------------------------------------------------
# Checks on the dataset root
# --------------------------------------------------------------------------------------------------
def check_bids_root(bids_dir: Path) -> Path:
    """Return the resolved dataset root, or explain why it is not a BIDS dataset."""
    bids_dir = Path(bids_dir)
    resolve_folder(bids_dir, "the input dataset")
    if not bids_dir.exists():
        raise MissingInputError(
            f"The input dataset {bids_dir} does not exist. Give the path of a BIDS dataset (the "
            "folder with dataset_description.json) as the first argument."
        )
    if not bids_dir.is_dir():
        raise UsageError(f"The input dataset {bids_dir} is a file, not a folder.")
    try:
        content = read_dataset_description(bids_dir)
    except ValueError as err:
        raise InvalidBIDSError(
            f"{bids_dir / 'dataset_description.json'} is not valid JSON ({err}). Repair it "
            "(BIDS: a JSON object with at least \"Name\" and \"BIDSVersion\")."
        ) from None
    if content is None:
        raise InvalidBIDSError(
            f"{bids_dir} is not a BIDS dataset: it has no dataset_description.json. Give the root "
            "folder of the dataset (the one holding dataset_description.json and the sub-* folders)."
        )
    if is_app_output(content):
        raise UsageError(
            f"{bids_dir} is an output folder of megfmri-fusion, not the raw dataset. Did you swap "
            "bids_dir and output_dir? The input dataset comes first: megfmri-fusion <bids_dir> "
            "<output_dir> participant."
        )
    return bids_dir.resolve()


def read_dataset_description(folder: Path) -> dict[str, Any] | None:
    """The ``dataset_description.json`` of ``folder``; None when there is none.

    Raises
    ------
    ValueError
        The file cannot be read or is not a JSON object (the message says why).
    """
    path = Path(folder) / "dataset_description.json"
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(err.strerror or str(err)) from None
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(str(err)) from None
    if not isinstance(content, dict):
        raise ValueError("it must hold a JSON object")
    return content


def dataset_generators(description: dict[str, Any]) -> list[str]:
    """The names in a dataset description's ``GeneratedBy`` (the tools that made it)."""
    return [str(g.get("Name")) for g in description.get("GeneratedBy") or []
            if isinstance(g, dict)]


def is_app_output(description: dict[str, Any]) -> bool:
    """True for the description of an output folder of this app (a derivative it generated)."""
    from bids_app.io.derivatives import APP_NAME

    return (description.get("DatasetType") == "derivative"
            and APP_NAME in dataset_generators(description))


def normalize_labels(labels: Iterable[str] | None, prefix: str) -> list[str]:
    """Strip an optional ``sub-``/``ses-`` prefix and drop duplicates, keeping order."""
    out: list[str] = []
    for given in labels or []:
        label = str(given).strip()
        if label.startswith(f"{prefix}-"):
            label = label[len(prefix) + 1 :]
        if not label:
            raise UsageError(
                f"Empty {prefix} label {str(given)!r}: give labels such as 01 or {prefix}-01 "
                "(leave the option out to select all)."
            )
        if not LABEL.fullmatch(label):
            raise UsageError(
                f"Invalid {prefix} label '{label}': BIDS labels contain only letters and digits."
            )
        if label not in out:
            out.append(label)
    return out


def available_subjects(bids_dir: Path, participant_label: Sequence[str] = ()) -> list[str]:
    """Subject labels of the dataset (``sub-<label>`` folders, empty-room excluded).

    Folders named ``sub-*`` whose label BIDS does not allow (a space, an accent, ``_``...) are
    not subjects: they are ignored with a warning naming them.

    Raises
    ------
    NoMatchError
        Some of ``participant_label`` are not in the dataset, or it has no subject at all.
    """
    folders = sorted(p.name for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    odd = [name for name in folders if not LABEL.fullmatch(name[4:])]
    if odd:
        LOGGER.warning(
            "Not subject folders, ignored: %s in %s (BIDS subject labels contain only letters "
            "and digits). Rename or remove them if they hold data to analyse.",
            ", ".join(repr(name) for name in odd), bids_dir)
    subjects = [name[4:] for name in folders if name not in odd and name != "sub-emptyroom"]
    if not subjects:
        raise NoMatchError(f"No sub-* folder found in {bids_dir}.")
    missing = [s for s in participant_label if s not in subjects]
    if missing:
        raise NoMatchError(
            f"Participant(s) {', '.join('sub-' + s for s in missing)} not found in {bids_dir}. "
            f"The dataset has: {_short_list(['sub-' + s for s in subjects])}."
        )
    return list(participant_label) or subjects


def dataset_entries(bids_dir: Path, participant_label: Sequence[str] = ()) -> list[os.DirEntry]:
    """The top-level entries of the dataset that the app reads, sorted by name.

    What the BIDS validator is given (:func:`bids_app.io.validation.validate`) and what
    discovery indexes with pybids lie among these: every entry but hidden ones, the folders in
    :data:`NOT_READ` and, when ``participant_label`` selects subjects, the other subjects' folders
    (the empty-room recordings, ``sub-emptyroom``, are kept: the validator checks them).
    """
    wanted = {f"sub-{label}" for label in participant_label} | {"sub-emptyroom"}
    return [
        entry for entry in sorted(os.scandir(bids_dir), key=lambda e: e.name)
        if not entry.name.startswith(".") and entry.name not in NOT_READ
        and not (participant_label and entry.name.startswith("sub-")
                 and entry.name not in wanted)
    ]


def resolve_folder(path: Path, what: str, error: type[AppError] = BadDataError) -> Path:
    """``path``, absolute, with its symbolic links resolved (it need not exist).

    Parameters
    ----------
    path : Path
        A folder the app reads or writes.
    what : str
        How the user knows it, for the message ("the input dataset", "the output folder").
    error : type
        The error raised for a loop: :class:`BadDataError` (exit 65) for a folder the app
        reads, :class:`CantCreateError` (73) for one it writes.

    Raises
    ------
    AppError
        A symbolic link on the way to ``path`` belongs to a loop of links (following it never
        ends); the message names that link.
    """
    shown = Path(path).expanduser().absolute()
    try:
        return shown.resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop
        link = next((p for p in [*reversed(shown.parents), shown] if _loops(p)), shown)
    reads = error is BadDataError
    raise error(
        f"{what[0].upper()}{what[1:]} {shown} cannot be {'read' if reads else 'used'}: the "
        f"symbolic link {link} is part of a loop of symbolic links (following it never ends). "
        "Remove or correct that link" + ("; the app never changes its inputs." if reads
                                         else ", or choose another folder.")
    )


def _loops(path: Path) -> bool:
    """True when ``path`` is a symbolic link that never resolves (a loop of links)."""
    if not path.is_symlink():
        return False
    try:
        path.resolve(strict=False)
    except (RuntimeError, OSError):
        return True
    return False


def check_symlink_loops(bids_dir: Path, participant_label: Sequence[str] = ()) -> None:
    """Refuse a dataset whose symbolic links lead back into themselves.

    pybids and the BIDS validator follow links to folders. A link to one of its own parent
    folders (``sub-01/anat/up -> ../..``), or links that lead to each other's folders, make
    their walk endless: with two such links the number of paths doubles at every level and
    discovery hangs without a word (the validator runs out of memory after minutes). This walk
    follows links as they do, over everything either of them reads (:func:`dataset_entries`),
    but enters each real folder once and stops at the first link that leads to a folder it
    lies in.

    Raises
    ------
    BadDataError
        Naming the link, where it points and what to do.
    """
    root = Path(bids_dir)
    inside: set[str] = {os.path.realpath(root)}  # real folders on the path being walked
    finished: set[str] = set()
    for entry in dataset_entries(root, participant_label):
        loop = _link_loop(entry, inside, finished)
        if loop is not None:
            link, target = loop
            shown = os.path.relpath(link, os.path.realpath(root))  # the link, not its target
            what = (f"points to {target}, a folder from which it is reached again"
                    if target else "is a chain of links that points back to itself")
            raise BadDataError(
                f"The input dataset has a loop of symbolic links: {shown} {what}. Reading the "
                "dataset (pybids, the BIDS validator) would follow it forever. Remove or "
                "correct that link; the app never changes the dataset."
            )


def _link_loop(entry: os.DirEntry, inside: set[str], finished: set[str]
               ) -> tuple[Path, str | None] | None:
    """``(link, target)`` of the first looping link at or below ``entry``; ``target`` is None
    for a chain of links that never resolves. Depth-first over real folders: ``inside`` holds
    the folders being walked, ``finished`` those walked to the end without a loop."""
    try:
        is_dir = entry.is_dir()  # follows links
    except OSError:  # ELOOP: the link resolves to itself through other links
        return (_real_location(entry), None) if entry.is_symlink() else None
    if not is_dir:
        return None
    real = os.path.realpath(entry.path)
    if real in inside:
        return _real_location(entry), real
    if real in finished:
        return None
    inside.add(real)
    try:
        children = sorted(os.scandir(entry.path), key=lambda e: e.name)
    except OSError:  # unreadable folder: discovery reports what it cannot read
        children = []
    for child in children:
        loop = _link_loop(child, inside, finished)
        if loop is not None:
            return loop
    inside.discard(real)
    finished.add(real)
    return None


def _real_location(entry: os.DirEntry) -> Path:
    """Where a folder entry really is (its folder resolved, the entry itself not)."""
    return Path(os.path.realpath(os.path.dirname(entry.path))) / entry.name


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------
def index_dataset(bids_dir: Path, participant_label: Sequence[str] = ()):
    """Index the dataset with pybids (in memory), limited to the selected participants."""
    from bids import BIDSLayout
    from bids.layout import BIDSLayoutIndexer

    ignore: list[Any] = [*NOT_INDEXED, re.compile(r"^\."),
                         re.compile(r"/(dwi|fmap|perf|pet|beh)/"),
                         # sub-* folders that are not subjects (see available_subjects)
                         re.compile(r"^/sub-(?![A-Za-z0-9]+(/|$))")]
    if participant_label:
        keep = "|".join(re.escape(s) for s in participant_label)
        ignore.append(re.compile(rf"^/sub-(?!({keep})(/|$))"))
    indexer = BIDSLayoutIndexer(validate=False, index_metadata=True, ignore=ignore)
    try:
        return BIDSLayout(str(bids_dir), validate=False, indexer=indexer)
    except Exception as err:  # pybids raises many kinds of errors for broken datasets
        raise InvalidBIDSError(f"pybids could not index {bids_dir}: {err}") from None


def discover(
    bids_dir: Path,
    *,
    participant_label: Sequence[str] = (),
    session_label: Sequence[str] = (),
    tasks: Sequence[str] = (),
    bids_filters: dict[str, dict[str, Any]] | None = None,
    fs_subjects_dir: Path | None = None,
    fmriprep_dir: Path | None = None,
    meg_calibration: Path | None = None,
    meg_crosstalk: Path | None = None,
    unpaired_runs: str = "warn",
    output_dir: Path | None = None,
    subjects: Sequence[str] | None = None,
) -> DatasetPlan:
    """Build the participant plans.

    Parameters
    ----------
    bids_dir : Path
        Root of the BIDS dataset.
    participant_label, session_label, tasks : sequence of str
        Selections (labels without prefixes); empty selects everything.
    bids_filters : dict
        ``{"bold"|"meg"|"t1w": {entity: value}}`` refinements (checked by the configuration,
        ``execution.bids_filters``).
    fs_subjects_dir, fmriprep_dir : Path or None
        FreeSurfer subjects folder and fMRIPrep derivatives.
    meg_calibration, meg_crosstalk : Path or None
        Files overriding the dataset's ``acq-calibration``/``acq-crosstalk`` files.
    unpaired_runs : {"warn", "error"}
        A run with only one modality is skipped with a warning, or is an error.
    output_dir : Path or None
        The app's output folder: a complete reconstruction that an earlier run made in
        ``<output_dir>/sourcedata/freesurfer`` (:func:`app_freesurfer_dir`) is reused.
    subjects : sequence of str or None
        The selected subjects as :func:`available_subjects` returned them for ``bids_dir``,
        itself already returned by :func:`check_bids_root` (the command line checks both once,
        before the validator runs, and passes them on). None: both are done here.

    Raises
    ------
    NoMatchError
        The selection matches no subject, session or task.
    BadDataError
        A selected subject has no MEG+BOLD pair; unpaired runs with ``unpaired_runs="error"``;
        ambiguous pairs.
    MissingInputError
        A paired run has no events file.
    """
    if subjects is None:
        bids_dir = check_bids_root(bids_dir)
        subjects = available_subjects(bids_dir, participant_label)
    filters = bids_filters or {}
    layout = index_dataset(bids_dir, participant_label)
    if session_label:
        sessions = set(layout.get_sessions())
        unknown = [s for s in session_label if s not in sessions]
        if unknown:
            raise NoMatchError(
                f"Session(s) {', '.join('ses-' + s for s in unknown)} not found; the selected "
                f"subjects have sessions: {_short_list(sorted(sessions)) or 'none'}."
            )

    fs_roots = _freesurfer_roots(bids_dir, fs_subjects_dir, fmriprep_dir)
    own = app_freesurfer_dir(output_dir) if output_dir is not None else None
    plan = DatasetPlan(bids_dir=bids_dir, subjects=[],
                       freesurfer_roots=fs_roots + ([own] if own is not None else []))
    counts = {"meg": 0, "bold": 0}  # files the queries found, over all subjects
    for subject in subjects:
        sub_plan = _plan_subject(
            layout,
            subject,
            session_label=session_label,
            tasks=tasks,
            filters=filters,
            fs_roots=fs_roots,
            own_fs_root=own,
            fmriprep_dir=fmriprep_dir,
            unpaired_runs=unpaired_runs,
            counts=counts,
        )
        if meg_calibration is not None:
            sub_plan.meg_calibration = _existing(meg_calibration, "--meg-calibration")
        if meg_crosstalk is not None:
            sub_plan.meg_crosstalk = _existing(meg_crosstalk, "--meg-crosstalk")
        if not sub_plan.pairs:
            reason = "; ".join(sub_plan.skipped) or "no MEG and no BOLD runs"
            message = (
                f"sub-{subject} has no MEG run with a matching BOLD run (same task and run "
                f"label): {reason}."
            )
            if participant_label:
                raise BadDataError(
                    message + " Remove it from --participant-label or add the missing runs."
                )
            plan.warnings.append(message + " It is skipped.")
            LOGGER.warning("%s It is skipped.", message)
            continue
        plan.subjects.append(sub_plan)
    if not plan.subjects:
        _no_match(counts, bids_filters=filters, session_label=session_label, tasks=tasks)
        selection = f" for task(s) {', '.join(tasks)}" if tasks else ""
        raise BadDataError(
            f"No subject in {bids_dir} has both MEG and BOLD runs{selection}: "
            + " ".join(plan.warnings)
        )
    for sub_plan in plan.subjects:
        LOGGER.info("Plan for %s", sub_plan.describe(bids_dir))
    return plan


def _no_match(counts: dict[str, int], *, bids_filters, session_label, tasks) -> None:
    """Raise NoMatchError when the selection (not the dataset) left no MEG or no BOLD file."""
    for query in ("meg", "bold"):
        if counts[query]:
            continue
        selection = []
        if query in bids_filters:
            selection.append(f"--bids-filter-file \"{query}\": {json.dumps(bids_filters[query])}")
        if session_label:
            selection.append("--session-label " + " ".join(session_label))
        if tasks:
            selection.append("--task " + " ".join(tasks))
        if selection:
            raise NoMatchError(
                f"The selection {'; '.join(selection)} matches no {query.upper()} file of the "
                "selected subjects. Check the entity names and values against the file names "
                "(e.g. a session filter needs the ses-<label> of the files)."
            )


def check_bids_names(paths: Iterable[Path], root: Path) -> None:
    """Refuse data files whose names the BIDS specification does not allow.

    Such names (a space, ``;``, ``$``, quotes or accents in a label) are parsed differently by
    different tools, and would reach command lines; the app stops before using them.

    Raises
    ------
    InvalidBIDSError
        Listing every such file (exit code 16).
    """
    bad = sorted({Path(p) for p in paths if not BIDS_FILENAME.fullmatch(Path(p).name)})
    if bad:
        raise InvalidBIDSError(
            "File names that BIDS does not allow (labels hold only letters and digits; entities "
            "are key-label pairs joined by '_'):\n"
            + "\n".join(f"  {relpath(p, root)}" for p in bad)
            + "\nRename them as the BIDS specification requires (the BIDS validator lists "
            "every such file)."
        )


def _plan_subject(layout, subject, *, session_label, tasks, filters, fs_roots, own_fs_root,
                  fmriprep_dir,
                  unpaired_runs, counts) -> SubjectPlan:
    base: dict[str, Any] = {"subject": subject}
    if session_label:
        base["session"] = list(session_label)
    if tasks:
        base["task"] = list(tasks)
    megs = layout.get(**_query(base, filters.get("meg"), suffix="meg", extension=list(MEG_EXTENSIONS)))
    # split FIF recordings are read from their first part; calibration files are not runs
    megs = [
        f for f in megs
        if int(f.entities.get("split", 1)) == 1
        and f.entities.get("acquisition") not in ("calibration", "crosstalk")
    ]
    bolds = layout.get(**_query(base, filters.get("bold"), suffix="bold", datatype="func",
                                extension=list(BOLD_EXTENSIONS)))
    t1ws = layout.get(**_query({"subject": subject}, filters.get("t1w"), suffix="T1w",
                               datatype="anat", extension=list(BOLD_EXTENSIONS)))
    check_bids_names([Path(f.path) for f in megs + bolds + t1ws], Path(layout.root))
    counts["meg"] += len(megs)
    counts["bold"] += len(bolds)
    if tasks:
        found = {f.entities.get("task") for f in megs + bolds}
        if not found & set(tasks):
            raise NoMatchError(
                f"Task(s) {', '.join(tasks)} not found for sub-{subject}; its tasks are "
                f"{_short_list(sorted(layout.get_tasks(subject=subject))) or 'none'}."
            )

    pairs, skipped = pair_runs(
        [_run_item(f) for f in megs], [_run_item(f) for f in bolds], subject=subject
    )
    sub_plan = SubjectPlan(subject=subject, pairs=[], skipped=skipped)
    if skipped and unpaired_runs == "error" and pairs:
        raise BadDataError(
            f"sub-{subject} has unpaired runs: {'; '.join(skipped)}. Add the missing runs, "
            "select runs with --bids-filter-file, or set workflow.unpaired_runs = 'warn' to skip them."
        )
    for item in skipped:
        LOGGER.warning("sub-%s: %s; skipped", subject, item)

    for key, meg, bold in pairs:
        meg_events = _events_for(layout, meg["file"])
        bold_events = _events_for(layout, bold["file"])
        tr = bold["file"].get_metadata().get("RepetitionTime")
        fmriprep = None
        if fmriprep_dir is not None:
            fmriprep = find_fmriprep_bold(Path(fmriprep_dir), bold["file"].entities)
        sub_plan.pairs.append(
            RunPair(
                subject=subject,
                task=key[0],
                run=meg["run"],
                meg=Path(meg["file"].path),
                meg_events=meg_events,
                bold=Path(bold["file"].path),
                bold_events=bold_events,
                repetition_time=_check_tr(tr, Path(bold["file"].path), layout.root),
                meg_session=meg["session"],
                bold_session=bold["session"],
                fmriprep_bold=fmriprep,
            )
        )

    if not t1ws and filters.get("t1w"):
        raise NoMatchError(
            f"--bids-filter-file \"t1w\": {json.dumps(filters['t1w'])} matches no T1w image of "
            f"sub-{subject}; without one the app would use template anatomy. Correct the filter."
        )
    if t1ws:
        sub_plan.t1w = Path(t1ws[0].path)
        if len(t1ws) > 1:
            sub_plan.warnings.append(
                f"{len(t1ws)} T1w images found; using {t1ws[0].filename} (select another with "
                "--bids-filter-file {\"t1w\": {...}})"
            )
    sub_plan.meg_calibration = _first(layout.get(subject=subject, datatype="meg",
                                                 acquisition="calibration", extension=".dat"))
    sub_plan.meg_crosstalk = _first(layout.get(subject=subject, datatype="meg",
                                               acquisition="crosstalk", extension=".fif"))
    sessions = {p.bold_session for p in sub_plan.pairs if p.bold_session}
    if t1ws and t1ws[0].entities.get("session"):
        sessions.add(t1ws[0].entities["session"])
    sessions = sorted(sessions)
    found = find_freesurfer_subject(fs_roots, subject, sessions)
    if found is None and own_fs_root is not None and reconstruction_complete(
            own_fs_root / f"sub-{subject}"):
        found = own_fs_root, f"sub-{subject}"
    if found is not None:
        sub_plan.fs_subjects_dir, sub_plan.fs_subject = found
    sub_plan.trans = find_trans(Path(layout.root), subject)
    return sub_plan


def _query(base: dict, extra: dict | None, **fixed) -> dict:
    query = dict(base)
    query.update(extra or {})
    query.update(fixed)
    return query


def _run_item(bids_file) -> dict[str, Any]:
    ent = bids_file.entities
    run = ent.get("run")
    # keep the label as written in the file name (zero padding included)
    match = re.search(r"_run-([0-9]+)", bids_file.filename)
    return {
        "file": bids_file,
        "task": ent.get("task"),
        "run": match.group(1) if match else None,
        "run_index": int(run) if run is not None else None,
        "session": ent.get("session"),
    }


def pair_runs(
    megs: list[dict[str, Any]], bolds: list[dict[str, Any]], *, subject: str
) -> tuple[list[tuple[tuple, dict, dict]], list[str]]:
    """Pair MEG and BOLD runs by task and run index (and session when needed).

    Each item is a mapping with ``task``, ``run`` (label), ``run_index`` (int or None) and
    ``session``. Pairing is by ``(task, run_index)``; when a key occurs more than once within a
    modality (several sessions with the same run labels), pairing is by
    ``(session, task, run_index)`` instead.

    Returns
    -------
    pairs : list of (key, meg_item, bold_item)
        Sorted by task and run.
    skipped : list of str
        A readable line for every run without a partner.
    """

    def keys(items, with_session):
        out: dict[tuple, dict] = {}
        for item in items:
            key = (item["task"], item["run_index"])
            if with_session:
                key = key + (item["session"],)
            if key in out:
                return None
            out[key] = item
        return out

    meg_keys, bold_keys = keys(megs, False), keys(bolds, False)
    if meg_keys is None or bold_keys is None:
        meg_keys, bold_keys = keys(megs, True), keys(bolds, True)
        if meg_keys is None or bold_keys is None:
            raise BadDataError(
                f"sub-{subject}: several runs share the same task, run and session label; "
                "cannot pair MEG with BOLD runs. Select runs with --bids-filter-file."
            )
    pairs = []
    skipped = []
    for key in sorted(set(meg_keys) | set(bold_keys), key=lambda k: tuple(str(x) for x in k)):
        meg, bold = meg_keys.get(key), bold_keys.get(key)
        if meg is not None and bold is not None:
            pairs.append((key, meg, bold))
        else:
            present = meg or bold
            what = "MEG" if meg is not None else "BOLD"
            other = "BOLD" if meg is not None else "MEG"
            skipped.append(f"{what} run {present['file'].filename} has no {other} run with the "
                           f"same task and run label")
    return pairs, skipped


def _events_for(layout, bids_file) -> Path:
    """The events file of a data file (same entities, same folder; pybids inheritance else)."""
    path = Path(bids_file.path)
    stem = re.sub(r"_(split-[0-9]+_)?(meg|bold)$", "", path.name.split(".")[0])
    sibling = path.with_name(f"{stem}_events.tsv")
    if sibling.is_file():
        return sibling
    nearest = layout.get_nearest(str(path), suffix="events", extension=".tsv", strict=True,
                                 all_=False, full_search=False)
    if nearest:
        return Path(nearest)
    raise MissingInputError(
        f"No events file for {relpath(path, layout.root)}: expected {relpath(sibling, layout.root)} "
        "with onset, duration and trial_type columns (BIDS events)."
    )


def _check_tr(tr: Any, bold: Path, root: str) -> float:
    """The sidecar's RepetitionTime (s), checked by :func:`.validate_repetition_time`."""
    from bids_app.fmri.errors import FMRIInputError
    from bids_app.fmri.validation import validate_repetition_time

    try:
        return validate_repetition_time(tr)
    except FMRIInputError as err:
        raise BadDataError(f"{relpath(bold, root)}: {err}.") from None


def _first(files) -> Path | None:
    return Path(files[0].path) if files else None


def _existing(path: Path, option: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{option}: file {path} does not exist.")
    return path.resolve()


def _short_list(items: Sequence[str], n: int = 12) -> str:
    items = list(items)
    text = ", ".join(items[:n])
    return text + (f", ... ({len(items)} in all)" if len(items) > n else "")


# --------------------------------------------------------------------------------------------------
# Derivatives: FreeSurfer and fMRIPrep
# --------------------------------------------------------------------------------------------------
def _freesurfer_roots(bids_dir: Path, fs_subjects_dir: Path | None,
                      fmriprep_dir: Path | None) -> list[Path]:
    if fs_subjects_dir is not None:
        fs_subjects_dir = Path(fs_subjects_dir)
        if not fs_subjects_dir.is_dir():
            raise MissingInputError(
                f"--fs-subjects-dir {fs_subjects_dir} does not exist or is not a folder."
            )
        return [fs_subjects_dir.resolve()]
    roots = [bids_dir / "derivatives" / "freesurfer"]
    if fmriprep_dir is not None:
        roots.append(Path(fmriprep_dir) / "sourcedata" / "freesurfer")
    return roots


def app_freesurfer_dir(output_dir: Path) -> Path:
    """Where the app's own ``recon-all`` writes: ``<output_dir>/sourcedata/freesurfer`` (as
    fMRIPrep), so a reconstruction outlives the work folder and later runs reuse it."""
    return Path(output_dir) / "sourcedata" / "freesurfer"


def app_bem_dir(output_dir: Path) -> Path:
    """Where the app writes the BEM surfaces it makes (FreeSurfer's watershed), shaped as a
    FreeSurfer subjects folder: ``<output_dir>/sourcedata/bem/sub-<label>/bem/``. The input
    reconstruction is never written to (it is often mounted read-only)."""
    return Path(output_dir) / "sourcedata" / "bem"


#: Files of a reconstruction the app reads (a subject folder holding them all is complete).
RECONSTRUCTION_FILES = ("mri/T1.mgz",) + tuple(
    f"surf/{hemi}.{surf}" for hemi in ("lh", "rh") for surf in ("white", "pial", "sphere.reg"))


def reconstruction_complete(subject_dir: Path) -> bool:
    """Whether a FreeSurfer subject folder holds every file the app reads, none of them empty
    (``recon-all`` creates the folders at its start, so folders alone prove nothing)."""
    return all((Path(subject_dir) / name).is_file()
               and (Path(subject_dir) / name).stat().st_size > 0
               for name in RECONSTRUCTION_FILES)


def find_freesurfer_subject(
    roots: Sequence[Path], subject: str, sessions: Sequence[str] = ()
) -> tuple[Path, str] | None:
    """Locate a FreeSurfer reconstruction of ``subject``.

    Accepts the usual SUBJECTS_DIR layout (``<root>/sub-<s>/surf``) and the nested layout of
    ds000117's derivatives (``<root>/sub-<s>/ses-<x>/anat/surf``).

    Returns
    -------
    (subjects_dir, subject_id) or None
        Such that ``subjects_dir / subject_id / "surf"`` is the surfaces folder.
    """
    for root in roots:
        root = Path(root)
        for name in (f"sub-{subject}", subject):
            if (root / name / "surf").is_dir():
                return root, name
        sub_dir = root / f"sub-{subject}"
        if not sub_dir.is_dir():
            continue
        preferred = [f"ses-{s}" for s in sessions]
        others = sorted(p.name for p in sub_dir.glob("ses-*") if p.is_dir())
        for ses in dict.fromkeys(preferred + others):
            if (sub_dir / ses / "anat" / "surf").is_dir():
                return sub_dir / ses, "anat"
    return None


def find_trans(bids_dir: Path, subject: str) -> Path | None:
    """A head -> MRI transform (``sub-<s>*-trans.fif``) in the dataset's derivatives, if any."""
    derivatives = Path(bids_dir) / "derivatives"
    if not derivatives.is_dir():
        return None
    found = sorted(p for p in derivatives.rglob(f"sub-{subject}*trans.fif")
                   if p.is_file() and p.stat().st_size > 0)
    return found[0] if found else None


def find_fmriprep_bold(fmriprep_dir: Path, entities: dict[str, Any]) -> tuple[Path, Path] | None:
    """The left and right ``space-fsaverage*`` GIFTI BOLD files fMRIPrep wrote for a run.

    fsaverage5 is preferred (it is the default fMRI grid), then fsaverage6, then fsaverage.
    """
    sub = entities["subject"]
    ses = entities.get("session")
    folder = Path(fmriprep_dir) / f"sub-{sub}"
    if ses:
        folder = folder / f"ses-{ses}"
    folder = folder / "func"
    if not folder.is_dir():
        return None
    prefix = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_task-{entities['task']}"
    run = entities.get("run")
    for space in FSAVERAGE_SPACES:
        found = {}
        for path in folder.glob(f"{prefix}_*space-{space}_*bold.func.gii"):
            match = re.search(r"_run-([0-9]+)", path.name)
            if (run is None) != (match is None) or (match and int(match.group(1)) != int(run)):
                continue
            hemi = re.search(r"_hemi-([LR])_", path.name)
            if hemi:
                found[hemi.group(1)] = path
        if set(found) == {"L", "R"}:
            return found["L"], found["R"]
    return None


def freesurfer_available() -> bool:
    """True when FreeSurfer is installed (``FREESURFER_HOME`` set and ``recon-all`` on PATH)."""
    import shutil

    return bool(os.environ.get("FREESURFER_HOME")) and shutil.which("recon-all") is not None
