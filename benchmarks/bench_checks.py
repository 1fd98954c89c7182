"""Benchmark: the checks every participant run makes before any work (issue 19).

Simulates one subject of the paper preset (one run: 801 s of 600-Hz MEG, a 297-MB FIF file;
267 BOLD volumes, an 80-MB ``.nii.gz``; about a minute), or uses ``--bids`` when given, then
times, each three times (the first with the files possibly out of the page cache):

* discovery (:func:`bids_app.io.bids.discover`: pybids index, pairing, file-name checks);
* every header-level check of :func:`bids_app.io.checks.check_plan` (FIF tag chain, MNE
  measurement info, NIfTI header and gzip trailer, repetition time, events against the
  recordings, sampling rate against the bands);
* the two integrity checks alone, and the full read of the gzip stream that is made only when a
  ``.nii.gz`` trailer disagrees with its header (a truncated file, or several gzip members).

    python benchmarks/bench_checks.py [--bids DATASET]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=Path, help="an existing dataset (default: simulate)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        bids = args.bids
        if bids is None:
            from bids_app.cli.simulate import simulate

            bids = simulate(Path(tmp) / "bids", preset="paper", n_subjects=1, n_runs=1,
                            n_jobs=1)
        run(bids)


def run(bids: Path) -> None:
    import nibabel as nib
    import numpy as np

    from bids_app.cli.participant import check_options
    from bids_app.cli.run import build_config
    from bids_app.io.bids import discover
    from bids_app.io.checks import check_plan
    from bids_app.io.integrity import _gzip_problem, fif_problem, nifti_problem

    config = build_config([str(bids), str(Path(bids).parent / "out"), "participant"])
    plan = discover(bids)
    pair = plan.subjects[0].pairs[0]
    img = nib.load(pair.bold)
    proxy = img.dataobj
    expected = int(proxy.offset) + int(np.prod(proxy.shape)) * np.dtype(proxy.dtype).itemsize
    print(f"MEG {pair.meg.name}: {pair.meg.stat().st_size / 1e6:.0f} MB; "
          f"BOLD {pair.bold.name}: {pair.bold.stat().st_size / 1e6:.0f} MB, {img.shape}")
    for attempt in range(3):
        times = {
            "discover": _timed(discover, bids),
            "check_plan (all files)": _timed(check_plan, plan, check_options(config)),
            "FIF tag chain": _timed(fif_problem, pair.meg),
            "NIfTI size and gzip trailer": _timed(nifti_problem, pair.bold, img),
            "gzip stream (only when the trailer disagrees)":
                _timed(_gzip_problem, pair.bold, expected, proxy.shape, "data"),
        }
        print(f"attempt {attempt + 1}: " + "; ".join(f"{k} {v:.3f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
