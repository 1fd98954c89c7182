"""Benchmark: the demo's stages, each next to the figure recorded in the docs (issue 23).

Runs what ``megfmri-fusion-demo`` runs — simulation of the small preset (8 subjects x 2 runs),
participant level with ``--nprocs 2``, group level — in a temporary folder, and prints:

1. the wall and CPU time of each stage and how many of the 2 cores were busy on average;
2. the time of each kind of participant step, summed over runs and subjects (as the
   participant level's log line "Step times" gives it);
3. next to each, the figure recorded in ``docs/performance.md`` (the table between the
   ``bench_stages`` markers) and the ratio now / recorded, flagged when it is above 1.2, so a
   regression shows;
4. unless ``--no-baseline``: the participant level again, from an empty work folder, with
   nipype's default scheduling (the scheduler looks for finished steps every 2 s instead of the
   app's :data:`bids_app.workflows.execution.POLL_SLEEP_S`), and the ratio of the two;
5. the issue's targets (simulation <= 60 s, <= 10 min including the install, >= 1.8 of 2 cores
   busy at the participant level) and whether they are met.

The largest resident memory of a process (this one or a worker) is printed at the end. Timings on
a shared machine vary: the load average at the start and at the end is printed too. Takes about
7 minutes, 13 with the baseline. Run from the repository root::

    python benchmarks/bench_stages.py [--n-subjects 8] [--no-baseline] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
#: nipype's own default for ``[execution] poll_sleep_duration`` (s), the baseline's setting.
NIPYPE_POLL_S = 2.0
#: Above this ratio to the recorded figure a line is flagged.
SLOWER = 1.2


class _Numbers(logging.Handler):
    """Keeps the numbers the app attaches to its timing log records."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.stages: list[tuple[str, float, float]] = []
        self.steps: list[dict[str, list[float]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "stage_seconds"):
            self.stages = list(record.stage_seconds)
        if hasattr(record, "step_seconds"):
            self.steps.append(record.step_seconds)


def recorded_figures(path: Path = RECORDED) -> dict[str, float]:
    """The ``| name | seconds |`` rows between ``<!-- bench_stages -->`` and
    ``<!-- /bench_stages -->`` in ``path`` (an empty dict when the file or table is missing)."""
    if not path.is_file():
        return {}
    text = path.read_text()
    match = re.search(r"<!-- bench_stages -->(.*?)<!-- /bench_stages -->", text, re.S)
    figures = {}
    for line in (match.group(1) if match else "").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2:
            try:
                figures[cells[0]] = float(cells[1].replace(",", ""))
            except ValueError:
                continue  # the header and the separator
    return figures


def _line(name: str, now: float, recorded: dict[str, float], extra: str = "") -> str:
    then = recorded.get(name)
    if then is None:
        return f"  {name:<28} {now:8.0f} s {'(none recorded)':>22} {extra}"
    ratio = now / then if then else float("nan")
    flag = "  <- slower" if ratio > SLOWER else ""
    return f"  {name:<28} {now:8.0f} s {then:10.0f} s   x{ratio:5.2f}{flag} {extra}"


def _peak_gb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=None,
                        help="subjects to simulate (default: the demo's 8)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the participant level with nipype's default scheduling")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep it (default: a temporary folder, removed)")
    args = parser.parse_args()

    from bids_app.cli.logs import setup_console_logging
    from bids_app.cli.run import run
    from bids_app.cli.simulate import demo_level_argv, run_demo
    from bids_app.workflows import execution
    from bids_app.workflows.execution import cpu_seconds

    setup_console_logging()
    numbers = _Numbers()
    logging.getLogger("bids_app").addHandler(numbers)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_stages_"))
    load_start = os.getloadavg()
    try:
        code = run_demo(root / "demo", n_subjects=args.n_subjects, nprocs=2)
        if code:
            raise SystemExit(f"the demo stopped with exit code {code}")
        stages, participant_steps = numbers.stages, numbers.steps[0]
        baseline = None
        if not args.no_baseline:
            demo = root / "demo"
            saved, execution.POLL_SLEEP_S = execution.POLL_SLEEP_S, NIPYPE_POLL_S
            wall, cpu = time.monotonic(), cpu_seconds()
            try:
                code = run(demo_level_argv(demo / "bids", root / "baseline" / "derivatives",
                                           "participant", work=root / "baseline" / "work",
                                           config=demo / "demo_config.toml", nprocs=2))
            finally:
                execution.POLL_SLEEP_S = saved
            baseline = (time.monotonic() - wall, cpu_seconds() - cpu)
            if code:
                raise SystemExit(f"the baseline participant level stopped with exit code {code}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    load_end = os.getloadavg()

    recorded = recorded_figures()
    print(f"\nLoad average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}; "
          f"{os.cpu_count()} cores. Recorded figures: {RECORDED.name}")
    print(f"  {'stage':<28} {'now':>10} {'recorded':>12}   now/recorded")
    for stage, wall_s, cpu_s in stages:
        print(_line(stage, wall_s, recorded,
                    f"(CPU {cpu_s:.0f} s, {cpu_s / max(wall_s, 1e-9):.2f} cores busy)"))
    print("  participant steps, summed over runs and subjects:")
    for step, times in sorted(participant_steps.items(), key=lambda item: -sum(item[1])):
        if sum(times) >= 1:
            print(_line(f"step {step}", sum(times), recorded, f"({len(times)} x)"))

    by_stage = {stage: (wall_s, cpu_s) for stage, wall_s, cpu_s in stages}
    part_wall, part_cpu = by_stage["participant level"]
    if baseline is not None:
        print(f"\nParticipant level with nipype's default {NIPYPE_POLL_S:g}-s scheduling: "
              f"{baseline[0]:.0f} s (CPU {baseline[1]:.0f} s, "
              f"{baseline[1] / baseline[0]:.2f} cores busy); the app's "
              f"{execution.POLL_SLEEP_S:g} s: {part_wall:.0f} s; ratio {baseline[0] / part_wall:.2f}")
    total = sum(wall_s for wall_s, _cpu in by_stage.values())
    install = recorded.get("install", float("nan"))
    busy = part_cpu / part_wall
    sim = by_stage.get("simulation", (float("nan"), 0))[0]
    print("\nTargets of issue 23:")
    print(f"  simulation {sim:.0f} s (<= 60 s: {'met' if sim <= 60 else 'NOT met'})")
    print(f"  demo {total:.0f} s + install {install:.0f} s (recorded) = {total + install:.0f} s "
          f"(<= 600 s: {'met' if total + install <= 600 else 'NOT met'})")
    print(f"  participant level {busy:.2f} of 2 cores busy "
          f"(>= 1.8: {'met' if busy >= 1.8 else 'NOT met'})")
    print(f"Largest resident memory of a process: {_peak_gb():.2f} GB")


if __name__ == "__main__":
    main()
