"""Run a workflow graph on SLURM, one job per step, and wait for it (``--use-plugin``
with ``plugin: SLURMGraph``).

Nipype's SLURMGraph plugin writes one Python script per step, submits them all at once with
``--dependency=afterok`` between them, and returns as soon as they are queued. The app would
then report the level as done while nothing has run, and a failed step would leave its
dependants pending forever. :class:`SlurmGraphRunner` keeps nipype's plugin (its step scripts,
its ``template``, ``sbatch_args``, per-step ``plugin_args`` and ``dont_resubmit_completed_jobs``)
and changes what happens around the submission:

* every step's job asks for what the step declares: ``--cpus-per-task`` its ``n_procs``
  (``--omp-nthreads``), ``--mem`` its memory estimate (:mod:`bids_app.workflows.resources`), at
  least :data:`MIN_JOB_MEM_GB` (a Python process with MNE loaded); options in ``sbatch_args``
  come after them, so a plugin file's ``--mem`` or ``--cpus-per-task`` wins;
* the job identifiers are kept (``sbatch --parsable``), and the run waits until every job has
  ended, logging each step as it finishes, as with the local plugins;
* steps whose results are in the work folder are not submitted again
  (``dont_resubmit_completed_jobs``, on unless the plugin file turns it off), so running the same
  command after a failure or a time limit submits only what is left;
* a job that ends in any other state than COMPLETED (a failing step, TIMEOUT, OUT_OF_MEMORY,
  CANCELLED...) makes the run fail with the step, the job, its state and exit code; the jobs
  that depended on it are cancelled (``--kill-on-invalid-dep``) instead of waiting forever;
* an interrupted run (Ctrl-C, SIGTERM) cancels its jobs that have not ended.
"""

from __future__ import annotations

import logging
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

from nipype.pipeline.plugins.slurmgraph import SLURMGraphPlugin, node_completed_status

from bids_app.errors import AppError

LOGGER = logging.getLogger("bids_app")

#: Memory (GB) a step's job asks for at least: a Python process with nipype, MNE and nibabel
#: loaded holds 0.3-0.5 GB before the step computes anything; nipype's default for a step that
#: declares nothing (0.2 GB) would get it killed where SLURM enforces memory.
MIN_JOB_MEM_GB = 1.0
#: Job states after which a job no longer runs (``squeue --states=all``).
FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT",
})


class SlurmJobsFailed(RuntimeError):
    """Jobs of the graph did not complete; ``failures`` has one line per job."""

    def __init__(self, failures: list[str]):
        super().__init__("Workflow did not execute cleanly on SLURM")
        self.failures = failures


class SlurmSubmitError(AppError):
    """``sbatch`` refused a job (the message says which step and why); exit code 1."""


def job_sbatch_options(node) -> list[str]:
    """What a step's job asks for: its cores (``n_procs``) and memory (``mem_gb``, at least
    :data:`MIN_JOB_MEM_GB`), as ``sbatch`` options."""
    mem_mb = math.ceil(max(float(node.mem_gb), MIN_JOB_MEM_GB) * 1024)
    return [f"--cpus-per-task={max(int(node.n_procs), 1)}", f"--mem={mem_mb}M"]


def participant_mem_gb(workflow, *, nprocs: int, omp_nthreads: int) -> dict[str, float]:
    """Memory (GB) each participant of a participant-level ``workflow`` needs when run alone
    with ``nprocs`` processes: the sum of the declared ``mem_gb`` of as many of its largest
    steps as can run side by side (``nprocs // omp_nthreads``, as MultiProc reserves
    ``omp_nthreads`` cores per heavy step), for one array task per participant.

    Returns
    -------
    memory : dict
        ``{participant label: GB}``, in the order of the graph's subjects.
    """
    side_by_side = max(nprocs // max(omp_nthreads, 1), 1)
    steps: dict[str, list[float]] = {}
    for node in workflow._create_flat_graph().nodes():
        part = node.fullname.split(".")[1]  # <participant wf>.sub_<label>_wf.<...>.<step>
        label = part.removeprefix("sub_").removesuffix("_wf")
        steps.setdefault(label, []).append(float(node.mem_gb))
    return {label: sum(sorted(mems, reverse=True)[:side_by_side])
            for label, mems in steps.items()}


class SlurmGraphRunner(SLURMGraphPlugin):
    """Nipype's SLURMGraph plugin that sizes each job from its step and waits for the jobs.

    Parameters
    ----------
    plugin_args : dict
        Nipype's SLURMGraph arguments (``sbatch_args``, ``template``,
        ``dont_resubmit_completed_jobs``).
    job_prefix : str
        Start of every job's name (``squeue`` shows ``<prefix><step>``).
    poll_s : float
        Seconds between two looks at the queue.
    status_callback : callable, optional
        Called as ``callback(node, "end" | "exception")`` when a step's job ends.
    """

    def __init__(self, plugin_args: dict | None = None, *, job_prefix: str = "megfmri.",
                 poll_s: float = 2.0, status_callback=None):
        plugin_args = dict(plugin_args or {})
        super().__init__(plugin_args=plugin_args)
        # nipype sets it only when plugin_args is not empty
        self._dont_resubmit_completed_jobs = bool(
            plugin_args.get("dont_resubmit_completed_jobs", True))
        self._job_prefix = job_prefix
        self._poll_s = poll_s
        self._callback = status_callback
        self.jobs: dict[str, object] = {}  # job id -> node, in submission order

    # -- submission ------------------------------------------------------------------------------
    def _submit_graph(self, pyfiles, dependencies, nodes):
        skip = self._completed(nodes, dependencies)
        job_ids: dict[int, str] = {}
        try:
            for idx, pyscript in enumerate(pyfiles):
                if skip[idx]:
                    continue
                after = [job_ids[dep] for dep in dependencies.get(idx, []) if dep in job_ids]
                job_ids[idx] = self._submit(nodes[idx], Path(pyscript), after)
                self.jobs[job_ids[idx]] = nodes[idx]
        except BaseException:
            self.cancel()
            raise
        LOGGER.info("Submitted %d SLURM job(s), one per step (%d step(s) already done)",
                    len(job_ids), sum(skip))

    def _completed(self, nodes, dependencies) -> list[bool]:
        """Steps not to submit (``dont_resubmit_completed_jobs``): finished, as is every step
        they depend on. Nodes come in topological order, so dependencies are decided first."""
        done = [False] * len(nodes)
        if not self._dont_resubmit_completed_jobs:
            return done
        for idx, node in enumerate(nodes):
            done[idx] = node_completed_status(node) and all(
                done[dep] for dep in dependencies.get(idx, []))
        return done

    def _submit(self, node, pyscript: Path, after: list[str]) -> str:
        template, sbatch_args = self._get_args(node, ["template", "sbatch_args"])
        name = pyscript.stem.removeprefix("pyscript_")
        script = pyscript.with_name(f"batchscript_{name}.sh")
        script.write_text(f"{template.rstrip()}\n{shlex.quote(sys.executable)} "
                          f"{shlex.quote(str(pyscript))}\n")
        job_name = self._job_prefix + node.fullname.split(".", 1)[-1]
        command = ["sbatch", "--parsable", f"--job-name={job_name}",
                   f"--output={script}.%j.out", "--kill-on-invalid-dep=yes",
                   *job_sbatch_options(node), *shlex.split(sbatch_args or "")]
        if after:
            command.append("--dependency=afterok:" + ":".join(after))
        command.append(str(script))
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SlurmSubmitError(
                f"sbatch refused the job of the step {node.fullname} (exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}\n  command: {shlex.join(command)}")
        job_id = proc.stdout.strip().split(";")[0]
        LOGGER.debug("Step %s: job %s", node.fullname, job_id)
        return job_id

    # -- waiting -------------------------------------------------------------------------------
    def run(self, graph, config, updatehash=False):
        """Submit the graph (nipype writes the step scripts), then wait for every job."""
        super().run(graph, config, updatehash=updatehash)
        try:
            self.wait()
        except BaseException:  # interrupted: the jobs must not go on without the run
            self.cancel()
            raise

    def wait(self) -> None:
        """Wait until every job has ended; log each step; raise :class:`SlurmJobsFailed`."""
        pending = dict(self.jobs)
        failures: list[str] = []
        done = 0
        while pending:
            states = queue_states(list(pending))
            for job_id, node in list(pending.items()):
                state, reason = states.get(job_id, ("", ""))
                if state == "PENDING" and reason == "DependencyNeverSatisfied":
                    # --kill-on-invalid-dep cancels it; a cluster that ignores it would not
                    _scancel([job_id])
                    state = "CANCELLED"
                if state and state not in FINAL_STATES:
                    continue
                if not state:  # purged from the controller's memory: decide from the step
                    state = "COMPLETED" if _has_result(node) else "UNKNOWN"
                del pending[job_id]
                done += 1
                if state == "COMPLETED":
                    LOGGER.info("[%d/%d] %s done (job %s)", done, len(self.jobs),
                                node.fullname, job_id)
                    if self._callback:
                        self._callback(node, "end")
                    continue
                code = job_exit_code(job_id)
                if state == "CANCELLED" and reason == "DependencyNeverSatisfied" or (
                        state == "CANCELLED" and code in ("", "0:0")):
                    line = f"{node.fullname}: not run (job {job_id} cancelled: a step it " \
                           "depends on failed)"
                else:
                    line = (f"{node.fullname}: job {job_id} ended {state}"
                            + (f", exit code {code}" if code else "")
                            + f"; its output: {_job_output(node, job_id)}")
                failures.append(line)
                LOGGER.info("[%d/%d] %s failed (job %s, %s)", done, len(self.jobs),
                            node.fullname, job_id, state)
                if self._callback:
                    self._callback(node, "exception")
            if pending:
                time.sleep(self._poll_s)
        if failures:
            raise SlurmJobsFailed(failures)

    def cancel(self) -> None:
        """Cancel every job of this run (those that have ended are not affected)."""
        if self.jobs:
            _scancel(list(self.jobs))


def queue_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` of the jobs the controller still knows."""
    if not job_ids:
        return {}
    proc = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%r",
                           "--jobs=" + ",".join(job_ids)], capture_output=True, text=True)
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    if proc.returncode != 0 and not states:  # a transient error: ask again later
        return {job_id: ("UNREACHABLE", "") for job_id in job_ids}
    return states


def job_exit_code(job_id: str) -> str:
    """The ``ExitCode`` SLURM records for a job (``code:signal``), '' when unknown."""
    proc = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id],
                          capture_output=True, text=True)
    for field in proc.stdout.split():
        if field.startswith("ExitCode="):
            return field.split("=", 1)[1]
    return ""


def _scancel(job_ids: list[str]) -> None:
    subprocess.run(["scancel", *job_ids], capture_output=True, text=True)


def _has_result(node) -> bool:
    try:
        return (Path(node.output_dir()) / f"result_{node.name}.pklz").is_file()
    except Exception:  # noqa: BLE001 - a node that cannot say where it ran has no result
        return False


def _job_output(node, job_id: str) -> str:
    batch = Path(node.base_dir) / node._hierarchy.split(".")[0] / "batch"
    found = sorted(batch.glob(f"batchscript_*.sh.{job_id}.out"))
    return str(found[0]) if found else f"(no output file for job {job_id} in {batch})"


def sbatch_available() -> bool:
    """Whether SLURM's ``sbatch``, ``squeue`` and ``scontrol`` (what the runner calls) are on
    ``PATH``."""
    from shutil import which

    return all(which(name) is not None for name in ("sbatch", "squeue", "scontrol"))


__all__ = ["MIN_JOB_MEM_GB", "SlurmGraphRunner", "SlurmJobsFailed", "SlurmSubmitError",
           "job_sbatch_options", "participant_mem_gb", "queue_states", "job_exit_code",
           "sbatch_available"]
