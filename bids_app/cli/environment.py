"""Writable places for the libraries' caches and temporary files, under a container's conditions.

A container may run with a read-only root file system, as another user, with ``$HOME`` not
writable and even ``/tmp`` read-only (``docker run --read-only --user 1000`` without
``--tmpfs /tmp``, ``apptainer run --containall`` on some sites): then only the output and work
folders can be written. The libraries the app runs write caches and temporary files of their own:
Python's :mod:`tempfile` (ANTs, MNE and nipype's temporary files, through ``$TMPDIR``),
Matplotlib (``$MPLCONFIGDIR``) and the XDG cache (``$XDG_CACHE_HOME``, fontconfig). Each that
points to a folder the run cannot write is moved into ``<work_dir>/.cache/<name>``, before any
worker process starts (they inherit the environment), and the log says so. A place that is
writable is left alone, so a site's ``$TMPDIR`` (a node-local disk) keeps being used.

Called by :func:`bids_app.cli.launch.open_output`, once the work folder exists; nothing happens at
import time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

LOGGER = logging.getLogger("bids_app")

#: Variable -> where the library writes when it is not set.
CACHE_VARIABLES = {
    "TMPDIR": lambda: "/tmp",
    "MPLCONFIGDIR": lambda: str(Path.home() / ".config" / "matplotlib"),
    "XDG_CACHE_HOME": lambda: str(Path.home() / ".cache"),
}


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder``, or ``folder`` created, by this process;
    asked of the operating system (``access(2)``, which knows read-only mounts), so that the
    question writes nothing."""
    folder = Path(folder).absolute()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return False
    return os.access(existing, os.W_OK | os.X_OK)


def ensure_writable_caches(work_dir: Path) -> dict[str, str]:
    """Point every variable of :data:`CACHE_VARIABLES` whose folder cannot be written into the
    work folder; return the variables changed (``{name: new folder}``). Nothing is created
    outside the work folder."""
    changed = {}
    for name, default in CACHE_VARIABLES.items():
        current = os.environ.get(name) or default()
        # tempfile skips a $TMPDIR that does not exist, so that one must exist already
        if writable(Path(current)) and (name != "TMPDIR" or Path(current).is_dir()):
            continue
        target = Path(work_dir) / ".cache" / name.lower()
        target.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(target)
        changed[name] = str(target)
        LOGGER.info("%s (%s) cannot be written here: using %s", name, current, target)
    if "TMPDIR" in changed:
        tempfile.tempdir = None  # tempfile caches its choice; let it choose again
    return changed
