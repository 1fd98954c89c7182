"""Benchmark: the paper-sized group level (DESIGN 5) and the parcel-level bootstrap.

Sizes: 140 parcels, 396 features (3 conditions x 6 bands x 22 windows), 20 observations,
10,000 resamples of 16 observations, K = 17. Prints, in one run:

1. :func:`bids_app.stats.run_group_statistics` (Spearman, Ward, cluster bootstrap, effects,
   t-tests): wall time and peak memory;
2. :func:`bids_app.stats.parcel_bootstrap` (140 x 396 x 10,000 correlations): time and memory;
3. the naive reference, ``scipy.stats.spearmanr`` in a loop on a measured subset of resampled
   correlations, extrapolated to both sizes, and the speed ratios.

Peak memory is the tracemalloc peak of Python/numpy allocations during each step (BLAS
workspace is not counted) and the process's peak resident set (ru_maxrss). Timings on a shared
machine vary by +-30 %.

Run from the repository root::

    python benchmarks/bench_group.py [--naive 2000]
"""

import argparse
import logging
import resource
import time
import tracemalloc

import numpy as np
from scipy.stats import spearmanr

from bids_app.stats import draw_resamples, parcel_bootstrap, run_group_statistics
from bids_app.stats.options import GroupStatsOptions

N_OBS, N_PARCELS, CONDITIONS = 20, 140, ["a", "b", "c"]
BANDS = ["theta", "alpha", "lowbeta", "highbeta", "lowgamma", "highgamma"]
WINDOWS = [float(w) for w in np.arange(22) * 100.0]
N_BOOT, K, SEED = 10_000, 17, 7
DEFAULTS = GroupStatsOptions()


def data(rng):
    """Random MEG/fMRI observations with weak planted structure so clusters differ."""
    fmri = rng.normal(size=(N_OBS, N_PARCELS, len(CONDITIONS)))
    meg = rng.normal(size=(N_OBS, N_PARCELS, len(CONDITIONS), len(BANDS), len(WINDOWS)))
    meg[:, :20, 0, 1, 5:10] += 0.8 * fmri[:, :20, 0, None]
    return meg, fmri


def measure(label, fn):
    """Run fn, print wall time and peak memory; return (result, seconds, peak MB)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}: {seconds:.1f} s, peak traced memory {peak / 2**20:.0f} MB, "
          f"process peak RSS so far {rss:.0f} MB")
    return out, seconds, peak / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--naive", type=int, default=2000, help="naive correlations to time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    meg, fmri = data(rng)
    labels = dict(parcels=[f"parcel{i:03d}-{'lh' if i % 2 == 0 else 'rh'}"
                           for i in range(N_PARCELS)],
                  hemis=["lh" if i % 2 == 0 else "rh" for i in range(N_PARCELS)],
                  conditions=CONDITIONS, bands=BANDS, windows_ms=WINDOWS)
    res, t_group, _ = measure(
        "group level (run_group_statistics, 10,000 resamples)",
        lambda: run_group_statistics(meg, fmri, **labels, seed=SEED,
                                     options=GroupStatsOptions(n_clusters=K, n_bootstrap=N_BOOT)))
    n_units = len(res["bootstrap"][["cluster", "hemi"]].drop_duplicates())
    n_features = len(CONDITIONS) * len(BANDS) * len(WINDOWS)
    group_corr = n_units * n_features * N_BOOT
    print(f"  {n_units} cluster-hemisphere units x {n_features} features x {N_BOOT} resamples "
          f"= {group_corr:,} correlations; {len(res['effects'])} effect rows")
    _, t_parcel, _ = measure(
        "parcel-level bootstrap (140 x 396 x 10,000)",
        lambda: parcel_bootstrap(meg, fmri, n_bootstrap=N_BOOT,
                                 fraction=DEFAULTS.bootstrap_fraction,
                                 ci_levels=DEFAULTS.ci_levels, seed=SEED))
    parcel_corr = N_PARCELS * n_features * N_BOOT

    idx = draw_resamples(np.random.default_rng(1), N_OBS, args.naive, 0.8)
    x = meg.reshape(N_OBS, N_PARCELS, -1)
    t0 = time.perf_counter()
    for b in range(args.naive):
        p, f = b % N_PARCELS, b % n_features
        spearmanr(x[idx[b], p, f], fmri[idx[b], p, f // (len(BANDS) * len(WINDOWS))])
    per = (time.perf_counter() - t0) / args.naive
    print(f"naive scipy.stats.spearmanr loop: {per * 1e6:.0f} us per correlation "
          f"({args.naive} measured)")
    for label, n_corr, t in (("group level", group_corr, t_group),
                             ("parcel-level bootstrap", parcel_corr, t_parcel)):
        naive = per * n_corr
        print(f"  {label}: naive extrapolated {naive:,.0f} s ({naive / 3600:.1f} h) vs "
              f"{t:.1f} s -> {naive / t:,.0f}x faster")
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
