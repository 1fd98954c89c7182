"""Benchmark: the app's own numerics against the field libraries doing the same job (issue 22).

Each part times both ways in one run (best of ``--repeats``), prints the peak memory of each
(tracemalloc: Python and numpy allocations, BLAS workspace not counted) and the ratio. The
exactness of each pair is tested in ``tests/test_field_libraries.py``; the decisions are in
``docs/architecture.md`` ("Field libraries and the app's own code").

1. Spearman over columns, the group level's ``rho`` of (observations x parcels x 396 features)
   MEG values against fMRI values: the app's :func:`bids_app.stats.spearman_array` with
   :func:`~bids_app.stats.spearman_pvalue`; ``scipy.stats.pearsonr(rankdata(x), rankdata(y),
   axis=0)``; and ``scipy.stats.spearmanr`` column by column (measured on ``--loop`` columns and
   extrapolated: ``spearmanr`` of two 2-D arrays correlates every column with every other, so a
   loop is its only column-wise use). Sizes: 20, 60 and 200 observations; 150 parcels (59,400
   columns) and 400 parcels (158,400 columns).
2. Paired t-test of the group level (3 condition pairs x 34 cluster-hemisphere units x 6 bands x
   22 windows, 20 observations): the app's former vectorised formula and
   ``scipy.stats.ttest_rel(axis=0)``.
3. High-pass filter of one run's parcel time series (250 volumes x 400 parcels, TR 3 s,
   510 s): :func:`bids_app.fmri.highpass.highpass_filter` and
   ``nilearn.signal.clean(filter="cosine", detrend=False, standardize=False)``.
4. Resampling a T1w (176 x 240 x 256, 1 mm) on a mean-EPI grid (64 x 64 x 40, 3 mm) through a
   rigid transform, trilinear: ``scipy.ndimage.map_coordinates`` on explicit coordinates (the
   app's code before issue 22) and ``nibabel.processing.resample_from_to`` (what the app's
   :func:`bids_app.fmri.coregister.resample_to_grid` calls now), each with its field-of-view
   mask.

Timings on a shared machine vary by +-30 %. Run from the repository root::

    python benchmarks/bench_field_libraries.py [--part spearman] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from scipy import ndimage, special, stats

PARTS = ("spearman", "ttest", "highpass", "resample")


def measure(function, repeats: int) -> tuple[float, float]:
    """Best wall time (s) over ``repeats`` calls, and the traced peak (MB) of one call."""
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20


def report(label: str, ways: dict, repeats: int) -> dict:
    """Measure every way, print one line each and the ratio of each to the first."""
    results = {name: measure(fn, repeats) for name, fn in ways.items()}
    first_name, (first_time, _) = next(iter(results.items()))
    print(label)
    for name, (seconds, peak) in results.items():
        ratio = seconds / first_time
        print(f"  {name:<44s} {seconds * 1e3:10.2f} ms  peak {peak:8.1f} MB  "
              f"x{ratio:.2f} of {first_name}")
    return results


def spearman_part(repeats: int, loop: int) -> None:
    from bids_app.stats.spearman import spearman_array, spearman_pvalue

    rng = np.random.default_rng(0)
    for n_parcels in (150, 400):
        for n_obs in (20, 60, 200):
            meg = rng.normal(size=(n_obs, n_parcels, 3, 6, 22))
            fmri = rng.normal(size=(n_obs, n_parcels, 3, 1, 1))
            n_columns = meg[0].size

            def app():
                rho = spearman_array(meg, fmri)
                return rho, spearman_pvalue(rho, n_obs)

            def pearson_of_ranks():
                result = stats.pearsonr(stats.rankdata(meg, axis=0),
                                        stats.rankdata(fmri, axis=0), axis=0)
                return result.statistic, result.pvalue

            res = report(f"Spearman, {n_obs} observations x {n_columns:,} columns "
                         f"({n_parcels} parcels x 396 features)",
                         {"app (spearman_array + spearman_pvalue)": app,
                          "scipy pearsonr(rankdata) axis=0": pearson_of_ranks}, repeats)
            x = meg.reshape(n_obs, -1)
            y = np.broadcast_to(fmri, meg.shape).reshape(n_obs, -1)
            started = time.perf_counter()
            for j in range(loop):
                stats.spearmanr(x[:, j], y[:, j])
            per_column = (time.perf_counter() - started) / loop
            loop_s = per_column * n_columns
            print(f"  {'scipy spearmanr per column (extrapolated)':<44s} {loop_s * 1e3:10.0f} ms"
                  f"  ({per_column * 1e6:.0f} us x {n_columns:,}; x"
                  f"{loop_s / res['app (spearman_array + spearman_pvalue)'][0]:.0f} of app)")


def _paired_t_formula(a, b):
    """The app's paired t-test before issue 22 (kept here for the comparison)."""
    d = a - b
    n = d.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=0) / np.sqrt(d.var(axis=0, ddof=1) / n)
    return t, 2 * special.stdtr(n - 1, -np.abs(t))


def ttest_part(repeats: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 34, 6, 22))
    b = a + rng.normal(0.2, 1.0, size=a.shape)

    def formula():
        for _ in range(3):  # three condition pairs
            _paired_t_formula(a, b)

    def scipy_ttest():
        for _ in range(3):
            stats.ttest_rel(a, b, axis=0)

    report("Paired t-test, 3 pairs x 20 observations x 4,488 columns",
           {"formula (app before issue 22)": formula, "scipy ttest_rel axis=0": scipy_ttest},
           repeats)


def highpass_part(repeats: int) -> None:
    from nilearn.signal import clean

    from bids_app.fmri.highpass import highpass_filter

    rng = np.random.default_rng(2)
    series = 100 + rng.normal(size=(250, 400)) + np.linspace(0, 5, 250)[:, None]

    def nilearn_clean():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return clean(series, detrend=False, standardize=False, filter="cosine",
                         high_pass=1 / 510.0, t_r=3.0)

    report("High-pass, 250 volumes x 400 parcels (TR 3 s, 510 s)",
           {"app highpass_filter": lambda: highpass_filter(series, tr=3.0, period_s=510.0),
            "nilearn signal.clean(filter='cosine')": nilearn_clean}, repeats)


def _map_coordinates_way(data, affine, grid_shape, grid_affine, grid_to_source):
    """The app's resampling before issue 22 (kept here for the comparison)."""
    vox_to_vox = np.linalg.inv(affine) @ grid_to_source @ grid_affine
    ijk = np.indices(grid_shape, dtype=float).reshape(3, -1)
    coords = vox_to_vox[:3, :3] @ ijk + vox_to_vox[:3, 3:4]
    limits = np.asarray(data.shape[:3], dtype=float)[:, None] - 1
    inside = np.all((coords >= 0) & (coords <= limits), axis=0).reshape(grid_shape)
    values = ndimage.map_coordinates(data, coords, order=1, mode="constant", cval=0.0)
    return values.reshape(grid_shape), inside


def resample_part(repeats: int) -> None:
    from scipy.spatial.transform import Rotation

    from bids_app.fmri.coregister import resample_to_grid

    rng = np.random.default_rng(3)
    t1w = rng.normal(size=(176, 240, 256)).astype(np.float32)
    t1w_affine = np.array([[0, 0, 1, -88], [-1, 0, 0, 120], [0, -1, 0, 128], [0, 0, 0, 1.0]])
    grid_shape = (64, 64, 40)
    grid_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    grid_affine[:3, 3] = [-96, -110, -60]
    move = np.eye(4)
    move[:3, :3] = Rotation.from_euler("xyz", [3, -2, 5], degrees=True).as_matrix()
    move[:3, 3] = [2, -1, 3]
    report("Resampling a 1-mm T1w on a 3-mm EPI grid (64 x 64 x 40), trilinear, with mask",
           {"map_coordinates (app before issue 22)": lambda: _map_coordinates_way(
               t1w, t1w_affine, grid_shape, grid_affine, move),
            "nibabel resample_from_to (app now)": lambda: resample_to_grid(
               t1w, t1w_affine, grid_shape, grid_affine, grid_to_source=move)}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, action="append",
                        help="part to run (repeatable; default all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per way (best)")
    parser.add_argument("--loop", type=int, default=2000,
                        help="spearmanr calls timed for the per-column extrapolation")
    args = parser.parse_args()
    for part in args.part or PARTS:
        if part == "spearman":
            spearman_part(args.repeats, args.loop)
        elif part == "ttest":
            ttest_part(args.repeats)
        elif part == "highpass":
            highpass_part(args.repeats)
        else:
            resample_part(args.repeats)


if __name__ == "__main__":
    main()
