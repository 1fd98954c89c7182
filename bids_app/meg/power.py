"""Event-related DICS power of one run in parcels, bands and windows (DESIGN 4.3 steps 3-6)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import mne
import numpy as np
import pandas as pd

from bids_app.meg.dics import (
    band_frequencies,
    baseline_reference,
    capped_n_cycles,
    check_bands,
    dics_filters,
    event_related_csd,
    normalize_run,
    parcel_average,
    relative_change,
    source_power,
)
from bids_app.meg.errors import TooFewTrialsError
from bids_app.meg.options import DICSOptions

LOGGER = logging.getLogger(__name__)

__all__ = ["RunPower", "event_related_power", "band_time_course", "peak_window_maps",
           "TABLE_COLUMNS"]

#: Columns of the run's derivative table (DESIGN 6).
TABLE_COLUMNS = ("condition", "block", "band", "window_start_ms", "parcel", "relchange",
                 "normalized")


@dataclass
class RunPower:
    """Result of :func:`event_related_power`.

    Attributes
    ----------
    table : DataFrame
        One row per block, band, window and parcel (:data:`TABLE_COLUMNS`).
    blocks : DataFrame
        Per block: ``condition``, ``block``, ``n_trials``, ``n_rejected``, ``n_kept``,
        ``included`` (False when fewer than ``min_trials_per_block`` trials were left).
    band_summary : dict
        Per band: frequencies, cycles and the largest mean relative change of a parcel, for the
        report.
    """

    table: pd.DataFrame
    blocks: pd.DataFrame
    band_summary: dict


def event_related_power(
    epochs: mne.BaseEpochs,
    forward: mne.Forward,
    blocks: pd.DataFrame,
    *,
    parcel_of_source: np.ndarray,
    parcel_names: Sequence[str],
    options: DICSOptions,
    reduce_rank: bool = False,
    n_jobs: int = 1,
) -> RunPower:
    """Relative DICS power change of each block, band, window and parcel.

    Parameters
    ----------
    epochs : Epochs
        Kept trials of the run, sensors for source estimation only, ``metadata`` with
        ``condition`` and ``block`` (:func:`bids_app.meg.epochs.make_epochs`).
    forward : Forward
        Forward model of the run's head position on the analysis grid.
    blocks : DataFrame
        Trial counts per block (``EpochResult.counts``).
    parcel_of_source : ndarray of int, shape (n_sources,)
        Parcel index of each source of ``forward["src"]`` (left then right hemisphere, in
        ``vertno`` order), -1 outside the included parcels.
    parcel_names : sequence of str
        Name of each parcel index.
    options : DICSOptions
        ``bands`` (``{name: [fmin, fmax]}`` in Hz); the analysis windows
        (``window_starts_ms``, ``window_length_ms``) and ``baseline_ms`` (ms from the picture);
        ``freq_step_hz`` and ``n_cycles`` (wavelet frequencies within each band and cycles per
        wavelet, capped to the epoch); ``dics_reg`` and ``pick_ori`` (DICS regularisation and
        orientation, :func:`bids_app.meg.dics.dics_filters`); ``baseline_scope``, the power
        each window is compared with: the block's own baseline (``"block"``, the paper's
        definition) or the mean of the baselines of the run's included blocks (``"run"``),
        which halves the noise of the ratio when the baseline itself does not change with the
        task (see docs/meg.md for what each costs); ``min_trials_per_block``: blocks with
        fewer kept trials are left out of the table (and reported).
    reduce_rank : bool
        Set for a spherical head model (see :func:`bids_app.meg.dics.dics_filters`).

    Raises
    ------
    TooFewTrialsError
        No block keeps ``min_trials_per_block`` trials (the message lists the trials kept).
    SamplingRateError
        A band above what the recording holds (:func:`bids_app.meg.dics.check_bands`).
    """
    info = epochs.info
    bands, window_starts_ms = options.bands, options.window_starts_ms
    min_trials_per_block = options.min_trials_per_block
    check_bands(bands, info["sfreq"], info.get("lowpass"))
    parcel_of_source = np.asarray(parcel_of_source, int)
    n_sources = sum(len(s["vertno"]) for s in forward["src"])
    if len(parcel_of_source) != n_sources:
        raise ValueError(f"parcel_of_source has {len(parcel_of_source)} entries, the forward "
                         f"model {n_sources} sources.")
    blocks = blocks.copy()
    blocks["included"] = blocks["n_kept"] >= int(min_trials_per_block)
    for row in blocks[~blocks["included"]].itertuples():
        LOGGER.warning("Block %s (%s) left out: %d of %d trials kept after EOG rejection "
                       "(minimum %d)", row.block, row.condition, row.n_kept, row.n_trials,
                       min_trials_per_block)
    used = blocks[blocks["included"]].reset_index(drop=True)
    if used.empty:
        kept = ", ".join(f"{row.condition} block {row.block}: {row.n_kept} of {row.n_trials}"
                         for row in blocks.itertuples())
        raise TooFewTrialsError(
            f"No block has enough trials left for DICS: every block keeps fewer than "
            f"min_trials_per_block = {int(min_trials_per_block)} trials after EOG rejection "
            f"(trials kept: {kept}). Check the EOG channel and the events, or lower "
            "[meg] min_trials_per_block, or raise [meg] eog_reject_uv (µV) in --config."
        )
    index = {(c, b): i for i, (c, b) in enumerate(zip(used["condition"], used["block"]))}
    groups = np.array([index.get((c, b), -1) for c, b in
                       zip(epochs.metadata["condition"], epochs.metadata["block"])])
    windows_s = np.array([list(options.baseline_ms)] + [[s, s + options.window_length_ms]
                                                        for s in window_starts_ms]) / 1000.0
    data = epochs.get_data(copy=False)
    sfreq, times = info["sfreq"], epochs.times
    n_parcels = len(parcel_names)
    frames, summary = [], {}
    for k, (band, (fmin, fmax)) in enumerate(bands.items()):
        freqs = band_frequencies(fmin, fmax, options.freq_step_hz)
        cycles = capped_n_cycles(freqs, options.n_cycles, sfreq, len(times))
        LOGGER.info("DICS %s (%g-%g Hz, %d wavelets): band %d/%d, %d blocks x %d windows",
                    band, fmin, fmax, len(freqs), k + 1, len(bands), len(used), len(windows_s))
        csd, pooled, basis = event_related_csd(data, sfreq, times, freqs=freqs,
                                               n_cycles=cycles, groups=groups,
                                               windows_s=windows_s, n_jobs=n_jobs,
                                               return_basis=True)
        filters = dics_filters(info, forward, pooled, freqs, reg=options.dics_reg,
                               pick_ori=options.pick_ori,
                               reduce_rank=reduce_rank)
        power = source_power(filters, csd, basis=basis)            # (blocks, 1 + windows, src)
        reference = baseline_reference(power[:, :1], options.baseline_scope)
        change = relative_change(power[:, 1:], reference)
        values = parcel_average(change, parcel_of_source, n_parcels)  # (blocks, windows, parcels)
        normalized = normalize_run(values)
        frames.append(_long_table(used, band, window_starts_ms, parcel_names, values,
                                  normalized))
        summary[band] = {"fmin": float(fmin), "fmax": float(fmax), "n_wavelets": len(freqs),
                         "n_cycles": [float(c) for c in np.atleast_1d(cycles)],
                         "max_abs_relchange": float(np.nanmax(np.abs(values)))}
    table = pd.concat(frames, ignore_index=True)
    return RunPower(table=table, blocks=blocks, band_summary=summary)


def _long_table(used, band, starts, parcels, values, normalized) -> pd.DataFrame:
    n_blocks, n_windows, n_parcels = values.shape
    b, w, p = np.meshgrid(np.arange(n_blocks), np.arange(n_windows), np.arange(n_parcels),
                          indexing="ij")
    return pd.DataFrame({
        "condition": used["condition"].to_numpy()[b.ravel()],
        "block": used["block"].to_numpy()[b.ravel()],
        "band": band,
        "window_start_ms": np.round(np.asarray(starts, float)[w.ravel()], 3),
        "parcel": np.asarray(parcels)[p.ravel()],
        "relchange": values.ravel(),
        "normalized": normalized.ravel(),
    })


def band_time_course(table: pd.DataFrame) -> dict[str, list[list[float]]]:
    """Mean relative change over parcels and blocks per band and window:
    ``{band: [[window_start_ms, mean], ...]}``."""
    means = table.groupby(["band", "window_start_ms"], sort=False)["relchange"].mean()
    return {band: [[float(w), float(v)] for (_, w), v in part.items()]
            for band, part in means.groupby(level=0, sort=False)}


def peak_window_maps(table: pd.DataFrame) -> dict[str, dict]:
    """Per band, the parcel means (over blocks) of the relative change in the window where the
    mean over parcels departs most from zero: ``{band: {"window_start_ms": w, "values":
    {parcel: mean}}}``."""
    out = {}
    for band, part in table.groupby("band", sort=False):
        per_window = part.groupby("window_start_ms")["relchange"].mean()
        window = float(per_window.abs().idxmax())
        at_peak = part[part["window_start_ms"] == window]
        values = at_peak.groupby("parcel", sort=False)["relchange"].mean()
        out[band] = {"window_start_ms": window,
                     "values": {str(k): float(v) for k, v in values.items()}}
    return out
