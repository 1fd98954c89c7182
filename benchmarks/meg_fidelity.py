"""How well can a block's MEG power change be measured at all? (DESIGN 4.3, 7)

Not a speed benchmark: it measures the ceiling on the MEG fidelity that the simulator's sources
allow, to tell how much of the pipeline's loss is intrinsic.

Each planted parcel of the simulator carries band-limited Gaussian noise (``--source-model
noise``, the default effects) or an oscillation at the band's centre (``oscillation``, the
``recovery`` effects) whose power in the effect's windows after every picture is multiplied by
``1 + change`` of the block (:func:`bids_app.simulate.meg.window_envelope`). Even without sensor
noise, other sources and a beamformer, the power of 10 trials x 200 ms of band-limited noise is
a random quantity; that of the oscillation is not. Here the
app's own spectral estimator (:func:`bids_app.meg.dics.event_related_csd`: Morlet wavelets of
the band, the app's windows and baseline, trials padded as the app reads them) is applied to
the source course itself. The relative change of each block, averaged over the effect's
windows, is correlated with the planted change, as `tests/test_end_to_end.py` does with the
pipeline's output.

The correlation printed is therefore what a perfect beamformer with no noise would reach; the
full pipeline's figures are in docs/simulation.md.

Run from the repository root::

    python benchmarks/meg_fidelity.py [--blocks 400] [--sfreq 250] [--source-model oscillation]
"""

import argparse
import time

import numpy as np

from bids_app.config import Config
from bids_app.meg.dics import band_frequencies, capped_n_cycles, event_related_csd
from bids_app.simulate.design import make_design, run_events
from bids_app.simulate.effects import default_effects
from bids_app.simulate.meg import BANDS, PLANTED_COURSES, window_envelope

MEG = Config().meg                      # the app's default windows, baseline, epoch, wavelets
WINDOW_STARTS_MS = np.array(Config().window_starts_ms())
BASELINE_S = tuple(np.array(MEG.baseline_ms) / 1000)
EPOCH_S = (MEG.tmin_s - MEG.tfr_padding_s, MEG.tmax_s + MEG.tfr_padding_s)


def block_changes(effect, *, n_blocks, sfreq, rng, source_model="noise", meg_gain=0.6):
    """Planted and measured relative power change of ``n_blocks`` blocks of 10 pictures."""
    design = make_design("small")
    onsets, blocks = [], []
    t = 0.0
    while len(set(blocks)) < n_blocks:          # runs of the small preset, back to back
        events = run_events(design, rng)
        pictures = events[events.trial_type != "instruction"]
        onsets += list(t + pictures.onset)
        blocks += list(len(set(blocks)) + pictures.block - 1)
        t += events.onset.max() + 30.0
    onsets, blocks = np.array(onsets), np.array(blocks)
    keep = blocks < n_blocks
    onsets, blocks = onsets[keep], blocks[keep]
    planted = np.maximum(meg_gain * rng.standard_normal(n_blocks), -0.8)
    n_samples = int((onsets.max() + 5.0) * sfreq)
    times = np.arange(n_samples) / sfreq
    band = BANDS[effect.band]
    envelope = window_envelope(times, onsets, planted[blocks], effect.window_ms[0] / 1000,
                               (effect.window_ms[1] + 200.0) / 1000)
    course = PLANTED_COURSES[source_model](n_samples, sfreq, band, rng) * envelope
    offsets = np.arange(int(round(EPOCH_S[0] * sfreq)), int(round(EPOCH_S[1] * sfreq)) + 1)
    epochs = course[np.round(onsets * sfreq).astype(int)[:, None] + offsets][:, None, :]
    epoch_times = offsets / sfreq
    windows = np.array([BASELINE_S] + [(s / 1000, (s + MEG.window_length_ms) / 1000)
                                       for s in WINDOW_STARTS_MS])
    freqs = band_frequencies(*band, MEG.freq_step_hz)
    cycles = capped_n_cycles(freqs, MEG.n_cycles, sfreq, len(epoch_times))
    power, _ = event_related_csd(epochs, sfreq, epoch_times, freqs=freqs, n_cycles=cycles,
                                 groups=blocks, windows_s=windows)
    power = power[:, :, 0, 0]                                      # (blocks, 1 + windows)
    change = power[:, 1:] / power[:, :1] - 1
    inside = ((WINDOW_STARTS_MS >= effect.window_ms[0] - 1e-6)
              & (WINDOW_STARTS_MS <= effect.window_ms[1] + 1e-6))
    return planted, change[:, inside].mean(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=400, help="blocks per effect")
    parser.add_argument("--sfreq", type=float, default=250.0, help="sampling rate (Hz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source-model", choices=sorted(PLANTED_COURSES), default="noise",
                        help="course of the planted parcels (EffectSet.source_model)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    effects = default_effects(make_design("small").conditions).effects
    print(f"{'effect':18s} {'band':9s} {'windows (ms)':14s} {'r (ceiling)':>11s}  "
          f"{'95 % CI':>13s}")
    for effect in effects:
        start = time.perf_counter()
        planted, measured = block_changes(effect, n_blocks=args.blocks, sfreq=args.sfreq,
                                          rng=rng, source_model=args.source_model)
        r = np.corrcoef(planted, measured)[0, 1]
        half = 1.96 / np.sqrt(args.blocks - 3)
        low, high = np.tanh(np.arctanh(r) - half), np.tanh(np.arctanh(r) + half)
        print(f"{effect.name:18s} {effect.band:9s} "
              f"{effect.window_ms[0]:5.0f}-{effect.window_ms[1] + 200:5.0f}    {r:11.2f}  "
              f"[{low:.2f}, {high:.2f}]   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
