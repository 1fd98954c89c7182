"""Errors the user can act on, and the exit code of each (BIDS-Apps conventions).

===== =====================================================================
Code  Meaning
===== =====================================================================
0     success
1     the processing failed (a step crashed; see the crash report named)
16    the input is not valid BIDS (validator errors, file names BIDS does not allow)
17    unknown analysis level
18    the participant/session/task/filter-file selection matches nothing
64    wrong usage of the command line or configuration, or an output/work folder the app
      must not write to
65    bad data: an input file is empty, truncated, corrupt or inconsistent, or a loop of
      symbolic links in what the app reads
66    a required input (file, named atlas, FreeSurfer licence) is missing
73    the output (or work) folder cannot be created or written
130   interrupted (Ctrl-C, SIGINT); the same command resumes
143   stopped by SIGTERM (scheduler time limit, docker stop); resumable
===== =====================================================================

Errors map to exit codes by class, in one place (:func:`exit_code_of`):

- an :class:`AppError` carries its own code (each subclass below: usage 64, bad data 65, ...);
- the pure packages' errors about the data (``parcels``, ``fmri``, ``meg``, ``stats``,
  ``blocks``) know nothing of exit codes: they all derive from
  :class:`~bids_app.input_errors.InputDataError` (listed in :data:`BAD_DATA_ERRORS`), which
  means 65;
- anything else is a bug: exit 1, with the traceback in the log file only.

A :class:`~bids_app.config.ConfigError` (64) is caught by :mod:`bids_app.cli.run` itself: the
configuration module lies above this one (it imports :mod:`bids_app.io.bids`, which imports
this module). The message of every error a user can fix names the file and proposes the fix;
the command line prints it without a traceback.

Inside the nipype graph, an error raised by a step reaches the command line as nipype's
crash report (a text file holding the step's traceback): :func:`crash_summary` reads the class
the traceback ends with, finds it with the same rule and gives the step's message and code.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path

from bids_app.input_errors import InputDataError

LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_BIDS = 16
EXIT_BAD_LEVEL = 17
EXIT_NO_MATCH = 18
EXIT_USAGE = 64
EXIT_BAD_DATA = 65
EXIT_MISSING_INPUT = 66
EXIT_CANT_CREATE = 73
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it (bids_app.interrupts)
EXIT_TERMINATED = 143  # 128 + SIGTERM

#: Exit codes with one line each, for ``--help``, the docs and boutiques.json.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "Success.",
    EXIT_FAILURE: "A processing step failed; the message names the step and its crash report.",
    EXIT_INVALID_BIDS: "The input dataset is not valid BIDS (BIDS validator errors, or file "
    "names BIDS does not allow).",
    EXIT_BAD_LEVEL: "Unknown analysis level (allowed: participant, group).",
    EXIT_NO_MATCH: "The participant, session, task or filter-file selection matches no data.",
    EXIT_USAGE: "Wrong command-line usage or invalid configuration, or an output or work folder "
    "the app must not write to.",
    EXIT_BAD_DATA: "An input file is empty, truncated, corrupt or inconsistent, or the dataset "
    "has a loop of symbolic links (the file or link is named).",
    EXIT_MISSING_INPUT: "A required input (file, named atlas or FreeSurfer licence) is missing.",
    EXIT_CANT_CREATE: "The output or work folder cannot be created or written.",
    EXIT_INTERRUPTED: "Interrupted (Ctrl-C, SIGINT); run the same command again to resume.",
    EXIT_TERMINATED: "Stopped by SIGTERM (a scheduler's time limit, docker stop); run the same "
                     "command again to resume.",
}


class AppError(Exception):
    """An error the user can fix; carries the exit code and an actionable message."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class UsageError(AppError):
    """Wrong command-line usage or configuration."""

    exit_code = EXIT_USAGE


class BadLevelError(AppError):
    """Unknown analysis level."""

    exit_code = EXIT_BAD_LEVEL


class InvalidBIDSError(AppError):
    """The input dataset is not valid BIDS."""

    exit_code = EXIT_INVALID_BIDS


class NoMatchError(AppError):
    """The selection (participants, sessions, tasks, filters) matches no data."""

    exit_code = EXIT_NO_MATCH


class BadDataError(AppError):
    """An input file is empty, corrupt or inconsistent."""

    exit_code = EXIT_BAD_DATA


class MissingInputError(AppError):
    """A required input file or licence is missing."""

    exit_code = EXIT_MISSING_INPUT


class CantCreateError(AppError):
    """An output or work folder cannot be created or written."""

    exit_code = EXIT_CANT_CREATE


def relpath(path: str | Path, root: str | Path | None) -> str:
    """``path`` relative to ``root`` when inside it (for short, readable messages).

    The path is compared as written before symbolic links are followed, so that a file of a
    DataLad dataset is named by its place in the dataset, not by its annexed content.
    """
    path = Path(path)
    if root is not None:
        for candidate, folder in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))),
                                  (path.resolve(), Path(root).resolve())):
            try:
                return str(candidate.relative_to(folder))
            except ValueError:
                pass
    return str(path)


# --------------------------------------------------------------------------------------------------
# From an error to its exit code
# --------------------------------------------------------------------------------------------------
#: The pure packages' errors that mean "bad input data" (exit code 65). Every error class of
#: the pure packages derives from :class:`~bids_app.input_errors.InputDataError` (checked by
#: ``tests/test_imports.py``): the parcellation (``ParcellationError``), events
#: (``EventsError``), fMRI (``FMRIInputError``), MEG (``MEGInputError``, ``HeadModelError``) and
#: group statistics (``GroupStatsError``).
BAD_DATA_ERRORS: tuple[type[Exception], ...] = (InputDataError,)


def exit_code_of(error: BaseException | type) -> int | None:
    """The exit code of an error the user can fix, None for any other (a bug).

    ``error`` is an exception or its class; an :class:`AppError` instance may carry a code of
    its own (``AppError(message, exit_code=...)``).
    """
    if isinstance(error, AppError):
        return error.exit_code
    cls = error if isinstance(error, type) else type(error)
    if issubclass(cls, AppError):
        return cls.exit_code
    if issubclass(cls, BAD_DATA_ERRORS):
        return EXIT_BAD_DATA
    return None


def crash_summary(crash_files) -> tuple[str, int]:
    """Summarise nipype crash reports (text format).

    When a node fails, nipype stores the traceback in a crash file and raises a generic
    ``RuntimeError``. The traceback ends with the error's class, named with its module
    (``bids_app.meg.errors.TooFewTrialsError: ...``): an error of the app that the user can fix
    (:func:`exit_code_of`) is shown as its message alone, after the step's name, and gives the
    exit code; any other is shown with the crash file to read.

    Returns
    -------
    message : str
        One line per failed step: the node and the error message, plus the crash file to read
        for unexpected errors.
    exit_code : int
        The common code of known errors (65 for bad data), 1 otherwise.
    """
    lines, codes = [], set()
    for crash in sorted(Path(c) for c in crash_files):
        text = crash.read_text(encoding="utf-8", errors="replace")
        node = re.search(r"^Node: (.*)$", text, re.M)
        node = node.group(1).strip() if node else crash.name
        last = _last_exception(text.splitlines())
        match = re.match(r"([\w.]+): (.*)", last, re.S)
        name, detail = (match.group(1), match.group(2).strip()) if match else ("", last.strip())
        cls = _app_error_class(name)
        code = exit_code_of(cls) if cls is not None else None
        if code is not None:
            codes.add(code)
            lines.append(f"{node}: {detail}")
        else:
            codes.add(EXIT_FAILURE)
            lines.append(f"{node} failed: {last.strip()}\n  crash report: {crash}")
    if not lines:
        return "The workflow did not finish and wrote no crash report.", EXIT_FAILURE
    return "\n".join(lines), codes.pop() if len(codes) == 1 else EXIT_FAILURE


def _app_error_class(name: str) -> type | None:
    """The exception class of the app that a traceback names (``bids_app.blocks.EventsError``),
    None for other names (``RuntimeError``, a library's error).

    The step ran in another process: its module may not be imported in this one yet.
    """
    module, _, cls_name = name.rpartition(".")
    if module != "bids_app" and not module.startswith("bids_app."):
        return None
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        LOGGER.debug("the crash report names %s, which is not importable here", name)
        return None
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def _last_exception(lines: list[str]) -> str:
    """The innermost ``ExceptionClass: message`` of a traceback (message may span lines).

    Nipype's crash files end with the step's own traceback indented by a tab, after its
    ``NodeExecutionError``: the indentation is removed before looking.
    """
    lines = [line.removeprefix("\t") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    for i in range(len(lines) - 1, -1, -1):
        if re.match(r"^[\w.]+(Error|Exception)\b", lines[i]):
            return "\n".join(lines[i:])
    return lines[-1] if lines else "unknown error"
