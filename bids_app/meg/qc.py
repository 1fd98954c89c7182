"""What the participant report shows of a MEG run (issue 24): sensor spectra before and after
Maxwell filtering, the EOG over the run and each trial's EOG peak-to-peak amplitude (the
quantity the rejection thresholds, :func:`bids_app.meg.make_epochs`)."""

from __future__ import annotations

import mne
import numpy as np

__all__ = ["eog_envelope", "eog_peak_to_peak", "sensor_spectra"]


def sensor_spectra(raw: mne.io.BaseRaw, *, fmax: float = 100.0, n_fft: int = 1024,
                   tmax: float | None = 120.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Power spectrum per MEG sensor type: log10 of the mean power over the good channels
    (Welch). The mean is taken before the logarithm: a mean of logarithms would be pulled
    down by the quietest channels (on the simulated recordings it put the Maxwell-filtered
    spectrum 10 dB above the raw one above 50 Hz, where the mean power is in fact lower).

    Parameters
    ----------
    raw : Raw
        A recording (preloaded or not).
    fmax : float
        Highest frequency (Hz), at most the Nyquist frequency.
    n_fft : int
        Welch segment length (samples).
    tmax : float | None
        Only the first ``tmax`` seconds (the spectrum of two minutes is as informative as of
        the whole run, for a fraction of the time); None: all.

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
        Hz.
    spectra : dict
        ``mag`` / ``grad`` -> ndarray, shape (n_freqs,): log10 of the mean power over channels
        (T²/Hz, (T/m)²/Hz).
    """
    fmax = min(fmax, raw.info["sfreq"] / 2.0)
    tmax = None if tmax is None else min(tmax, raw.times[-1])
    out, freqs = {}, None
    for ch_type in ("mag", "grad"):
        picks = mne.pick_types(raw.info, meg=ch_type, exclude="bads")
        if not len(picks):
            continue
        spectrum = raw.compute_psd(method="welch", picks=picks, fmax=fmax, tmax=tmax,
                                   n_fft=min(n_fft, len(raw.times)), verbose="error")
        data, freqs = spectrum.get_data(return_freqs=True)
        out[ch_type] = np.log10(np.maximum(data.mean(axis=0), np.finfo(float).tiny))
    return (np.zeros(0) if freqs is None else freqs), out


def eog_peak_to_peak(raw: mne.io.BaseRaw, onsets_s: np.ndarray, *, tmin: float,
                     tmax: float) -> np.ndarray:
    """Largest EOG peak-to-peak amplitude (µV, over EOG channels) of each trial in
    ``onset + tmin .. onset + tmax`` (s from the start of the recording), NaN without EOG."""
    eog = mne.pick_types(raw.info, meg=False, eog=True, exclude=[])
    onsets_s = np.asarray(onsets_s, float)
    if not len(eog):
        return np.full(len(onsets_s), np.nan)
    data = raw.get_data(picks=eog)
    sfreq = raw.info["sfreq"]
    out = np.empty(len(onsets_s))
    for k, onset in enumerate(onsets_s):
        start = max(int(round((onset + tmin) * sfreq)), 0)
        stop = min(int(round((onset + tmax) * sfreq)) + 1, data.shape[1])
        piece = data[:, start:stop]
        out[k] = 1e6 * float(np.ptp(piece, axis=1).max()) if piece.size else np.nan
    return out


def eog_envelope(raw: mne.io.BaseRaw, *, bin_s: float = 0.2) -> dict[str, list[float]]:
    """The range of the EOG in bins of ``bin_s`` seconds (all EOG channels, µV, each channel's
    median removed): ``time_s``, ``low_uv``, ``high_uv`` (empty lists without EOG)."""
    eog = mne.pick_types(raw.info, meg=False, eog=True, exclude=[])
    if not len(eog):
        return {"time_s": [], "low_uv": [], "high_uv": []}
    data = 1e6 * raw.get_data(picks=eog)
    data -= np.median(data, axis=1, keepdims=True)
    size = max(int(round(bin_s * raw.info["sfreq"])), 1)
    n_bins = data.shape[1] // size
    binned = data[:, :n_bins * size].reshape(len(eog), n_bins, size)
    return {"time_s": list(np.round((np.arange(n_bins) + 0.5) * size / raw.info["sfreq"], 3)),
            "low_uv": list(np.round(binned.min(axis=(0, 2)), 2)),
            "high_uv": list(np.round(binned.max(axis=(0, 2)), 2))}
