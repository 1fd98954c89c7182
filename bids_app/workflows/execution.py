"""Run a nipype workflow: plugin, caching, progress and failures.

Nipype caches every finished node in the work folder (keyed by the hash of its inputs), so
running the same command again after an interruption resumes where it stopped. The plugin comes
from ``--nprocs`` (MultiProc, or Linear for one process) or ``--use-plugin`` (e.g. SLURMGraph on a
cluster). With the local plugins a callback reports each finished step in the log and, in a
terminal, on a progress bar.
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bids_app.errors import AppError, UsageError, crash_summary
from bids_app.interrupts import raise_if_interrupted

LOGGER = logging.getLogger(__name__)

#: Plugins that run nodes in this process tree and accept a status callback.
LOCAL_PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc")


class WorkflowFailed(AppError):
    """One or more steps of the workflow failed; the message summarises the crash reports."""


#: How often (s) the local plugins look for finished steps and start the next ones. Nipype's
#: default, 2 s, leaves a core idle for up to 2 s after every step (1 s on average): with the
#: demo's 200 submitted steps the participant level took 489 s instead of 371 s
#: (benchmarks/bench_stages.py, docs/performance.md). Cluster plugins keep nipype's 2 s: each
#: look asks the scheduler (squeue, qstat) about every job.
POLL_SLEEP_S = 0.2


def configure_nipype(*, crash_dir: Path, stop_on_first_crash: bool, verbosity: int = 0) -> None:
    """Set nipype's execution options for this process (no file is written to $HOME)."""
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    nipype_config.update_config(
        {
            "execution": {
                "crashdump_dir": str(crash_dir),
                "crashfile_format": "txt",
                "stop_on_first_crash": stop_on_first_crash,
                "hash_method": "content",
                "remove_unnecessary_outputs": False,
                "check_version": False,
                "get_linked_libs": False,
                "parameterize_dirs": False,
            },
            "monitoring": {"enabled": False},
            "logging": {
                "workflow_level": "INFO" if verbosity < 2 else "DEBUG",
                "interface_level": "WARNING" if verbosity < 2 else "DEBUG",
                "utils_level": "WARNING" if verbosity < 2 else "DEBUG",
                "log_to_file": False,
            },
        }
    )
    nipype_logging.update_logging(nipype_config)
    # nipype prints through its own stdout handler *and* propagates to the root logger, which
    # the command line already prints: drop nipype's handler so each message appears once.
    nipype_root = logging.getLogger("nipype")
    for handler in list(nipype_root.handlers):
        if type(handler) is logging.StreamHandler:
            nipype_root.removeHandler(handler)
    workflow_logger = logging.getLogger("nipype.workflow")
    if not any(isinstance(f, _CrashTracebackFilter) for f in workflow_logger.filters):
        workflow_logger.addFilter(_CrashTracebackFilter())


class _CrashTracebackFilter(logging.Filter):
    """Nipype logs a failed step's whole traceback with the name of its crash report: keep the
    name only. The traceback stays in the crash report, and the command line prints the
    step's error (for bad data, its message alone: :func:`bids_app.errors.crash_summary`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Saving crash info to %s") and record.args:
            record.msg, record.args = "Saving crash info to %s", tuple(record.args)[:1]
        return True


class ProgressCallback:
    """Nipype status callback: one log line per finished step, and a bar in a terminal."""

    def __init__(self, total: int, *, label: str = "steps", stream=None):
        self.total = max(total, 1)
        self.done = 0
        self.failed = 0
        self.label = label
        #: Wall time (s) of each step run in this run, by step name ("realign": [94.1, ...]).
        self.seconds: dict[str, list[float]] = {}
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        self._bar = None
        stream = stream or sys.stderr
        if hasattr(stream, "isatty") and stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit="step", file=stream, leave=True)

    def __call__(self, node: Any, status: str) -> None:
        # nipype records an interrupt inside a step run in this process as the step's failure
        # and goes on: stop here instead, as each step starts or ends
        raise_if_interrupted()
        if status == "start":
            self._started[id(node)] = time.monotonic()
            return
        if status not in ("end", "exception"):
            return
        with self._lock:
            started = self._started.pop(id(node), None)
            if started is not None and status == "end":
                step = getattr(node, "name", str(node))
                self.seconds.setdefault(step, []).append(time.monotonic() - started)
            self.done += 1
            if status == "exception":
                self.failed += 1
            name = getattr(node, "fullname", str(node))
            verb = "failed" if status == "exception" else "done"
            LOGGER.info("[%d/%d] %s %s", self.done, self.total, name, verb)
            if self._bar is not None:
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def step_times(self, n: int = 8) -> str:
        """The ``n`` steps that took longest in this run, summed over runs and subjects:
        ``realign 16 x 94 s = 1,497 s; maxwell_filter ...`` (empty when no step ran)."""
        totals = sorted(self.seconds.items(), key=lambda item: -sum(item[1]))[:n]
        return "; ".join(f"{step} {len(times)} x {sum(times) / len(times):.0f} s = "
                         f"{sum(times):,.0f} s" for step, times in totals)


def cpu_seconds() -> float:
    """CPU time (user + system, s) of this process and of its ended children (nipype's
    MultiProc workers are counted once the run has ended them)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def plugin_settings(plugin: str, plugin_args: dict[str, Any], *, nprocs: int,
                    mem_gb: float | None) -> tuple[str, dict[str, Any]]:
    """The plugin name and arguments nipype receives."""
    args = dict(plugin_args)
    if plugin == "MultiProc" and nprocs == 1 and not plugin_args:
        return "Linear", {}
    if plugin in ("MultiProc", "LegacyMultiProc"):
        args.setdefault("n_procs", nprocs)
        if mem_gb:
            args.setdefault("memory_gb", mem_gb)
        args.setdefault("raise_insufficient", False)
        args.setdefault("maxtasksperchild", 1)
    return plugin, args


def check_memory(nodes, memory_gb: float, option: str) -> None:
    """Refuse a memory limit below what a step of the graph declares (``mem_gb``).

    MultiProc starts a step only when its memory fits in what is left of the limit; below
    0.01 GB it starts nothing and waits forever, without a message. Steps that need more than
    the limit would exceed what the user said is available. Either way, say so before the run.

    Raises
    ------
    UsageError
        Naming the option, the step that needs the most and how much, and the fix.
    """
    largest = max(nodes, key=lambda node: node.mem_gb)
    if memory_gb < largest.mem_gb:
        need = math.ceil(largest.mem_gb * 10) / 10
        raise UsageError(
            f"The memory limit ({option} = {memory_gb:g} GB) is less than the "
            f"{largest.mem_gb:.2f} GB that the step {largest.fullname} needs, so the run could "
            f"not start it. Set {option} to at least {need:g}, or leave it out to use the "
            "machine's memory."
        )


def check_resources(workflow, *, plugin: str, plugin_args: dict[str, Any], nprocs: int,
                    mem_gb: float | None) -> None:
    """Check, before the run and before anything is written, that the memory limit of the
    plugin lets every step of ``workflow`` start (:func:`check_memory`).

    Raises
    ------
    UsageError
        A memory limit (``mem_gb``, or ``memory_gb`` of the plugin) below what a step declares;
        a SLURM plugin where ``sbatch`` cannot be run.
    """
    from bids_app.workflows.slurm import sbatch_available

    if plugin in ("SLURM", "SLURMGraph") and not sbatch_available():
        raise UsageError(
            f"The {plugin} plugin (--use-plugin) submits every step with sbatch and follows "
            "the jobs with squeue and scontrol, which are not all on PATH here: run the app on "
            "a machine of the cluster (a login node), or run each participant as one job "
            "instead (--slurm-script, docs/hpc.md).")
    _name, args = plugin_settings(plugin, plugin_args, nprocs=nprocs, mem_gb=mem_gb)
    limit = args.get("memory_gb", mem_gb)
    if limit is not None:
        option = "memory_gb (plugin file)" if "memory_gb" in plugin_args else "--mem-gb"
        check_memory(list(workflow._create_flat_graph().nodes()), limit, option)


def run_workflow(workflow, *, plugin: str, plugin_args: dict[str, Any], nprocs: int,
                 mem_gb: float | None, crash_dir: Path, label: str = "steps"):
    """Run ``workflow`` and return nipype's execution graph.

    Raises
    ------
    UsageError
        A memory limit below what a step declares (:func:`check_resources`), before anything
        runs; the command line checks it earlier, before anything is written.
    WorkflowFailed
        When a node fails; the message names each failed step with its error (bad-data errors
        from the pure packages keep their message and exit code 65).
    """
    check_resources(workflow, plugin=plugin, plugin_args=plugin_args, nprocs=nprocs,
                    mem_gb=mem_gb)
    name, args = plugin_settings(plugin, plugin_args, nprocs=nprocs, mem_gb=mem_gb)
    nodes = list(workflow._create_flat_graph().nodes())
    progress = None
    if name in LOCAL_PLUGINS:
        progress = ProgressCallback(len(nodes), label=label)
        args["status_callback"] = progress
        workflow.config.setdefault("execution", {})["poll_sleep_duration"] = POLL_SLEEP_S
    LOGGER.info("Running %s with the %s plugin (%s)", workflow.name, name,
                ", ".join(f"{k}={v}" for k, v in args.items() if k != "status_callback") or "defaults")
    runner = name
    if name == "SLURMGraph":  # one job per step, and wait for them (bids_app.workflows.slurm)
        from bids_app.workflows.slurm import SlurmGraphRunner

        runner = SlurmGraphRunner(args, job_prefix=f"megfmri.{label}.")
    before = set(Path(crash_dir).glob("crash-*")) if Path(crash_dir).is_dir() else set()
    wall, cpu = time.monotonic(), cpu_seconds()
    try:
        graph = workflow.run(plugin=runner, plugin_args=args)
        wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
        if progress is not None and progress.seconds:
            # how long each kind of step took, and how busy the cores were (issue 23)
            # the numbers ride along on the records for benchmarks/bench_stages.py
            LOGGER.info("Step times: %s", progress.step_times(),
                        extra={"step_seconds": dict(progress.seconds)})
            LOGGER.info("%s: %.0f s, CPU %.0f s: %.1f of %d processes busy on average",
                        label.capitalize(), wall, cpu, cpu / max(wall, 1e-9), nprocs)
        return graph
    except RuntimeError as err:
        raise_if_interrupted()  # the steps failed because the run was interrupted
        new_dir = Path(crash_dir)
        crashes = set(new_dir.glob("crash-*")) - before if new_dir.is_dir() else set()
        jobs = getattr(err, "failures", None)  # SLURM jobs that did not complete
        if jobs is not None:
            LOGGER.error("SLURM jobs that did not complete:\n%s", "\n".join(jobs))
        if not crashes and jobs is None and "did not execute cleanly" not in str(err):
            raise
        message, code = crash_summary(crashes)
        if jobs is not None and not crashes:  # killed, out of memory, time limit: no report
            message, code = "\n".join(jobs), 1
        raise WorkflowFailed(message, exit_code=code) from None
    finally:
        if progress is not None:
            progress.close()
