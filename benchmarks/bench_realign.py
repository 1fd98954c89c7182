"""Benchmark: realignment of the simulator's BOLD runs, ANTs (before issue 23) against SimpleITK.

Simulates a few runs of the small preset (109 kept volumes of 56 x 66 x 48, 3 mm, the
simulator's random-walk head motion, noise and block signal; ``bids_app.simulate.fmri``), then
realigns each run in this process two ways, alternating so that both see the same machine load:

* **old**: ANTs' ``BOLDRigid`` preset, every volume from the identity (centre-of-mass start),
  mean squares on 10 % random samples, cubic B-spline resampling (``realign`` before issue 23);
* **new**: :func:`bids_app.fmri.realign.realign_array` (SimpleITK, see its module docstring).

For each it prints the time per volume (wall and CPU time: on a shared machine the CPU time is
the steadier figure), the peak extra resident memory during the call (sampled every 5 ms), and
the largest error of the six motion parameters against the simulated motion (expressed, as
``realign`` does, relative to the first kept volume about the field-of-view centre), then the
ratios of the times and whether the targets of issue 23 are met (0.1 s of CPU
per volume with one thread; 0.05 mm and 0.05 degree). Timings on a shared machine vary: compare
the ratios.

    python benchmarks/bench_realign.py [--runs 3] [--volumes N] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bids_app.fmri.realign import field_of_view_center, motion_parameters, realign_array
from bids_app.interfaces.threads import limit_threads
from bids_app.simulate import fmri as sim_fmri
from bids_app.simulate.design import make_design, run_events

TARGET_S_PER_VOLUME = 0.1
TARGET_MM, TARGET_DEG = 0.05, 0.05


def simulated_runs(n_runs: int, work: Path):
    """(data, affine, truth) of ``n_runs`` runs without their dummy volumes.

    ``truth`` (n_volumes, 6): mm and rad, reference = first kept volume, as ``realign`` reports.
    """
    from bids_app.simulate.anatomy import prepare_template_anatomy

    anatomy = prepare_template_anatomy(work, atlas="fallback")
    base, gm = sim_fmri.epi_templates(anatomy.white, anatomy.pial, anatomy.inner_skull)
    parcel = sim_fmri.voxel_parcels(anatomy.mid_rr, anatomy.vertex_parcel, gm)
    design = make_design("small")
    affine = sim_fmri.bold_affine()
    center = field_of_view_center(affine, sim_fmri.BOLD_SHAPE)
    dummies = design.dummy_volumes
    for seed in range(n_runs):
        rng = np.random.default_rng(seed)
        events = run_events(design, rng)
        regressors, _ = sim_fmri.block_regressors(events, design.n_volumes, design.tr_s)
        amplitudes = 1.0 + 0.6 * rng.standard_normal((len(anatomy.parcel_names),
                                                      regressors.shape[1]))
        motion = sim_fmri.random_motion(design.n_volumes, rng)
        img = sim_fmri.synth_bold(base, parcel, amplitudes, regressors, tr=design.tr_s,
                                  rng=rng, motion=motion)
        data = np.asarray(img.dataobj, dtype=np.float32)[..., dummies:]
        worlds = np.stack([sim_fmri.motion_world(row) for row in motion[dummies:]])
        relative = worlds @ np.linalg.inv(worlds[0])
        yield data, affine, motion_parameters(relative, center)


def realign_ants(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``realign_array`` as it was before issue 23 (ANTs' BOLDRigid, volume by volume)."""
    from bids_app.fmri import _ants

    realigned = np.empty(data.shape, dtype=np.float32)
    realigned[..., 0] = data[..., 0]
    transforms = np.tile(np.eye(4), (data.shape[3], 1, 1))
    fixed = _ants.to_ants(data[..., 0], affine)
    with _ants.ants_random_seed(1):
        for k in range(1, data.shape[3]):
            moving = _ants.to_ants(data[..., k], affine)
            transforms[k], realigned[..., k] = _ants.register_rigid(
                fixed, moving, interpolator="bSpline", type_of_transform="BOLDRigid",
                aff_metric="meansquares", aff_random_sampling_rate=0.1,
            )
    return realigned, transforms


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def measured(func, *args):
    """(result, wall seconds, CPU seconds, peak extra resident memory in GB) of ``func(*args)``.

    The CPU time of the process (all its threads) is what the work costs whatever else runs on
    the machine; with one thread it is the wall time of an idle machine.
    """
    start_rss, peak, done = _rss_bytes(), [0], threading.Event()

    def watch():
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss_bytes() - start_rss)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = func(*args)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    done.set()
    watcher.join()
    return result, seconds, cpu, peak[0] / 1024**3


def errors(transforms, affine, shape, truth) -> tuple[float, float]:
    """Largest translation (mm) and rotation (degrees) error against the simulated motion."""
    motion = motion_parameters(transforms, field_of_view_center(affine, shape))
    return (float(np.abs(motion[:, :3] - truth[:, :3]).max()),
            float(np.degrees(np.abs(motion[:, 3:] - truth[:, 3:]).max())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--volumes", type=int, default=None,
                        help="realign only the first N kept volumes of each run")
    parser.add_argument("--threads", type=int, default=1, help="ITK/BLAS threads (default 1)")
    args = parser.parse_args()
    methods = {"old (ANTs BOLDRigid)": realign_ants, "new (SimpleITK)": realign_array}
    for library in ("ants", "SimpleITK"):  # loaded before the timings: not part of either
        importlib.import_module(library)
    totals = {name: np.zeros(6) for name in methods}  # wall s, CPU s, volumes, GB, mm, deg
    with tempfile.TemporaryDirectory() as tmp, limit_threads(args.threads):
        for run, (data, affine, truth) in enumerate(simulated_runs(args.runs, Path(tmp))):
            if args.volumes:
                data, truth = data[..., : args.volumes], truth[: args.volumes]
            print(f"run {run + 1}: {data.shape[3]} volumes of {data.shape[:3]}; motion up to "
                  f"{np.abs(truth[:, :3]).max():.2f} mm, "
                  f"{np.degrees(np.abs(truth[:, 3:]).max()):.2f} deg", flush=True)
            for name, func in methods.items():
                (_, transforms), seconds, cpu, gb = measured(func, data, affine)
                mm, deg = errors(transforms, affine, data.shape, truth)
                _report(name, seconds, cpu, data.shape[3] - 1, gb, mm, deg)
                total = totals[name]
                total[:3] += seconds, cpu, data.shape[3] - 1
                total[3:] = np.maximum(total[3:], (gb, mm, deg))
    print(f"all runs, {args.threads} thread(s):")
    for name, total in totals.items():
        _report(name, *total)
    (old_s, old_cpu, old_n, *_), (new_s, new_cpu, new_n, _, new_mm, new_deg) = totals.values()
    print(f"ratio old / new: wall {(old_s / old_n) / (new_s / new_n):.1f}, "
          f"CPU {(old_cpu / old_n) / (new_cpu / new_n):.1f}")
    fast = new_cpu / new_n <= TARGET_S_PER_VOLUME
    accurate = new_mm <= TARGET_MM and new_deg <= TARGET_DEG
    print(f"targets: CPU {new_cpu / new_n:.3f} <= {TARGET_S_PER_VOLUME} s/volume: {fast}; "
          f"{new_mm:.4f} <= {TARGET_MM} mm and {new_deg:.4f} <= {TARGET_DEG} deg: {accurate}")


def _report(name, seconds, cpu, volumes, gb, mm, deg) -> None:
    print(f"  {name:22s} {seconds / volumes:6.3f} s/volume wall, {cpu / volumes:6.3f} CPU, "
          f"peak +{gb:.2f} GB, max error {mm:.4f} mm / {deg:.4f} deg", flush=True)


if __name__ == "__main__":
    main()
