"""Interrupts: Ctrl-C and a scheduler's SIGTERM stop the run and every process it started.

Nipype's MultiProc runs steps in a pool of worker processes, and those may start programs of
their own (FreeSurfer). Left alone, an interrupted run misbehaves both ways: SIGINT sent to the
main process alone (``kill -INT``) waits for the running steps to finish, and SIGTERM (what
SLURM sends at the time limit, what ``docker stop`` sends) ends the main process at once while
the workers go on computing, orphaned. While :func:`handle_interrupts` is active, both signals
raise :class:`Interrupted` in the main thread instead; the command line then calls
:func:`stop_children`, which ends every descendant process (SIGTERM, then SIGKILL after a grace
period) and exits 130 (SIGINT) or 143 (SIGTERM).

A step that runs in the main process (every step with nipype's Linear plugin, light steps with
MultiProc) receives the exception inside nipype, which records every error of a step as that
step's failure and goes on. The signal is therefore also remembered, and
:func:`raise_if_interrupted`, called by the workflow runner each time a step starts or ends,
raises it again; the crash report nipype logs for the stopped step is not shown.

The work folder stays usable: nipype marks a step as finished only when it has completed, so a
step stopped half-way is recomputed and every finished one is reused when the same command is
run again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

LOGGER = logging.getLogger("bids_app")

#: The signals that stop a run.
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds a process has to end after SIGTERM before it is killed.
GRACE_S = 2.0


class Interrupted(KeyboardInterrupt):
    """The run received SIGINT or SIGTERM (a KeyboardInterrupt, so that code catching
    ``Exception`` lets it through, as it does Ctrl-C)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def name(self) -> str:
        """'SIGINT' or 'SIGTERM'."""
        return signal.Signals(self.signum).name


#: The signal received while :func:`handle_interrupts` is active (None before any).
_received: int | None = None

#: True from an interrupt until the next :func:`handle_interrupts` block starts: the process pool's
#: manager thread may report its broken workers after the block has ended, as the process exits.
_silenced = False


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` again if a signal was received (and swallowed on the way)."""
    if _received is not None:
        raise Interrupted(_received)


@contextlib.contextmanager
def handle_interrupts() -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread on SIGINT or SIGTERM, for the duration of
    the block; the previous handlers are restored afterwards.

    Worker processes forked meanwhile inherit the handler: in them it restores the default
    action and signals the process again, so that a worker ends at once instead of raising an
    exception into the step it runs. Outside the main thread (where Python cannot set signal
    handlers) the block runs unchanged.
    """
    global _received, _silenced
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    main_pid = os.getpid()

    def handler(signum, frame):
        global _received, _silenced
        if os.getpid() != main_pid:  # a forked worker: end as if no handler were set
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        _received = signum
        _silenced = True
        raise Interrupted(signum)

    _received = None
    _silenced = False
    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    for name in _QUIET_AFTER_INTERRUPT:
        logging.getLogger(name).addFilter(_quiet_after_interrupt)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        if not _silenced:  # after an interrupt, the pool's callbacks may still fire on exit
            for name in _QUIET_AFTER_INTERRUPT:
                logging.getLogger(name).removeFilter(_quiet_after_interrupt)
        _received = None


#: Loggers whose errors, once the run is interrupted, are the interruption's own doing: nipype's
#: crash report of a step stopped in the main process, the process pool's BrokenProcessPool
#: callbacks when the workers are ended. The app reports the interruption instead.
_QUIET_AFTER_INTERRUPT = ("nipype.workflow", "concurrent.futures")


#: How long (s) the process pool's thread holds a broken-pool error before showing it, in case
#: the signal that ended the workers is about to reach the main thread's handler.
BROKEN_POOL_WAIT_S = 1.0


def _quiet_after_interrupt(record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR:
        return True
    if not _silenced and _broken_pool(record):
        # SIGTERM to the whole process group (SLURM at the time limit) ends the workers at the
        # same moment: the pool's thread may report them before the main thread, busy in C code
        # (a garbage collection), has run its handler. An interrupt that follows at once is the
        # cause: wait for it briefly; a worker that died alone is still reported.
        deadline = time.monotonic() + BROKEN_POOL_WAIT_S
        while not _silenced and time.monotonic() < deadline:
            time.sleep(0.01)
    return not _silenced


def _broken_pool(record: logging.LogRecord) -> bool:
    from concurrent.futures.process import BrokenProcessPool

    return (threading.current_thread() is not threading.main_thread()
            and record.exc_info is not None and isinstance(record.exc_info[1], BrokenProcessPool))


def stop_children(grace_s: float = GRACE_S) -> int:
    """End every process started by this one, and the processes they started.

    The whole tree is listed first (a worker's own programs are orphaned, and no longer found,
    once the worker is gone), then sent SIGTERM; what is left after ``grace_s`` seconds gets
    SIGKILL. Further SIGINT/SIGTERM are ignored meanwhile, so that a second Ctrl-C cannot leave
    processes behind. Returns the number of processes stopped.
    """
    restore = {signum: signal.signal(signum, signal.SIG_IGN) for signum in SIGNALS}
    try:
        pids = descendants(os.getpid())
        for pid in pids:
            _send(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            _reap(pids)
            alive = [pid for pid in alive if _running(pid)]
        for pid in alive:
            _send(pid, signal.SIGKILL)
        deadline = time.monotonic() + grace_s  # SIGKILL is not delayed, except by the kernel
        while any(_running(pid) for pid in alive) and time.monotonic() < deadline:
            time.sleep(0.01)
        _reap(pids)
        return len(pids)
    finally:
        for signum, old in restore.items():
            signal.signal(signum, old)


def descendants(pid: int) -> list[int]:
    """Process ids of the children of ``pid``, their children and so on (read from /proc;
    where there is no /proc, the multiprocessing children only)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return [child.pid for child in multiprocessing.active_children()]
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _send(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (ended, not yet collected)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _reap(pids: list[int]) -> None:
    """Collect those of ``pids`` that are ended children of this process (no zombie left)."""
    multiprocessing.active_children()  # joins the ended multiprocessing workers
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not a child of ours, or already collected
            pass
