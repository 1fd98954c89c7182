"""The random seed of an output folder: drawn once, saved in ``<output_dir>/logs/random-seed``
and used by every later run into that folder.

The seed is an input of the steps that sample at random (realignment, ANTs' coregistration and
template registration; the group bootstrap), so it is part of their hash in the work folder. A
seed drawn anew by every run would make "run the same command again to resume" recompute those
steps and everything after them, with other numbers. Hence the rules:

1. ``--random-seed N`` (or ``[seeds] random_seed`` in a ``--config`` file): ``N`` is used. If
   the output folder has no saved seed yet, ``N`` becomes its seed (saved), so that the same
   command without the option resumes; a different saved seed is kept, with a warning (the
   steps that use the seed run again with ``N``).
2. Otherwise the folder's saved seed is used.
3. Otherwise a seed is drawn and saved. Several runs may start into a new folder at once
   (SLURM array tasks, one per participant): the file is created exclusively, complete from
   the start (written under a temporary name, then linked to its name, which fails if the name
   exists), and a run that loses reads and uses the seed of the run that won.

The file is read before the graph is built (the seed is an input of its nodes) and written only
after every check has passed (:func:`keep_seed`, called once the output folder exists), so a
refused run writes nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bids_app.errors import UsageError

LOGGER = logging.getLogger("bids_app")

#: Where an output folder keeps its seed, relative to the folder.
SEED_FILE = Path("logs") / "random-seed"
#: Seeds are drawn in [0, 2**31 - 1], the range ``--random-seed`` accepts.
MAX_SEED = 2**31 - 1
_HEADER = ("# Random seed of this output folder (megfmri-fusion): every run into the folder uses\n"
           "# it unless --random-seed says otherwise. Delete this file to draw a new one.\n")


@dataclass(frozen=True)
class SeedChoice:
    """The seed of a run and where it comes from.

    ``origin`` is ``"option"`` (``--random-seed`` or ``--config``), ``"saved"`` (the folder's
    file) or ``"drawn"`` (new; saved by :func:`keep_seed`). ``path`` is the folder's seed file.
    """

    seed: int
    origin: str
    path: Path

    def describe(self) -> str:
        """The origin of the seed for the log, e.g. ``"from <out>/logs/random-seed"``."""
        if self.origin == "option":
            return "--random-seed"
        if self.origin == "saved":
            return f"from {self.path}"
        return f"drawn for this output folder, saved in {self.path}"


def seed_file(output_dir: str | Path) -> Path:
    """The seed file of ``output_dir``."""
    return Path(output_dir) / SEED_FILE


def draw_seed() -> int:
    """A new seed from the operating system's random source."""
    return int.from_bytes(os.urandom(4), "little") % (MAX_SEED + 1)


def read_seed(path: Path, *, wait_s: float = 2.0) -> int | None:
    """The seed saved in ``path``, or None when there is no such file.

    An empty file is read again for up to ``wait_s`` seconds (a run on a file system without
    hard links writes it in place, :func:`save_seed`). A file that holds no seed is an error
    that names the file and the fix.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):  # the folder checks say why, if needed
            return None
        except OSError as err:
            raise UsageError(f"Cannot read the seed of the output folder, {path}: "
                             f"{err.strerror}. Make it readable, or delete it to draw a new "
                             "seed.") from None
        lines = [line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if len(lines) == 1 and lines[0].isdigit() and int(lines[0]) <= MAX_SEED:
        return int(lines[0])
    raise UsageError(
        f"{path} does not hold a random seed (one integer in [0, {MAX_SEED}]). Delete it to "
        "draw a new seed for the output folder, or give one with --random-seed."
    )


def save_seed(path: Path, seed: int) -> int:
    """Save ``seed`` as ``path`` unless the file exists; return the seed the file holds.

    The file appears complete or not at all: it is written under a temporary name and then
    hard-linked to ``path``, which fails when ``path`` exists (another run saved its seed
    first: that seed is returned). Where hard links are not supported, the file is created
    exclusively and written in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{_HEADER}{seed}\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _saved(path)
        except OSError:  # no hard links on this file system
            return _save_in_place(path, text, seed)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return seed


def _save_in_place(path: Path, text: str, seed: int) -> int:
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return _saved(path)
    return seed


def _saved(path: Path) -> int:
    seed = read_seed(path)
    if seed is None:  # removed again at once: not worth a retry loop
        raise UsageError(f"{path} appeared and disappeared while this run saved its seed; "
                         "run the command again.")
    return seed


def choose_seed(given: int | None, output_dir: str | Path) -> SeedChoice:
    """The seed of a run into ``output_dir`` (reads the folder's seed file, writes nothing).

    ``given`` is the seed of ``--random-seed`` or of ``--config``, or None.
    """
    path = seed_file(output_dir)
    if given is not None:
        return SeedChoice(int(given), "option", path)
    saved = read_seed(path)
    if saved is not None:
        return SeedChoice(saved, "saved", path)
    return SeedChoice(draw_seed(), "drawn", path)


def keep_seed(choice: SeedChoice) -> SeedChoice:
    """Save a drawn or given seed as the folder's seed when the folder has none, and log the
    seed of the run. Returns the seed to use: the choice, or, when another run into the folder
    saved its seed first, that seed (``origin`` "saved": the caller must use it instead)."""
    if choice.origin == "saved":
        final = choice
    elif choice.origin == "drawn":
        final = replace(choice, seed=save_seed(choice.path, choice.seed))
        if final.seed != choice.seed:
            final = replace(final, origin="saved")
    else:
        saved = save_seed(choice.path, choice.seed)
        final = choice
        if saved != choice.seed:
            LOGGER.warning(
                "--random-seed %d differs from the seed of this output folder, %d (%s): the "
                "steps that use the seed run again, and the folder's outputs then come from two "
                "seeds. The saved seed is kept for later runs without --random-seed.",
                choice.seed, saved, choice.path)
    LOGGER.info("Random seed %d (%s)", final.seed, final.describe())
    return final
