"""Benchmark: the app's event-related DICS against the naive MNE composition (issue 6).

One paper-sized run: 204 gradiometers (Vectorview-like array), 600 Hz, 150 trials in 15 blocks,
6 bands, 22 windows + baseline, the 5124-point ico-4 grid of the fsaverage template with a
single-layer BEM forward model. The data are sensor noise passed through the SSS reconstruction
operator (internal components kept, as after tSSS), so they have the rank of real tSSS data;
speed does not depend on anything else in the content.

The naive way computes, for every block and window, ``csd_morlet`` then ``apply_dics_csd``
with the run's common filter; it is run on a measured subset (one block, two windows, every
band) and extrapolated to the 15 x 23 CSDs of a run. The common filter's CSD is shared by both.

Prints: time per run, peak memory (resident set), speed ratio, and the largest relative
difference between the app's power and ``apply_dics_csd`` on the CSDs of ``csd_morlet``.

    python benchmarks/bench_dics.py [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import mne
import numpy as np

from bids_app.config import DEFAULT_BANDS, Config
from bids_app.meg.options import DICSOptions
from bids_app.meg.dics import band_frequencies, capped_n_cycles, dics_filters, to_csd_object
from bids_app.meg.power import event_related_power

SFREQ, N_BLOCKS, TRIALS_PER_BLOCK = 600.0, 15, 10
TMIN, TMAX, PAD = -0.2, 1.0, 0.5


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build_run(work: Path):
    from bids_app.meg.headmodel import forward_model
    from bids_app.simulate.anatomy import prepare_template_anatomy
    from bids_app.simulate.meg import template_head, vectorview_like_info

    anat = prepare_template_anatomy(work, atlas="fallback")
    head = template_head()
    full = vectorview_like_info(SFREQ, head)
    full = mne.pick_info(full, mne.pick_types(full, meg=True))
    grads = mne.pick_types(full, meg="grad")
    info = mne.pick_info(full, grads)
    # The paper's data are tSSS-processed: noise projected on the kept internal SSS components
    S, pS, _, n_in = mne.preprocessing.compute_maxwell_basis(full, origin=(0.0, 0.0, 0.04),
                                                             verbose="error")
    sss = S[:, :n_in] @ pS[:n_in]
    t0 = time.perf_counter()
    fwd = forward_model(info, head["head_mri_t"], anat.src, anat.bem)
    print(f"forward model: {fwd['nsource']} sources x {fwd['nchan']} channels "
          f"({time.perf_counter() - t0:.1f} s, not part of the DICS timing)")
    rng = np.random.default_rng(0)
    n_trials = N_BLOCKS * TRIALS_PER_BLOCK
    n_times = int(round((TMAX - TMIN + 2 * PAD) * SFREQ)) + 1
    scale = np.where(np.isin(np.arange(len(full["ch_names"])), grads), 2e-12, 2e-14)
    data = np.stack([(sss @ (rng.standard_normal((len(scale), n_times)) * scale[:, None]))[grads]
                     for _ in range(n_trials)])
    print(f"data: {n_trials} trials, {len(grads)} gradiometers, SSS rank {n_in}")
    conditions = ["object_object", "action_action", "object_action"]
    block = np.repeat(np.arange(1, N_BLOCKS + 1), TRIALS_PER_BLOCK)
    import pandas as pd

    metadata = pd.DataFrame({"condition": [conditions[(b - 1) % 3] for b in block],
                             "block": block})
    epochs = mne.EpochsArray(data, info, tmin=TMIN - PAD, metadata=metadata, verbose="error")
    counts = (metadata.groupby(["condition", "block"], sort=False).size()
              .rename("n_trials").reset_index())
    counts["n_rejected"] = 0
    counts["n_kept"] = counts["n_trials"]
    return anat, epochs, fwd, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    config = Config()
    starts = config.window_starts_ms()
    bands = {k: tuple(v) for k, v in DEFAULT_BANDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        anat, epochs, fwd, counts = build_run(Path(tmp))
    rss_before = peak_rss_gb()

    # -- the app ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    result = event_related_power(epochs, fwd, counts, parcel_of_source=anat.point_parcel,
                                 parcel_names=anat.parcel_names,
                                 options=config.options(DICSOptions), n_jobs=args.n_jobs)
    fast_s = time.perf_counter() - t0
    fast_rss = peak_rss_gb()
    print(f"app: {fast_s:.1f} s per run ({len(result.table)} rows), peak RSS {fast_rss:.2f} GB "
          f"(before: {rss_before:.2f} GB)")

    # -- naive subset: block 1, two windows, every band ------------------------------------
    from bids_app.meg.dics import event_related_csd, source_power

    data = epochs.get_data()
    first_block = np.flatnonzero(epochs.metadata["block"].to_numpy() == 1)
    windows = [(starts[0] / 1000, (starts[0] + 200) / 1000),
               (starts[11] / 1000, (starts[11] + 200) / 1000)]
    naive_s, worst = 0.0, 0.0
    for band, (fmin, fmax) in bands.items():
        freqs = band_frequencies(fmin, fmax, 1.0)
        cycles = capped_n_cycles(freqs, 7.0, SFREQ, len(epochs.times))
        groups = np.full(len(epochs), -1)
        groups[:] = np.repeat(np.arange(N_BLOCKS), TRIALS_PER_BLOCK)
        _, pooled = event_related_csd(data, SFREQ, epochs.times, freqs=freqs, n_cycles=cycles,
                                      groups=groups, windows_s=np.array(windows))
        filters = dics_filters(epochs.info, fwd, pooled, freqs, reg=Config().meg.dics_reg,
                               pick_ori=Config().meg.pick_ori)
        ours, _ = event_related_csd(data[first_block], SFREQ, epochs.times, freqs=freqs,
                                    n_cycles=cycles, groups=np.zeros(len(first_block), int),
                                    windows_s=np.array(windows))
        fast_power = source_power(filters, ours[0])
        for w, (tmin, tmax) in enumerate(windows):
            t0 = time.perf_counter()
            csd = mne.time_frequency.csd_morlet(epochs[first_block], freqs, tmin=tmin, tmax=tmax,
                                                n_cycles=cycles, verbose="error").mean()
            stc, _ = mne.beamformer.apply_dics_csd(csd, filters, verbose="error")
            naive_s += time.perf_counter() - t0
            # identical CSDs: apply_dics_csd on ours vs our projection
            stc_same, _ = mne.beamformer.apply_dics_csd(
                to_csd_object(ours[0, w], epochs.ch_names, freqs), filters, verbose="error")
            worst = max(worst, float(np.max(np.abs(fast_power[w] - stc_same.data[:, 0])
                                            / np.abs(stc_same.data[:, 0]))))
            csd_diff = float(np.max(np.abs(fast_power[w] - stc.data[:, 0])
                                    / np.abs(stc.data[:, 0])))
            print(f"  {band:9s} window {tmin * 1000:5.0f} ms: naive {naive_s:6.1f} s so far; "
                  f"rel. diff vs csd_morlet+apply_dics_csd {csd_diff:.1e}")
    n_subset = 2
    per_run = naive_s / n_subset * N_BLOCKS * (len(starts) + 1)
    print(f"naive: {naive_s:.1f} s for 1 block x {n_subset} windows x 6 bands -> "
          f"{per_run / 60:.1f} min per run (extrapolated to {N_BLOCKS} blocks x "
          f"{len(starts) + 1} windows)")
    print(f"speed ratio: {per_run / fast_s:.0f}x; largest relative difference from "
          f"apply_dics_csd on identical CSDs: {worst:.1e}")
    print(f"targets: <= 60 s, <= 4 GB, >= 40x, <= 1e-6 -> "
          f"{'met' if fast_s <= 60 and fast_rss <= 4 and per_run / fast_s >= 40 and worst <= 1e-6 else 'NOT met'}")


if __name__ == "__main__":
    main()
