"""Benchmark: the group level at cohort scale (issue 23).

Target: 400 parcels x 200 observations x 396 features (3 conditions x 6 bands x 22 windows) x
10,000 resamples in at most 5 minutes and 4 GB on 2 cores, the cost growing at most linearly in
parcels, features and resamples. Prints, in one run:

1. :func:`bids_app.stats.run_group_statistics` with the default options (K = 17, 10,000
   resamples of 160 observations, levels 99 % and 99.9 %) on a synthetic cohort: wall time, the
   tracemalloc peak during the call and the process's peak resident set (ru_maxrss), and whether
   the targets are met;
2. the scaling: the whole call at 100, 200, 400 parcels and at 99, 198, 396 features (3
   conditions x 3 or 6 bands x 11 or 22 windows), both at ``--sweep-resamples`` resamples, and
   at 2,500, 5,000, 10,000 resamples with 400 parcels and 396 features, the others fixed, with
   the exponent of a power law fitted to the three times (1 = linear);
3. Ward clustering with the optimal leaf order alone at 100-800 parcels (its cost is not linear
   in parcels; it is measured to show that it does not matter here);
4. the bootstrap of a few units the app's way and the way before issue 23 (average ranks of every
   subset, :func:`scipy.stats.rankdata`, which the app used above 128 observations), and
   ``scipy.stats.spearmanr`` in a loop: time per correlation and the ratios, extrapolated;
5. ``parcel_intervals=True`` (every parcel bootstrapped too; not used by the app's group
   workflow, only by callers of the function) at ``--parcel-resamples`` resamples, extrapolated
   linearly to 10,000.

The cohort is normalised as the app does: per observation (one run), MEG band power of 5 blocks
per condition is normalised with :func:`bids_app.meg.dics.normalize_run` (minus the mean over
the run's blocks per window and parcel, divided by the parcel's standard deviation over blocks
and windows) and the fMRI block values as :func:`bids_app.fmri.block_estimates.
normalize_block_values` does (minus the mean over blocks, divided by a standard deviation; here
the blocks' own, as no time series is simulated), then averaged over the blocks of each
condition. Twelve groups of parcels carry a planted coupling in one band and a few windows so
that the clusters differ.

Timings on a shared machine vary; the load average and the CPU time of each call (summed over
BLAS threads; what a call costs whatever else runs) are printed. Run from the repository root::

    python benchmarks/bench_group_cohort.py [--sweep-resamples 1000] [--parcel-resamples 500]
"""

import argparse
import logging
import os
import resource
import time
import tracemalloc

import numpy as np
from scipy.stats import spearmanr

from bids_app.meg.dics import normalize_run
from bids_app.stats import bootstrap, draw_resamples, run_group_statistics
from bids_app.stats.clustering import ward_clusters
from bids_app.stats.options import GroupStatsOptions

N_OBS, N_PARCELS, N_BLOCKS = 200, 400, 5
CONDITIONS = ["a", "b", "c"]
BANDS = ["theta", "alpha", "lowbeta", "highbeta", "lowgamma", "highgamma"]
N_WINDOWS, SEED = 22, 7
DEFAULTS = GroupStatsOptions()
TIME_TARGET_S, MEMORY_TARGET_GB = 300.0, 4.0


def cohort(rng, n_obs=N_OBS, n_parcels=N_PARCELS):
    """Normalised MEG (n_obs, n_parcels, 3, 6, 22) and fMRI (n_obs, n_parcels, 3) values."""
    n_cond, n_bands = len(CONDITIONS), len(BANDS)
    groups = np.arange(n_parcels) % 12                # planted coupling of parcel group g
    meg = np.empty((n_obs, n_parcels, n_cond, n_bands, N_WINDOWS))
    fmri = np.empty((n_obs, n_parcels, n_cond))
    for o in range(n_obs):
        bold = rng.normal(size=(n_cond, N_BLOCKS, n_parcels))
        power = rng.normal(size=(n_bands, n_cond, N_BLOCKS, N_WINDOWS, n_parcels))
        for g in range(12):
            band, first = g % n_bands, 2 * g % (N_WINDOWS - 4)
            cols = groups == g
            power[band, :, :, first:first + 4][..., cols] += 0.8 * bold[:, :, None, cols]
        centred = bold - bold.mean(axis=(0, 1))
        fmri[o] = (centred / bold.reshape(-1, n_parcels).std(axis=0, ddof=1)).mean(axis=1).T
        for b in range(n_bands):
            norm = normalize_run(power[b].reshape(n_cond * N_BLOCKS, N_WINDOWS, n_parcels))
            meg[o, :, :, b] = norm.reshape(n_cond, N_BLOCKS, N_WINDOWS, n_parcels).mean(
                axis=1).transpose(2, 0, 1)
    return meg, fmri


def labels(n_parcels, n_bands=len(BANDS), n_windows=N_WINDOWS):
    return dict(parcels=[f"parcel{i:03d}" for i in range(n_parcels)],
                hemis=["lh" if i < n_parcels // 2 else "rh" for i in range(n_parcels)],
                conditions=CONDITIONS, bands=BANDS[:n_bands],
                windows_ms=[100.0 * w for w in range(n_windows)])


def measure(fn):
    """Run fn; return (result, seconds, tracemalloc peak in GB) and print the CPU time."""
    tracemalloc.start()
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = fn()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = tracemalloc.get_traced_memory()[1] / 2**30
    tracemalloc.stop()
    print(f"    [{seconds:.1f} s wall, {cpu:.1f} s CPU (all threads), load "
          f"{os.getloadavg()[0]:.1f}]")
    return out, seconds, peak


def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def group(meg, fmri, n_bootstrap=DEFAULTS.n_bootstrap, **kwargs):
    n_parcels, _, n_bands, n_windows = meg.shape[1:]
    return run_group_statistics(meg, fmri, **labels(n_parcels, n_bands, n_windows), seed=SEED,
                                options=GroupStatsOptions(n_bootstrap=n_bootstrap), **kwargs)


def exponent(sizes, seconds):
    """Slope of log(time) against log(size): 1 is linear."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def scaling(label, sizes, runs):
    """Time each run (a function, or the seconds of a run already measured); fit the exponent."""
    times = []
    for size, fn in zip(sizes, runs):
        if callable(fn):
            _, seconds, peak = measure(fn)
            note = f"traced peak {peak:.2f} GB"
        else:
            seconds, note = fn, "(step 1)"
        times.append(seconds)
        print(f"  {label} {size:>6,}: {seconds:6.1f} s, {note}")
    print(f"  -> exponent in {label}: {exponent(sizes, times):.2f}")
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep-resamples", type=int, default=1000,
                        help="resamples of the parcel and feature sweeps")
    parser.add_argument("--parcel-resamples", type=int, default=500)
    parser.add_argument("--units", type=int, default=2, help="units timed in the comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    meg, fmri = cohort(rng)
    print(f"synthetic cohort {meg.shape} built in {time.perf_counter() - t0:.0f} s; "
          f"process peak RSS so far {rss_gb():.2f} GB")

    # 1. the whole group level at cohort size
    res, seconds, peak = measure(lambda: group(meg, fmri))
    n_units = len(res["cluster_rho"])
    rss = rss_gb()
    print(f"\n1. group level, {N_PARCELS} parcels x {N_OBS} observations x 396 features x "
          f"{DEFAULTS.n_bootstrap:,} resamples ({n_units} cluster-hemisphere units): "
          f"{seconds:.1f} s, traced peak {peak:.2f} GB, process peak RSS {rss:.2f} GB")
    print(f"   time <= {TIME_TARGET_S:.0f} s: {seconds <= TIME_TARGET_S}; memory <= "
          f"{MEMORY_TARGET_GB:.0f} GB: {max(peak, rss) <= MEMORY_TARGET_GB}; "
          f"{len(res['effects'])} effect rows; load {os.getloadavg()}")

    # 2. scaling, one dimension at a time
    sweep_boot = args.sweep_resamples
    print(f"\n2. scaling (whole run_group_statistics; parcels and features at {sweep_boot:,} "
          f"resamples)")
    scaling("parcels", [100, 200, 400],
            [lambda p=p: group(meg[:, _spread(p)], fmri[:, _spread(p)], sweep_boot)
             for p in (100, 200, 400)])
    scaling("features", [99, 198, 396],
            [lambda: group(meg[:, :, :, :3, :11], fmri, sweep_boot),
             lambda: group(meg[:, :, :, :, :11], fmri, sweep_boot),
             lambda: group(meg, fmri, sweep_boot)])
    scaling("resamples", [2500, 5000, 10000],
            [lambda b=b: group(meg, fmri, b) for b in (2500, 5000)] + [seconds])
    print(f"  load {os.getloadavg()}")

    # 3. Ward + optimal leaf order alone
    print("\n3. Ward clustering with optimal leaf order (396 features)")
    rho = res["rho"]
    big = np.concatenate([rho, rho + rng.normal(scale=0.05, size=rho.shape)])
    ward = []
    for p in (100, 200, 400, 800):
        t0 = time.perf_counter()
        ward_clusters(big[_spread(p, len(big))], DEFAULTS.n_clusters)
        ward.append(time.perf_counter() - t0)
        print(f"  {p} parcels: {ward[-1]:.2f} s")
    print(f"  -> exponent: {exponent([100, 200, 400, 800], ward):.2f}")

    # 4. per correlation: the app, the rank path before issue 23, scipy.stats.spearmanr
    print(f"\n4. bootstrap of {args.units} units x 396 features, per correlation")
    x = meg[:, :args.units].reshape(N_OBS, args.units, len(CONDITIONS), -1)
    y = fmri[:, :args.units]
    idx = draw_resamples(np.random.default_rng(1), N_OBS, 500, DEFAULTS.bootstrap_fraction)
    n_corr = args.units * x.shape[2] * x.shape[3] * len(idx)
    t0 = time.perf_counter()
    new = bootstrap.bootstrap_spearman_array(x, y, idx, DEFAULTS.ci_levels, return_samples=True)
    per_new = (time.perf_counter() - t0) / n_corr
    limit = bootstrap.MAX_FAST_DRAWN
    bootstrap.MAX_FAST_DRAWN = 0                      # every column through rankdata
    t0 = time.perf_counter()
    old = bootstrap.bootstrap_spearman_array(x, y, idx, DEFAULTS.ci_levels, return_samples=True)
    per_old = (time.perf_counter() - t0) / n_corr
    bootstrap.MAX_FAST_DRAWN = limit
    n_naive = 2000
    t0 = time.perf_counter()
    for k in range(n_naive):
        b, f = k % len(idx), k % x.shape[3]
        spearmanr(x[idx[b], 0, 0, f], y[idx[b], 0, 0])
    per_naive = (time.perf_counter() - t0) / n_naive
    diff = np.abs(new["samples"] - old["samples"]).max()
    total = n_units * 396 * DEFAULTS.n_bootstrap
    print(f"  app {per_new * 1e9:.0f} ns, rank path (before issue 23) {per_old * 1e9:.0f} ns "
          f"({per_old / per_new:.1f}x), spearmanr loop {per_naive * 1e6:.0f} us "
          f"({per_naive / per_new:,.0f}x); max |difference| app vs rank path {diff:.1e}")
    print(f"  extrapolated to the {total:,} correlations of step 1: rank path "
          f"{per_old * total:,.0f} s, spearmanr loop {per_naive * total / 3600:,.1f} h "
          f"({per_naive * total / seconds:,.0f}x step 1)")

    # 5. parcel_intervals=True
    nb = args.parcel_resamples
    _, t_pi, peak_pi = measure(lambda: group(meg, fmri, nb, parcel_intervals=True))
    _, t_no, _ = measure(lambda: group(meg, fmri, nb))
    extra = (t_pi - t_no) * DEFAULTS.n_bootstrap / nb
    print(f"\n5. parcel_intervals=True at {nb:,} resamples: {t_pi:.1f} s against {t_no:.1f} s "
          f"without (traced peak {peak_pi:.2f} GB); the parcel intervals add ~{extra:,.0f} s "
          f"at 10,000 resamples (linear extrapolation)")
    print(f"\nprocess peak RSS {rss_gb():.2f} GB; load average at end {os.getloadavg()}")


def _spread(n, total=N_PARCELS):
    """n parcel indices spread over both hemispheres."""
    return np.linspace(0, total - 1, n).round().astype(int)


if __name__ == "__main__":
    main()
