"""The output and work folders: where the app may write, checked before anything is written.

The app writes only into its output folder (a BIDS-Derivatives dataset of its own) and its work
folder. :func:`check_folders` refuses, before any file or folder is created:

- a folder that is, lies inside or contains the input dataset (``<bids_dir>/derivatives/<name>``
  excepted) or another folder the app reads (``--fs-subjects-dir``, ``--fmriprep-dir``, the
  dataset's ``derivatives/freesurfer``), and ``<bids_dir>/derivatives`` itself;
- an output folder that is a BIDS dataset of another kind (raw data, or the derivatives of
  another tool): the app would replace its ``dataset_description.json``.

:func:`make_folders` then creates the output, ``logs`` and work folders, and removes the ones it
created when one of them cannot be written, so that a refused run leaves nothing behind.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from bids_app.config import Config
from bids_app.errors import CantCreateError, UsageError
from bids_app.io.bids import (
    dataset_generators,
    is_app_output,
    read_dataset_description,
    resolve_folder,
)
from bids_app.io.derivatives import APP_NAME

LOGGER = logging.getLogger("bids_app")


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _suggestion(bids_dir: Path) -> str:
    return f"Use {bids_dir / 'derivatives' / APP_NAME} or a new folder outside the dataset."


def input_folders(config: Config) -> dict[str, Path]:
    """The folders the app reads, besides the dataset: ``{how the user named it: folder}``."""
    ex = config.execution
    folders = {"the dataset's FreeSurfer derivatives":
               Path(ex.bids_dir) / "derivatives" / "freesurfer"}
    if ex.fs_subjects_dir is not None:
        folders["the folder given with --fs-subjects-dir"] = Path(ex.fs_subjects_dir)
    if ex.fmriprep_dir is not None:
        folders["the folder given with --fmriprep-dir"] = Path(ex.fmriprep_dir)
    return {name: resolve_folder(path, name) for name, path in folders.items()}


def check_output_location(path: Path, what: str, *, bids_dir: Path,
                          inputs: dict[str, Path] | None = None) -> Path:
    """Refuse an output or work folder where writing could harm or mix with an input.

    Parameters
    ----------
    path : Path
        The folder (it need not exist).
    what : str
        ``"output"`` or ``"work"``, for the message.
    bids_dir : Path
        The input dataset (resolved).
    inputs : dict
        Other folders the app reads (:func:`input_folders`).

    Returns
    -------
    Path
        ``path`` resolved.

    Raises
    ------
    UsageError
        The folder is, lies inside or contains the dataset (``<bids_dir>/derivatives/<name>``
        excepted) or another input folder, or is ``<bids_dir>/derivatives`` itself.
    """
    shown = Path(path).expanduser().absolute()
    resolved = resolve_folder(shown, f"the {what} folder", CantCreateError)
    bids_dir = Path(bids_dir).resolve()
    derivatives = bids_dir / "derivatives"
    if resolved == bids_dir:
        raise UsageError(
            f"The {what} folder is the input dataset itself; the dataset is never written to. "
            + _suggestion(bids_dir)
        )
    if resolved == derivatives:
        raise UsageError(
            f"The {what} folder {shown} is the dataset's derivatives folder itself, where each "
            "tool writes into a folder of its own. " + _suggestion(bids_dir)
        )
    if _is_within(resolved, bids_dir) and not _is_within(resolved, derivatives):
        raise UsageError(
            f"The {what} folder {shown} is inside the input dataset; the dataset is never written "
            "to. " + _suggestion(bids_dir)
        )
    if _is_within(bids_dir, resolved):
        raise UsageError(
            f"The {what} folder {shown} contains the input dataset {bids_dir}; the app's files "
            "would mix with it. " + _suggestion(bids_dir)
        )
    for name, folder in (inputs or {}).items():
        if resolved == folder:
            where = name
        elif _is_within(resolved, folder):
            where = f"inside {folder} ({name})"
        elif _is_within(folder, resolved):
            where = f"a folder containing {folder} ({name})"
        else:
            continue
        raise UsageError(
            f"The {what} folder {shown} is {where}, which the app reads: FreeSurfer and fMRIPrep "
            "derivatives are inputs, never written to. " + _suggestion(bids_dir)
        )
    return resolved


def check_output_dataset(path: Path, bids_dir: Path | None = None) -> None:
    """Refuse an existing output folder that is a BIDS dataset other than the app's outputs.

    An output folder is new, empty, or holds earlier outputs of this app (its
    ``dataset_description.json`` says ``"DatasetType": "derivative"`` and names
    megfmri-fusion in ``GeneratedBy``).

    Raises
    ------
    UsageError
        The folder holds a raw BIDS dataset, another tool's derivatives, or an unreadable
        ``dataset_description.json``.
    """
    fix = _suggestion(Path(bids_dir)) if bids_dir is not None else "Choose a new folder."
    try:
        content = read_dataset_description(path)
    except ValueError as err:
        raise UsageError(
            f"The output folder {path} holds a dataset_description.json that cannot be read "
            f"({err}); it is not an output folder of {APP_NAME}. {fix}"
        ) from None
    if content is None or is_app_output(content):
        return
    kind = content.get("DatasetType", "raw")  # BIDS: raw when absent
    if kind != "derivative":
        raise UsageError(
            f"The output folder {path} is a {kind} BIDS dataset ({content.get('Name', 'unnamed')}"
            f"); writing there would replace its dataset_description.json. Did you swap bids_dir "
            f"and output_dir? The input dataset comes first. {fix}"
        )
    made_by = ", ".join(dataset_generators(content)) or "another tool (no GeneratedBy)"
    raise UsageError(
        f"The output folder {path} holds the derivatives of {made_by}; {APP_NAME} writes "
        f"into a folder of its own. {fix}"
    )


def check_folders(config: Config, *, work: bool = True) -> None:
    """Check the output and work folders before anything is written (resolves their paths).

    ``work=False`` checks the output folder alone (``--reports-only`` uses no work folder).

    Raises
    ------
    UsageError
        See :func:`check_output_location` and :func:`check_output_dataset`.
    """
    ex = config.execution
    inputs = input_folders(config)
    ex.output_dir = check_output_location(ex.output_dir, "output", bids_dir=ex.bids_dir,
                                          inputs=inputs)
    check_output_dataset(ex.output_dir, ex.bids_dir)
    if not work:
        return
    if ex.work_dir is None:
        ex.work_dir = Path.cwd() / "work"
    ex.work_dir = check_output_location(ex.work_dir, "work", bids_dir=ex.bids_dir, inputs=inputs)
    if _is_within(ex.output_dir, ex.work_dir) or _is_within(ex.work_dir, ex.output_dir):
        LOGGER.warning(
            "The work folder %s and the output folder %s are nested; keep them apart so the "
            "outputs stay valid BIDS-Derivatives.", ex.work_dir, ex.output_dir
        )


def make_folders(folders: list[tuple[Path, str]]) -> None:
    """Create each folder (and its parents) and check it is writable.

    When one cannot be created or written, the folders created by this call are removed again
    (they are empty), so that a refused run leaves nothing behind.

    Raises
    ------
    CantCreateError
        Naming the folder and the reason (exit code 73).
    """
    created: list[Path] = []
    try:
        for path, what in folders:
            created += _make_folder(Path(path), what)
    except CantCreateError:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise


def _make_folder(path: Path, what: str) -> list[Path]:
    """Create ``path``; return the folders created (outermost first)."""
    missing = [p for p in [path, *path.parents] if not p.exists()][::-1]
    created = []
    try:
        for folder in missing:
            folder.mkdir()
            created.append(folder)
        probe = path / f".megfmri-write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise CantCreateError(
            f"Cannot create or write the {what} folder {path}: {err.strerror or err}. Choose a "
            "folder you can write to (in containers, check the bind mounts)."
        ) from None
    return created
