"""Benchmark: two tSSS steps side by side, with and without the per-step thread limit.

The participant level runs two steps at a time on two cores (MultiProc, ``--nprocs 2``). This
benchmark runs the app's tSSS interface (:class:`bids_app.interfaces.meg.MaxwellFilter`) on two
simulated runs of the small preset (342 s of 250-Hz MEG each) in two processes at once:

* the naive way: each process uses as many threads as the machine has cores, which is what
  BLAS/OpenMP do by default and what the app did before (four threads on two cores);
* the app: each step runs inside :func:`bids_app.interfaces.threads.limit_threads` with
  ``num_threads=1`` (``--omp-nthreads`` on two cores).

Prints the wall time of each pair, the largest peak memory of a process, the ratio, and how far
apart the two ways' outputs are. Simulating the two runs first (in a temporary folder) takes
about a minute.

    python benchmarks/bench_threads.py
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _maxwell(args) -> tuple[float, float, str]:
    """Run the tSSS interface on one recording; return seconds, peak RSS (GB), output."""
    in_file, out_dir, threads = args
    from bids_app.interfaces.meg import MaxwellFilter

    node = MaxwellFilter(in_file=in_file, find_bad_channels=False, num_threads=threads)
    start = time.perf_counter()
    result = node.run(cwd=out_dir)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return seconds, peak, result.outputs.out_file


def _pair(files, root: Path, threads: int) -> tuple[float, float, list[str]]:
    jobs = [(str(f), str(root / f"threads{threads}_{i}"), threads) for i, f in enumerate(files)]
    for _, folder, _ in jobs:
        Path(folder).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(2, maxtasksperchild=1) as pool:
        results = pool.map(_maxwell, jobs)
    return time.perf_counter() - start, max(r[1] for r in results), [r[2] for r in results]


def main() -> None:
    import mne

    from bids_app.cli.simulate import simulate

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench_threads_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        simulate(root / "bids", preset="small", n_subjects=1, n_runs=2, seed=0, n_jobs=2)
        files = sorted((root / "bids" / "sub-01" / "meg").glob("*_meg.fif"))
        print(f"simulated {len(files)} runs in {time.perf_counter() - start:.0f} s")
        app_s, app_gb, app_out = _pair(files, root, 1)  # first: the file cache favours naive
        naive_s, naive_gb, naive_out = _pair(files, root, os.cpu_count() or 1)
        print(f"{'two tSSS steps at once':28s} {'wall':>8s} {'peak RSS':>9s}")
        print(f"{'naive (library defaults)':28s} {naive_s:7.1f}s {naive_gb:8.2f}G")
        print(f"{'app (one thread per step)':28s} {app_s:7.1f}s {app_gb:8.2f}G")
        print(f"ratio naive / app: {naive_s / app_s:.2f}x")
        worst = 0.0
        for a, b in zip(naive_out, app_out):
            x = mne.io.read_raw_fif(a, verbose="error").get_data()
            y = mne.io.read_raw_fif(b, verbose="error").get_data()
            worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
        print(f"largest difference between the outputs: {worst:.1e} of the largest value")


if __name__ == "__main__":
    main()
