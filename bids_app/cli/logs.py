"""The app's log: one handler on the terminal, every message of a run in its log file.

The checks of a run come before any folder is created, so the messages logged before the log
file exists are kept in memory (:func:`buffer_early_logging`) and written to it first when it is
opened (:func:`add_file_logging`); :func:`close_file_logging` ends both at the end of a run.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOGGER = logging.getLogger("bids_app")

_FORMAT = "%(asctime)s | %(levelname)-7s | %(message)s"


class _TerminalHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment, not the one at set-up: the handler is set up
    once per process, and a caller may have replaced the stream since (the demo's stages,
    pytest's output capture)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


def setup_console_logging(verbosity: int = 0) -> None:
    """One handler on the terminal for every command of the app (set up once per process, so
    the demo, which simulates and then runs both levels, prints each line once)."""
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_megfmri", False)), None)
    if handler is None:
        handler = _TerminalHandler()
        handler._megfmri = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(_FORMAT, "%y%m%d-%H:%M:%S"))
        root.addHandler(handler)
    handler.setLevel(level)
    root.setLevel(min(level, root.level) if root.level else level)
    LOGGER.setLevel(logging.DEBUG)
    for noisy in ("nipype.interface", "nipype.utils", "bids", "bidsschematools", "mne",
                  "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)


_FILE_HANDLERS: list[logging.Handler] = []
#: Messages logged before the log file exists (checks run before any folder is created).
_EARLY_RECORDS: list[logging.handlers.MemoryHandler] = []


def buffer_early_logging() -> None:
    """Keep every message from the start of a run for the log file opened later."""
    from logging.handlers import MemoryHandler

    buffer = MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1)
    buffer.setLevel(logging.DEBUG)
    _EARLY_RECORDS.append(buffer)
    logging.getLogger().addHandler(buffer)


def add_file_logging(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    _FILE_HANDLERS.append(handler)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s | %(message)s"))
    root = logging.getLogger()
    while _EARLY_RECORDS:
        buffer = _EARLY_RECORDS.pop()
        buffer.setTarget(handler)
        buffer.flush()
        root.removeHandler(buffer)
        buffer.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def close_file_logging() -> None:
    root = logging.getLogger()
    while _EARLY_RECORDS:  # the run stopped before it had a log file
        buffer = _EARLY_RECORDS.pop()
        root.removeHandler(buffer)
        buffer.buffer.clear()
        buffer.close()
    while _FILE_HANDLERS:
        handler = _FILE_HANDLERS.pop()
        root.removeHandler(handler)
        handler.close()
