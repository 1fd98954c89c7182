"""Check every input file of a plan before any work starts.

A run that would fail after an hour of processing because its BOLD file is empty, or its events
lack the configured conditions, should fail in the first second, naming the file and the fix.
The checks read headers only (NIfTI header, FIF measurement info, events table).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bids_app.blocks import EventsError, assign_blocks
from bids_app.errors import BadDataError, MissingInputError, relpath
from bids_app.io.bids import DatasetPlan

LOGGER = logging.getLogger(__name__)


def read_events(path: Path) -> pd.DataFrame:
    """Read a BIDS events file (tab-separated, ``n/a`` for missing values)."""
    try:
        return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BadDataError(f"{path} is not a readable tab-separated events file: {err}") from None


def check_plan(
    plan: DatasetPlan,
    *,
    conditions: Sequence[str],
    block_gap_s: float,
    dummy_scans: int = 0,
) -> None:
    """Check the data files and events of every run pair in ``plan``.

    Raises
    ------
    MissingInputError
        A data file does not exist (e.g. a DataLad file that was never retrieved).
    BadDataError
        Data files that are empty or whose header cannot be read (all of them listed), a BOLD
        image that is not 4-D or too short, events that lack the configured conditions.
    """
    root = plan.bids_dir
    files: list[tuple[Path, str]] = []
    for sub in plan.subjects:
        for pair in sub.pairs:
            files.append((pair.meg, "meg"))
            if pair.fmriprep_bold is None:
                files.append((pair.bold, "bold"))
        if sub.t1w is not None:
            files.append((sub.t1w, "t1w"))

    missing = [p for p, _ in files if not p.exists()]
    if missing:
        raise MissingInputError(
            "Data files are missing (or are links to content that was never retrieved, e.g. "
            "with 'datalad get'):\n" + _listing(missing, root)
        )
    empty = [p for p, _ in files if p.stat().st_size == 0]
    if empty:
        raise BadDataError(
            f"{len(empty)} data file(s) are empty (0 bytes):\n" + _listing(empty, root)
            + "\nReplace them with the recorded data (if the dataset is managed by DataLad or "
            "git-annex, retrieve the content with 'datalad get')."
        )
    corrupt = []
    for path, kind in files:
        problem = _header_problem(path, kind, dummy_scans)
        if problem:
            corrupt.append(f"  {relpath(path, root)}: {problem}")
    if corrupt:
        raise BadDataError("Data files cannot be used:\n" + "\n".join(corrupt))

    for sub in plan.subjects:
        for pair in sub.pairs:
            for events in (pair.meg_events, pair.bold_events):
                table = read_events(events)
                try:
                    assign_blocks(table, conditions, gap_s=block_gap_s)
                except EventsError as err:
                    raise BadDataError(f"{relpath(events, root)}: {err}.") from None
    LOGGER.info("Checked %d data files and their events: all readable.", len(files))


def _header_problem(path: Path, kind: str, dummy_scans: int) -> str | None:
    """A sentence describing why the file is unusable, or None."""
    if kind == "meg":
        import mne

        try:
            info = mne.io.read_info(path, verbose="error")
        except Exception as err:  # MNE raises several types for broken FIF files
            return f"not a readable FIF recording ({type(err).__name__}: {err})"
        if not any(ch["kind"] == mne.io.constants.FIFF.FIFFV_MEG_CH for ch in info["chs"]):
            return "has no MEG channels"
        return None
    import nibabel as nib

    try:
        img = nib.load(path)
        shape = img.header.get_data_shape()
    except Exception as err:  # nibabel raises several types for broken images
        return f"not a readable NIfTI image ({type(err).__name__}: {err})"
    if kind == "bold":
        if len(shape) != 4:
            return f"BOLD must be a 4-D image, this one has shape {shape}"
        if shape[3] <= dummy_scans + 2:
            return (f"only {shape[3]} volumes, not enough after discarding {dummy_scans} "
                    "dummy scans")
    return None


def _listing(paths: Sequence[Path], root: Path, n: int = 20) -> str:
    lines = [f"  {relpath(p, root)}" for p in paths[:n]]
    if len(paths) > n:
        lines.append(f"  ... and {len(paths) - n} more")
    return "\n".join(lines)
