"""Epochs around the pictures and EOG rejection (DESIGN 4.3 step 2)."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pandas as pd

from bids_app.meg.errors import EventsOutsideError, MissingEOGError, NoSensorsError
from bids_app.meg.options import EpochOptions

LOGGER = logging.getLogger(__name__)

__all__ = ["EpochResult", "check_epochs_inside", "make_epochs", "sensor_picks"]


def sensor_picks(info: mne.Info, ch_type: str) -> np.ndarray:
    """Indices of the good sensors of ``ch_type`` ("grad" or "mag").

    Raises
    ------
    NoSensorsError
        When the recording has none (e.g. a system without planar gradiometers).
    """
    if ch_type not in ("grad", "mag"):
        raise ValueError(f"Invalid value for 'ch_type': allowed are 'grad', 'mag', got "
                         f"{ch_type!r}.")
    picks = mne.pick_types(info, meg=ch_type, ref_meg=False, exclude="bads")
    if not len(picks):
        kind = "gradiometers" if ch_type == "grad" else "magnetometers"
        raise NoSensorsError(
            f"the recording has no usable {kind} (source estimation uses them); set [meg] "
            f"ch_type to the sensors this system has (allowed: 'grad', 'mag')."
        )
    return picks


def check_epochs_inside(onsets: np.ndarray, options: EpochOptions, *,
                        duration_s: float) -> None:
    """Refuse stimuli whose epoch, with the transform padding, is not inside the recording.

    Parameters
    ----------
    onsets : ndarray, shape (n_trials,)
        Stimulus onsets (s from the first sample of the recording, BIDS ``events.tsv``).
    options : EpochOptions
        The epoch interval around each stimulus and the padding on both sides (s), as
        :func:`make_epochs` uses them.
    duration_s : float
        Time of the last sample (s; ``raw.times[-1]``).

    Raises
    ------
    EventsOutsideError
        Naming how many stimuli, the first one, and the recording's length.
    """
    onsets = np.asarray(onsets, float)
    tmin, tmax, padding = options.tmin_s, options.tmax_s, options.tfr_padding_s
    outside = (onsets + tmin - padding < 0.0) | (onsets + tmax + padding > duration_s)
    if outside.any():
        bad = onsets[outside]
        raise EventsOutsideError(
            f"{outside.sum()} of {len(onsets)} stimuli (first at {bad[0]:.3f} s) have their "
            f"epoch ({tmin - padding:g} to {tmax + padding:g} s around the picture) outside the "
            f"recording (0 to {duration_s:.3f} s); check that events.tsv belongs to this "
            "recording and that its onsets are in seconds from the start of the file."
        )


class EpochResult:
    """Epochs of one run and what the rejection did.

    Attributes
    ----------
    epochs : Epochs
        Kept trials, sensors of ``ch_type`` only, ``metadata`` with ``condition`` and ``block``;
        spans the analysis interval plus the transform padding on both sides.
    counts : DataFrame
        One row per block: ``condition``, ``block``, ``n_trials``, ``n_rejected``, ``n_kept``.
    eog_channels : list of str
        EOG channels used for rejection (empty: rejection skipped).
    kept : ndarray of bool, shape (n_trials,)
        Whether each trial (row of ``trials``) was kept.
    """

    def __init__(self, epochs, counts, eog_channels, kept=None):
        self.epochs = epochs
        self.counts = counts
        self.eog_channels = eog_channels
        self.kept = kept


def make_epochs(
    raw: mne.io.BaseRaw,
    trials: pd.DataFrame,
    options: EpochOptions,
) -> EpochResult:
    """Cut epochs around each picture and reject trials with eye movements.

    Parameters
    ----------
    raw : Raw
        The (Maxwell-filtered) recording.
    trials : DataFrame
        One row per picture with ``onset`` (s from the start of the recording), ``condition``
        and ``block`` (:func:`bids_app.blocks.assign_blocks`).
    options : EpochOptions
        ``tmin_s``, ``tmax_s``: analysis interval around each picture (s);
        ``tfr_padding_s``: extra data (s) on both sides for the wavelet transform, not used for
        rejection; ``eog_reject_uv``: peak-to-peak threshold (µV) on every EOG channel within
        the interval; ``missing_eog``: what to do when the recording has no EOG channel;
        ``ch_type``: sensors kept for source estimation.
    """
    tmin, tmax, padding = options.tmin_s, options.tmax_s, options.tfr_padding_s
    eog_reject_uv, missing_eog, ch_type = (options.eog_reject_uv, options.missing_eog,
                                           options.ch_type)
    if missing_eog not in ("warn", "error"):
        raise ValueError(f"Invalid value for 'missing_eog': allowed are 'warn', 'error', got "
                         f"{missing_eog!r}.")
    sfreq = raw.info["sfreq"]
    picks = sensor_picks(raw.info, ch_type)
    onsets = trials["onset"].to_numpy(float)
    check_epochs_inside(onsets, options, duration_s=raw.times[-1])
    eog = mne.pick_types(raw.info, meg=False, eog=True, exclude=[])
    reject = None
    if eog_reject_uv is not None:
        if len(eog):
            reject = {"eog": float(eog_reject_uv) * 1e-6}
        elif missing_eog == "error":
            raise MissingEOGError(
                "the recording has no EOG channel, so trials cannot be rejected for eye "
                "movements; record EOG, or set [meg] missing_eog = 'warn' to go on without."
            )
        else:
            LOGGER.warning("No EOG channel: trials are not rejected for eye movements")
    samples = raw.first_samp + np.round(onsets * sfreq).astype(int)
    events = np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])
    metadata = trials[["condition", "block"]].reset_index(drop=True)
    epochs = mne.Epochs(
        raw, events, event_id={"picture": 1}, tmin=tmin - padding, tmax=tmax + padding,
        baseline=None, detrend=0, picks=np.concatenate([picks, eog]), reject=reject,
        reject_tmin=tmin, reject_tmax=tmax, metadata=metadata, preload=True,
        reject_by_annotation=False, event_repeated="drop", verbose="error",
    )
    kept = np.zeros(len(trials), bool)
    kept[epochs.selection] = True
    counts = (pd.DataFrame({"condition": metadata["condition"], "block": metadata["block"],
                            "kept": kept})
              .groupby(["condition", "block"], sort=False)["kept"]
              .agg(n_trials="size", n_kept="sum").reset_index())
    counts["n_rejected"] = counts["n_trials"] - counts["n_kept"]
    counts = counts[["condition", "block", "n_trials", "n_rejected", "n_kept"]]
    LOGGER.info("Epochs: %d of %d trials kept (EOG > %s µV rejected)", kept.sum(), len(kept),
                eog_reject_uv if reject else "n/a")
    epochs.pick([raw.ch_names[i] for i in picks])
    return EpochResult(epochs, counts, [raw.ch_names[i] for i in eog] if reject else [], kept)
