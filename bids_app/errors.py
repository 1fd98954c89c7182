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

Every error raised for bad input is an :class:`AppError` (or one of the pure packages' own
``ValueError`` subclasses, which :mod:`bids_app.cli.run` maps to code 65). Its message names the
file and proposes the fix; the command line prints it without a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path

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
# Errors raised inside the pipeline
# --------------------------------------------------------------------------------------------------
#: ``module:Class`` of the pure packages' error classes that mean "bad input data" (exit code 65).
#: They subclass ValueError and know nothing of exit codes; this list maps them.
BAD_DATA_ERRORS = (
    "bids_app.blocks:EventsError",
    "bids_app.fmri.errors:FMRIInputError",
    "bids_app.meg.errors:MEGInputError",
    "bids_app.meg.headmodel:HeadModelError",
    "bids_app.stats:GroupStatsError",
)


def _bad_data_classes() -> tuple[type, ...]:
    classes = []
    for spec in BAD_DATA_ERRORS:
        module, name = spec.split(":")
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            LOGGER.debug("error class %s not importable", spec)
    return tuple(classes)


def bad_data_message(err: BaseException) -> str | None:
    """The message of a bad-data error from the pure packages, else None."""
    classes = _bad_data_classes()
    if classes and isinstance(err, classes):
        return str(err)
    return None


def crash_summary(crash_files) -> tuple[str, int]:
    """Summarise nipype crash reports (text format).

    When a node fails, nipype stores the traceback in a crash file and raises a generic
    ``RuntimeError``. This recognises the pure packages' bad-data errors and :class:`AppError`
    subclasses by class name in the traceback.

    Returns
    -------
    message : str
        One line per failed step: the node and the error message, plus the crash file to read
        for unexpected errors.
    exit_code : int
        The common code of known errors (65 for bad data), 1 otherwise.
    """
    bad_data = {spec.split(":")[1] for spec in BAD_DATA_ERRORS}
    bad_data |= {sub.__name__ for cls in _bad_data_classes() for sub in _subclasses(cls)}
    app_errors = {cls.__name__: cls.exit_code for cls in _subclasses(AppError)}
    lines, codes = [], set()
    for crash in sorted(Path(c) for c in crash_files):
        text = crash.read_text(encoding="utf-8", errors="replace")
        node = re.search(r"^Node: (.*)$", text, re.M)
        node = node.group(1).strip() if node else crash.name
        last = _last_exception(text.splitlines())
        match = re.match(r"(?:[\w.]+\.)?(\w+): (.*)", last, re.S)
        cls, detail = (match.group(1), match.group(2).strip()) if match else ("", last.strip())
        if cls in bad_data:
            codes.add(EXIT_BAD_DATA)
            lines.append(f"{node}: {detail}")
        elif cls in app_errors:
            codes.add(app_errors[cls])
            lines.append(f"{node}: {detail}")
        else:
            codes.add(EXIT_FAILURE)
            lines.append(f"{node} failed: {last.strip()}\n  crash report: {crash}")
    if not lines:
        return "The workflow did not finish and wrote no crash report.", EXIT_FAILURE
    return "\n".join(lines), codes.pop() if len(codes) == 1 else EXIT_FAILURE


def _subclasses(cls: type) -> list[type]:
    out, todo = [], [cls]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(current.__subclasses__())
    return out


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
