"""Benchmark: the simulator's BOLD run (issue 3), and optionally the whole small preset.

A BOLD run of the small preset (114 volumes of 56 x 66 x 48 voxels, 6 blocks) on the template's
real baseline EPI and cortical ribbon, with the simulator's random head motion:

* the app (:func:`bids_app.simulate.fmri.synth_bold`): quadratic B-splines; the spline
  prefilter is linear, so the baseline and the 6 block maps are prefiltered once and every
  moved volume is a weighted sum of their coefficients, evaluated inside the head only;
* the naive way, which the simulator used before: build each volume, then move it with
  ``scipy.ndimage.affine_transform`` (cubic splines, prefiltered per volume).

Both without noise. Prints time, peak memory (resident set), the ratio, and how far the app's
volumes are from the naive ones inside the head (SD and largest difference; the noise SD is 4.8,
the block signal about 8 intensity units).

Then the two other per-run steps this benchmark tracks:

* writing the BOLD run: :func:`bids_app.io.derivatives.save_nifti_gz` (ISA-L gzip) against
  ``nibabel.save`` (zlib), same bytes once decompressed;
* projecting one MEG run's sources (the small preset's sizes: 13 planted parcels sharing one
  course each and 150 background points, 250 Hz) through the fixed-orientation gain:
  :func:`bids_app.simulate.meg.project` against :func:`mne.apply_forward_raw` of the dense
  source estimate (the simulator's previous way; a sphere model stands in for the BEM, which
  does not change the cost). Peak memory of these two is the largest traced allocation.

With ``--full``, also simulates the whole small preset (8 subjects x 2 runs, all CPUs) in a
temporary folder and prints its wall time and the peak memory of the largest process.

    python benchmarks/bench_simulate.py [--full]
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bids_app.simulate import fmri as sim_fmri
from bids_app.simulate.design import make_design, run_events


def peak_rss_gb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2


def bold_inputs(work: Path):
    """Baseline, parcel of each voxel, amplitudes, regressors and motion of one small run."""
    from bids_app.simulate.anatomy import prepare_template_anatomy

    anatomy = prepare_template_anatomy(work, atlas="fallback")
    base, gm = sim_fmri.epi_templates(anatomy.white, anatomy.pial, anatomy.inner_skull)
    parcel = sim_fmri.voxel_parcels(anatomy.mid_rr, anatomy.vertex_parcel, gm)
    design = make_design("small")
    rng = np.random.default_rng(0)
    events = run_events(design, rng)
    regressors, _ = sim_fmri.block_regressors(events, design.n_volumes, design.tr_s)
    amplitudes = 1.0 + 0.6 * rng.standard_normal((len(anatomy.parcel_names), regressors.shape[1]))
    motion = sim_fmri.random_motion(design.n_volumes, rng)
    return base, parcel, amplitudes, regressors, motion, design.tr_s


def naive_bold(base, parcel, amplitudes, regressors, motion, tr) -> np.ndarray:
    """Every volume built in full and moved by ``affine_transform``, cubic (no noise)."""
    inside = parcel >= 0
    drift = sim_fmri.slow_drift(len(regressors), tr)
    out = np.empty(base.shape + (len(regressors),), np.float32)
    for k in range(len(regressors)):
        signal = np.zeros(base.shape)
        signal[inside] = amplitudes[parcel[inside]] @ regressors[k] / 100.0
        out[..., k] = sim_fmri._move(base * (1.0 + signal + drift[k]), motion[k], order=3)
    return np.clip(out, 0, None)


def timed(func, *args):
    """(result, seconds, peak traced memory in GB) of ``func(*args)``."""
    tracemalloc.start()
    start = time.perf_counter()
    result = func(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1024**3
    tracemalloc.stop()
    return result, seconds, peak


def bench_write(img, work: Path) -> None:
    """The BOLD run written with ISA-L gzip against nibabel's zlib."""
    import gzip

    import nibabel as nib

    from bids_app.io.derivatives import save_nifti_gz

    ours = work / "isal_bold.nii.gz"
    theirs = work / "nibabel_bold.nii.gz"
    _, app_s, app_gb = timed(save_nifti_gz, img, ours)
    _, naive_s, naive_gb = timed(nib.save, img, theirs)
    same = gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs.read_bytes())
    print(f"write BOLD run: app {app_s:.2f} s ({ours.stat().st_size / 1e6:.1f} MB, peak "
          f"{app_gb:.2f} GB), nibabel {naive_s:.2f} s ({theirs.stat().st_size / 1e6:.1f} MB, "
          f"peak {naive_gb:.2f} GB), ratio {naive_s / app_s:.1f}x, same content: {same}")


def bench_projection(work: Path) -> None:
    """One MEG run's sources projected compactly against apply_forward_raw of the dense stc."""
    import mne

    from bids_app.simulate import meg as sim_meg
    from bids_app.simulate.anatomy import prepare_template_anatomy

    anatomy = prepare_template_anatomy(work / "meg", atlas="fallback")
    design = make_design("small")
    head = sim_meg.template_head()
    info = sim_meg.finish_info(sim_meg.vectorview_like_info(design.meg_sfreq, head), head, 0.0)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=None)
    forward = mne.make_forward_solution(info, head["head_mri_t"], anatomy.src, sphere,
                                        meg=True, eeg=False, verbose="error")
    gain = sim_meg.fixed_gain(forward, anatomy.src)
    rng = np.random.default_rng(0)
    n_samples = int(round(design.run_duration_s * design.meg_sfreq))
    n_points = gain.matrix.shape[1]
    groups = [np.flatnonzero(anatomy.point_parcel == k) for k in range(13)]
    taken = np.concatenate(groups)
    background = rng.choice(np.setdiff1d(np.arange(n_points), taken), 150, replace=False)
    groups += [np.array([p]) for p in background]
    sources = sim_meg.RunSources(groups=groups, sfreq=design.meg_sfreq,
                                 courses=rng.standard_normal((len(groups), n_samples)) * 1e-8)
    fixed = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True,
                                         use_cps=True, verbose="error")

    def naive():
        return mne.apply_forward_raw(fixed, sources.to_stc(anatomy.src), info,
                                     verbose="error").get_data()

    ours, app_s, app_gb = timed(sim_meg.project, sources, gain)
    theirs, naive_s, naive_gb = timed(naive)
    error = np.abs(ours - theirs).max() / np.abs(theirs).max()
    print(f"project MEG run ({len(taken)} planted points in 13 parcels + 150 background, "
          f"{n_samples} samples): app {app_s:.2f} s (peak {app_gb:.2f} GB), "
          f"apply_forward_raw {naive_s:.2f} s (peak {naive_gb:.2f} GB), "
          f"ratio {naive_s / app_s:.1f}x, largest difference {error:.1e} of the largest value")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="also simulate the whole small preset (about 2 minutes)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = bold_inputs(Path(tmp))
        print(f"BOLD run: {inputs[3].shape[0]} volumes of {inputs[0].shape}, "
              f"{inputs[3].shape[1]} blocks, motion up to "
              f"{np.abs(inputs[4][:, :3]).max():.2f} mm / {np.abs(inputs[4][:, 3:]).max():.2f} deg")
        start = time.perf_counter()
        img = sim_fmri.synth_bold(*inputs[:4], tr=inputs[5], motion=inputs[4],
                                  rng=np.random.default_rng(1), noise_percent=0.0)
        app_s = time.perf_counter() - start
        app_gb = peak_rss_gb()
        start = time.perf_counter()
        naive = naive_bold(*inputs)
        naive_s = time.perf_counter() - start
        diff = (np.asarray(img.dataobj, dtype=np.float32) - naive)[
            sim_fmri.head_support(inputs[0])]
        print(f"app:   {app_s:6.1f} s   (peak resident memory {app_gb:.2f} GB)")
        print(f"naive: {naive_s:6.1f} s   ratio {naive_s / app_s:.1f}x")
        print(f"app - naive inside the head: SD {diff.std():.2f}, largest {np.abs(diff).max():.2f} "
              "(noise SD 4.8, grey matter 800)")
        bench_write(img, Path(tmp))
        bench_projection(Path(tmp))
    if args.full:
        from bids_app.cli.simulate import simulate

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            simulate(Path(tmp) / "bids", preset="small")
            peak = max(peak_rss_gb(), peak_rss_gb(resource.RUSAGE_CHILDREN))
            print(f"small preset (8 subjects x 2 runs): {time.perf_counter() - start:.0f} s, "
                  f"peak resident memory {peak:.2f} GB in one process")


if __name__ == "__main__":
    main()
