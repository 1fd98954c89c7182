"""A resume that really resumes (issue 22): the same participant command run again, without
``--random-seed``, and then with other ``--omp-nthreads`` and ``--nprocs``, executes no step
and leaves every output byte for byte as it was.

Both failed before: each run drew a new seed, an input of the realignment, coregistration and
template registration (so everything after them ran again, with other numbers), and the thread
counts were inputs of the forward model, the DICS power and recon-all. One simulated subject
with one run of the small preset, the smallest study with every step: the first run executes
21 steps (3 min 2 s on 2 cores), the two reruns none (27 s and 24 s); 4 min 18 s in all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skeleton import fingerprint

pytestmark = pytest.mark.slow

#: nipype's lines for a step it runs (``[Node] Executing "realign" <...>`` from the step,
#: ``[Job 3] Completed (<workflow>.realign).`` from MultiProc) and for one that MultiProc finds
#: finished in the work folder (``[Job 3] Cached (<workflow>.realign).``).
EXECUTING = re.compile(r'\[Node\] Executing "([^"]+)"')
COMPLETED = re.compile(r"\[Job \d+\] Completed \(([^)]+)\)")
CACHED = re.compile(r"\[Job \d+\] Cached \(([^)]+)\)")


def _run(args, log: Path) -> float:
    """Run the app as a command; return its duration (s). Fails with the log's end."""
    start = time.monotonic()
    with log.open("w") as handle:
        code = subprocess.run([sys.executable, "-m", "bids_app", *map(str, args)],
                              stdout=handle, stderr=subprocess.STDOUT, timeout=1800).returncode
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return time.monotonic() - start


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of the output folder except ``logs/``: it holds each run's log, saved
    configuration and crash files, named and stamped by the run id (the methods text and the
    seed file there are compared on their own). The HTML report, the tables, images and
    sidecars are all compared."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] != "logs"}


def test_the_same_command_resumes_without_recomputing(tmp_path):
    from bids_app.cli.seed import SEED_FILE, read_seed
    from bids_app.cli.simulate import DEMO_CONFIG, simulate

    bids = simulate(tmp_path / "bids", preset="small", n_subjects=1, n_runs=1, seed=4, n_jobs=2)
    before = fingerprint(bids)
    config = tmp_path / "config.toml"
    config.write_text(DEMO_CONFIG)
    out, work = tmp_path / "out", tmp_path / "work"
    command = [bids, out, "participant", "-w", work, "--config", config,
               "--skip-bids-validation"]
    runs = [("first", ["--nprocs", "2", "--omp-nthreads", "1"]),
            ("same", ["--nprocs", "2", "--omp-nthreads", "1"]),
            ("threads", ["--nprocs", "3", "--omp-nthreads", "2", "--mem-gb", "16"])]
    executed, cached, seconds, outputs, citation = {}, {}, {}, {}, {}
    for name, options in runs:
        log = tmp_path / f"{name}.log"
        seconds[name] = _run([*command, *options], log)
        text = log.read_text()
        executed[name] = EXECUTING.findall(text) + COMPLETED.findall(text)
        cached[name] = CACHED.findall(text)
        outputs[name] = _outputs(out)
        citation[name] = (out / "logs" / "CITATION.md").read_bytes()
        if name == "first":
            seed = read_seed(out / SEED_FILE)
            assert f"Random seed {seed} (drawn for this output folder, saved in" in text
        else:
            assert f"Random seed {seed} (from {out / SEED_FILE})" in text
    print("steps executed, cached, seconds:", {
        name: (len(COMPLETED.findall((tmp_path / f"{name}.log").read_text())),
               len(cached[name]), round(seconds[name])) for name, _ in runs})

    first_steps = COMPLETED.findall((tmp_path / "first.log").read_text())
    assert {"realign", "coregister", "maxwell_filter", "band_power"} <= {
        step.rsplit(".", 1)[-1] for step in first_steps}
    for name in ("same", "threads"):
        assert executed[name] == [], f"{name}: steps run again: {executed[name]}"
        assert sorted(cached[name]) == sorted(first_steps)  # every step found finished
        assert sorted(outputs[name]) == sorted(outputs["first"])
        differ = [path for path in outputs["first"]
                  if outputs[name][path] != outputs["first"][path]]
        assert differ == [], f"{name}: outputs differ from the first run's: {differ}"
        assert citation[name] == citation["first"]
    assert read_seed(out / SEED_FILE) == seed
    assert fingerprint(bids) == before  # the input dataset is never written
