"""Check every input file of a plan before any work starts.

A run that would fail after an hour of processing because its BOLD file is empty or truncated,
its events lie outside the recording or its sampling rate cannot resolve a band, should fail in
the first seconds, naming the file and the fix. The checks read headers only (FIF tag headers
and measurement info, NIfTI header and gzip trailer, events tables), and reuse the functions the
processing steps themselves call (:func:`bids_app.blocks.assign_blocks`,
:func:`bids_app.fmri.validation.validate_bold`, :func:`bids_app.fmri.block_volume_table`,
:func:`bids_app.meg.dics.check_bands`, :func:`bids_app.meg.epochs.check_epochs_inside`...), so
that what passes here passes there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bids_app.blocks import DesignOptions, EventsError, assign_blocks
from bids_app.errors import BadDataError, MissingInputError, relpath
from bids_app.fmri.options import BlockOptions
from bids_app.io.bids import DatasetPlan, RunPair
from bids_app.meg.options import DICSOptions, EpochOptions

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckOptions:
    """What the run will do with the data, for the checks: the options objects of the steps
    whose inputs are checked (each from the configuration, ``Config.options``)."""

    design: DesignOptions
    blocks: BlockOptions
    epochs: EpochOptions
    dics: DICSOptions


class _Unusable(Exception):
    """A file cannot be used; the message says why (collected, then reported together)."""


def read_events(path: Path) -> pd.DataFrame:
    """Read a BIDS events file (UTF-8, tab-separated, ``n/a`` for missing values).

    Raises
    ------
    BadDataError
        The file is not UTF-8 text, not a table, empty, or comma-separated.
    """
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                            encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BadDataError(
            f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at position "
            f"{err.start}); BIDS text files are UTF-8: save it again as UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise BadDataError(
            f"{path} is empty; BIDS events need a header line (onset, duration, trial_type) "
            "and one row per event."
        ) from None
    except pd.errors.ParserError as err:
        raise BadDataError(f"{path} is not a readable tab-separated events file: {err}") from None
    if len(table.columns) == 1 and "," in str(table.columns[0]):
        raise BadDataError(
            f"{path} looks comma-separated; BIDS events files are tab-separated (TSV). Save it "
            "again with tabs between the columns."
        )
    return table


def check_plan(plan: DatasetPlan, options: CheckOptions) -> None:
    """Check the data files and events of every run pair in ``plan`` (headers only).

    Raises
    ------
    MissingInputError
        A data file does not exist (e.g. a DataLad file that was never retrieved).
    BadDataError
        Listing every unusable file: empty, truncated or unreadable, a BOLD image that is not
        4-D or too short, a sidecar RepetitionTime that disagrees with the header, a MEG
        recording without the sensors used or sampled too slowly for a band, events without
        the configured conditions or outside their recording.
    """
    started = time.perf_counter()
    root = plan.bids_dir
    files: list[tuple[Path, str]] = []
    for sub in plan.subjects:
        for pair in sub.pairs:
            files.append((pair.meg, "meg"))
            if pair.fmriprep_bold is None or pair.bold.exists():
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
    headers, problems = {}, []
    for path, kind in files:
        try:
            headers[path] = _read_header(path, kind, options)
        except _Unusable as err:
            problems.append(f"  {relpath(path, root)}: {err}")
    if problems:
        raise BadDataError("Data files cannot be used:\n" + "\n".join(problems))

    for sub in plan.subjects:
        for pair in sub.pairs:
            problems += _run_problems(pair, headers, options, root)
    if problems:
        raise BadDataError("Runs cannot be analysed as they are:\n" + "\n".join(problems))
    LOGGER.info("Checked %d data files and their events in %.1f s: all usable.", len(files),
                time.perf_counter() - started)


# --------------------------------------------------------------------------------------------------
# One file
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _MEGHeader:
    duration_s: float  # time of the last sample


@dataclass(frozen=True)
class _ImageHeader:
    img: object  # nibabel image (header and array proxy only)


def _read_header(path: Path, kind: str, options: CheckOptions):
    """The header facts the run checks need; raises :class:`_Unusable` with the reason."""
    if kind == "meg":
        return _meg_header(path, options)
    return _image_header(path, kind, options)


def _meg_header(path: Path, options: CheckOptions) -> _MEGHeader:
    import mne

    from bids_app.io.integrity import fif_problem
    from bids_app.meg.dics import check_bands
    from bids_app.meg.epochs import sensor_picks
    from bids_app.meg.errors import MEGInputError

    problem = fif_problem(path)
    if problem:
        raise _Unusable(f"{problem}. Copy the complete recording again.")
    try:
        raw = mne.io.read_raw_fif(path, preload=False, verbose="error")
    except Exception as err:  # MNE raises several types for broken FIF files
        raise _Unusable(f"not a readable FIF recording ({type(err).__name__}: {err})") from None
    info = raw.info
    if not any(ch["kind"] == mne.io.constants.FIFF.FIFFV_MEG_CH for ch in info["chs"]):
        raise _Unusable("has no MEG channels")
    try:
        sensor_picks(info, options.epochs.ch_type)
        check_bands(options.dics.bands, info["sfreq"], info.get("lowpass"))
    except MEGInputError as err:
        raise _Unusable(str(err)) from None
    return _MEGHeader(duration_s=float(raw.times[-1]))


def _image_header(path: Path, kind: str, options: CheckOptions) -> _ImageHeader:
    import nibabel as nib

    from bids_app.fmri.errors import FMRIInputError
    from bids_app.fmri.validation import validate_bold
    from bids_app.io.integrity import nifti_problem

    try:
        img = nib.load(path)
        img.header.get_data_shape()
    except Exception as err:  # nibabel raises several types for broken images
        raise _Unusable(f"not a readable NIfTI image ({type(err).__name__}: {err})") from None
    problem = nifti_problem(path, img)
    if problem:
        raise _Unusable(f"{problem}. Copy the complete image again.")
    if kind == "bold":
        try:
            validate_bold(img, dummy_scans=options.blocks.dummy_scans, check_finite=False)
        except FMRIInputError as err:
            raise _Unusable(str(err)) from None
    return _ImageHeader(img=img)


# --------------------------------------------------------------------------------------------------
# One run pair: timing of the events against the recordings
# --------------------------------------------------------------------------------------------------
def _run_problems(pair: RunPair, headers: dict, options: CheckOptions, root: Path) -> list[str]:
    """Lines naming what in this run pair cannot be analysed (empty when all is well)."""
    from bids_app.fmri import block_volume_table
    from bids_app.fmri.errors import FMRIInputError
    from bids_app.fmri.validation import validate_repetition_time
    from bids_app.meg.epochs import check_epochs_inside
    from bids_app.meg.errors import MEGInputError

    problems = []
    bold = headers.get(pair.bold)
    if bold is not None:
        try:
            validate_repetition_time(pair.repetition_time, img=bold.img)
        except FMRIInputError as err:
            problems.append(f"  {relpath(pair.bold, root)}: {err}")
            bold = None
    for events, modality in ((pair.meg_events, "meg"), (pair.bold_events, "bold")):
        try:
            trials = assign_blocks(read_events(events), options.design)
            if modality == "meg":
                check_epochs_inside(trials["onset"].to_numpy(), options.epochs,
                                    duration_s=headers[pair.meg].duration_s)
            elif bold is not None:
                n_volumes = bold.img.shape[3] - options.blocks.dummy_scans
                block_volume_table(trials, tr=pair.repetition_time, n_volumes=n_volumes,
                                   options=options.blocks)
        except (EventsError, FMRIInputError, MEGInputError) as err:
            problems.append(f"  {relpath(events, root)}: {err}")
        except BadDataError as err:
            problems.append(f"  {err.message}")
    return problems


def _listing(paths: Sequence[Path], root: Path, n: int = 20) -> str:
    lines = [f"  {relpath(p, root)}" for p in paths[:n]]
    if len(paths) > n:
        lines.append(f"  ... and {len(paths) - n} more")
    return "\n".join(lines)
