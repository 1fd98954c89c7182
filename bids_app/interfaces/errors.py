"""The file an error of the pure code is about, in its message.

The pure packages take arrays, not files, so their errors about the data
(:class:`~bids_app.input_errors.InputDataError`) cannot name the file; the interface that read
the arrays does, by wrapping the call in :func:`about`. The error keeps its class: the command
line maps it to exit code 65 from the step's crash report (:func:`bids_app.errors.crash_summary`)
and prints the message without a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bids_app.input_errors import InputDataError


@contextlib.contextmanager
def about(path: str | Path) -> Iterator[None]:
    """Prefix the bad-data errors raised inside with ``path``, the file they concern."""
    try:
        yield
    except InputDataError as err:
        raise type(err)(f"{path}: {err}") from None
