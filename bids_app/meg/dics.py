"""Event-related DICS: band power per block and time window, fast (DESIGN 4.3 steps 3-6).

The naive composition calls :func:`mne.time_frequency.csd_array_morlet` for every block and
window and then :func:`mne.beamformer.apply_dics_csd`; each call repeats the wavelet transform
of the same trials. Here, per run and band:

1. each trial's Morlet transform is computed once per frequency (FFT convolution, the wavelets
   of :func:`mne.time_frequency.morlet`, output centred as MNE's ``mode="same"``);
2. the time axis is cut into *elementary segments* at every window edge; each segment's sum of
   outer products (over the band's frequencies, the block's trials and the segment's samples) is
   one matrix product, and each window's CSD is the sum of its segments (the paper's windows
   overlap by 5/6, so every sample is multiplied once instead of six times);
3. the filters come from :func:`mne.beamformer.make_dics` on the run's pooled CSD, and all
   block/window CSDs are projected through them in batched matrix products.

With real filters (``real_filter=True``, MNE's default) the source power
``trace(Re(W C W^H))`` only depends on ``Re(C)``; the real part of ``sum x x^H`` is
``[Re x, Im x] [Re x, Im x]^T``, one real matrix product, four times cheaper than the complex
one. The CSDs have MNE's scaling (mean over samples and trials, divided by the sampling rate,
averaged over the band's frequencies as :meth:`CrossSpectralDensity.mean` does), so
:func:`mne.beamformer.apply_dics_csd` on them gives the same power (tested to 1e-10).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import mne
import numpy as np
from scipy import fft as sp_fft

from bids_app.meg.errors import SamplingRateError

LOGGER = logging.getLogger(__name__)

__all__ = [
    "Segmentation",
    "band_frequencies",
    "capped_n_cycles",
    "check_bands",
    "data_basis",
    "dics_filters",
    "event_related_csd",
    "normalize_run",
    "parcel_average",
    "relative_change",
    "segmentation",
    "source_power",
    "to_csd_object",
]


# --------------------------------------------------------------------------------------------------
# Frequencies and wavelets
# --------------------------------------------------------------------------------------------------
def band_frequencies(fmin: float, fmax: float, step: float) -> np.ndarray:
    """Wavelet frequencies (Hz) of a band: ``fmin, fmin + step, ...`` up to ``fmax`` inclusive."""
    if not 0 < fmin <= fmax:
        raise ValueError(f"Invalid band {fmin}-{fmax} Hz: need 0 < fmin <= fmax.")
    if step <= 0:
        raise ValueError(f"Invalid frequency step {step} Hz: must be positive.")
    return np.arange(fmin, fmax + step / 2.0, step, dtype=float)


def check_bands(bands: dict[str, Sequence[float]], sfreq: float, lowpass: float | None) -> None:
    """Refuse bands the recording cannot resolve.

    A band's upper edge must lie below the recording's low-pass (``info["lowpass"]``) and below
    the Nyquist frequency (``sfreq / 2``).

    Raises
    ------
    SamplingRateError
        Naming the band and what to change.
    """
    limit = sfreq / 2.0 if lowpass is None else min(float(lowpass), sfreq / 2.0)
    for name, (fmin, fmax) in bands.items():
        if fmax >= limit:
            raise SamplingRateError(
                f"the recording (sampling rate {sfreq:g} Hz, low-pass {lowpass:g} Hz) cannot "
                f"resolve the {name} band ({fmin:g}-{fmax:g} Hz): frequencies must stay below "
                f"{limit:g} Hz. Record at a higher rate or change [meg] bands in the "
                "configuration."
            )


def capped_n_cycles(freqs: np.ndarray, n_cycles: float, sfreq: float, n_times: int) -> np.ndarray:
    """Cycles per wavelet, reduced where the wavelet would be longer than the epoch.

    An MNE Morlet wavelet spans ``10 * sigma_t = 10 * n_cycles / (2 pi f)`` seconds; MNE refuses
    wavelets longer than the signal. Low frequencies get ``n_cycles`` capped so that the wavelet
    fits in ``n_times`` samples.
    """
    freqs = np.asarray(freqs, float)
    duration = (n_times - 1) / sfreq
    fit = duration * 2.0 * np.pi * freqs / 10.0
    return np.minimum(float(n_cycles), np.floor(fit * 100.0) / 100.0)


# --------------------------------------------------------------------------------------------------
# Windows as sums of elementary segments
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segmentation:
    """Windows of an epoch cut into elementary segments.

    Attributes
    ----------
    windows : ndarray, shape (n_windows, 2)
        Sample ranges ``[start, stop)`` of each window, MNE's convention: the samples with
        ``tmin <= t <= tmax`` (to 1e-10 s), as :func:`mne.time_frequency.csd_array_morlet`.
    segments : ndarray, shape (n_segments, 2)
        Non-overlapping sample ranges; every window is a union of segments.
    membership : ndarray, shape (n_windows, n_segments)
        1 where the segment belongs to the window.
    """

    windows: np.ndarray
    segments: np.ndarray
    membership: np.ndarray

    @property
    def span(self) -> tuple[int, int]:
        """First and one-past-last sample covered by any window."""
        return int(self.segments[0, 0]), int(self.segments[-1, 1])

    @property
    def window_lengths(self) -> np.ndarray:
        return np.diff(self.windows, axis=1)[:, 0]


def segmentation(times: np.ndarray, windows_s: np.ndarray) -> Segmentation:
    """Cut the windows ``windows_s`` (shape (n_windows, 2), s) of an epoch into segments."""
    times = np.asarray(times, float)
    windows_s = np.atleast_2d(np.asarray(windows_s, float))
    starts = np.searchsorted(times, windows_s[:, 0] - 1e-10)
    stops = np.searchsorted(times, windows_s[:, 1] + 1e-10)
    if np.any(stops - starts < 1):
        raise ValueError("Every window must contain at least one sample of the epoch.")
    windows = np.column_stack([starts, stops])
    edges = np.unique(np.concatenate([starts, stops]))
    pieces = np.column_stack([edges[:-1], edges[1:]])
    covered = [(pieces[:, 0] >= a) & (pieces[:, 1] <= b) for a, b in windows]
    membership = np.array(covered, dtype=float)
    keep = membership.any(axis=0)
    return Segmentation(windows=windows, segments=pieces[keep], membership=membership[:, keep])


# --------------------------------------------------------------------------------------------------
# CSD of every group (block) and window
# --------------------------------------------------------------------------------------------------
def event_related_csd(
    X: np.ndarray,
    sfreq: float,
    times: np.ndarray,
    *,
    freqs: np.ndarray,
    n_cycles: float | np.ndarray,
    groups: np.ndarray,
    windows_s: np.ndarray,
    real: bool = True,
    chunk_mb: float = 256.0,
    n_jobs: int = 1,
    return_basis: bool = False,
):
    """Band-averaged Morlet CSD of each group of trials in each window, and the pooled CSD.

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)
        Epoched data (T for gradiometers).
    sfreq : float
        Sampling rate (Hz).
    times : ndarray, shape (n_times,)
        Time of each sample relative to the stimulus (s).
    freqs : ndarray, shape (n_freqs,)
        Wavelet frequencies of the band (Hz); the CSD is their average.
    n_cycles : float | ndarray, shape (n_freqs,)
        Cycles per wavelet (see :func:`capped_n_cycles`).
    groups : ndarray of int, shape (n_epochs,)
        Group (block) index of each epoch, ``0 .. n_groups - 1``; ``-1`` leaves an epoch out.
    windows_s : ndarray, shape (n_windows, 2)
        Start and end (s) of each window, both inclusive as in MNE.
    real : bool
        Return only the real part (all that real DICS filters use), four times faster.
    chunk_mb : float
        Memory (MB) of the transforms held at once; frequencies are processed in chunks that
        fit.

    Returns
    -------
    csd : ndarray, shape (n_groups, n_windows, n_channels, n_channels)
        Equal to ``csd_array_morlet(X[groups == g], sfreq, freqs, tmin, tmax,
        n_cycles=n_cycles).mean().get_data()`` for each group and window (real part if
        ``real``).
    pooled : ndarray, shape (n_channels, n_channels)
        The same over all grouped trials and every sample covered by a window (each once).
    basis : ndarray, shape (n_channels, rank)
        Only with ``return_basis=True``: then ``csd`` is given in this basis of the data's
        subspace, shape (n_groups, n_windows, rank, rank), and the sensor CSDs are
        ``basis @ csd @ basis.T`` (see :func:`data_basis`); :func:`source_power` takes it.
    """
    X = np.asarray(X, float)
    groups = np.asarray(groups, int)
    if X.ndim != 3 or groups.shape != (X.shape[0],):
        raise ValueError("X must be (n_epochs, n_channels, n_times) with one group per epoch.")
    n_groups = int(groups.max()) + 1 if groups.size and groups.max() >= 0 else 0
    if n_groups == 0:
        raise ValueError("No epoch is assigned to a group.")
    freqs = np.atleast_1d(np.asarray(freqs, float))
    seg = segmentation(times, windows_s)
    wavelets = mne.time_frequency.morlet(sfreq, freqs, n_cycles)
    basis = data_basis(X[groups >= 0])
    X = np.einsum("cr,ect->ert", basis, X, optimize=True)      # components of the data
    n_ch = X.shape[1]
    dtype = float if real else complex
    seg_sums = np.zeros((n_groups, len(seg.segments), n_ch, n_ch), dtype)
    counts = np.zeros(n_groups, int)
    for g in range(n_groups):
        trials = X[groups == g]
        counts[g] = len(trials)
        if counts[g]:
            seg_sums[g] = _segment_sums(trials, wavelets, seg, real, chunk_mb * 1e6, n_jobs)
    n_freqs = len(freqs)
    win_sums = np.einsum("ws,gsij->gwij", seg.membership, seg_sums, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = counts[:, None] * seg.window_lengths[None, :] * n_freqs * sfreq
        csd = win_sums / norm[:, :, None, None]
    seg_len = np.diff(seg.segments, axis=1)[:, 0]
    pooled = seg_sums.sum(axis=(0, 1)) / (counts.sum() * seg_len.sum() * n_freqs * sfreq)
    pooled = basis @ pooled @ basis.T
    if return_basis:
        return csd, pooled, basis
    # back to sensors: C = U C_r U^T
    return np.einsum("ir,gwrs,js->gwij", basis, csd, basis, optimize=True), pooled


def data_basis(X: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Orthonormal basis of the sensor subspace the epochs span.

    After SSS the data of 204 gradiometers span only the kept multipole components (about 70).
    Transforming the data's components instead of the sensors is exact (the CSD is
    ``U C_r U^T``) and 3x (FFTs) to 8x (products) cheaper; for full-rank data the basis is the
    identity up to a rotation. Components with a power below ``rtol`` times the largest are
    numerically zero and dropped (they change a CSD by less than ``rtol`` relative).

    Parameters
    ----------
    X : ndarray, shape (n_epochs, n_channels, n_times)

    Returns
    -------
    ndarray, shape (n_channels, rank)
    """
    gram = np.einsum("ect,edt->cd", X, X, optimize=True)
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max() * rtol
    return vectors[:, keep][:, ::-1]


def _segment_sums(trials, wavelets, seg, real, chunk_bytes, n_jobs):
    """Sum of ``x x^H`` over frequencies, trials and samples of each segment (private kernel).

    Everything is laid out ``(channel, time, frequency, trial)``. The wavelets are zero-padded
    to a common length around a common centre, so one inverse FFT along the time axis gives
    the transform of a chunk of frequencies with the same sample offset for all; the samples of
    a segment are then one 2-D *view* ``(n_ch, n_samples * n_freq * n_trials)`` of it, without
    copies. Viewing complex numbers as (real, imaginary) pairs gives ``Re(x x^H)`` as the real
    product ``A @ A.T`` (BLAS ``syrk``).
    """
    n_trials, n_ch, n_times = trials.shape
    first, last = seg.span
    longest = max(len(w) for w in wavelets)
    centre = (longest - 1) // 2
    kernels = np.zeros((len(wavelets), longest), complex)
    for k, w in enumerate(wavelets):                  # same centre -> same offset for all
        shift = centre - (len(w) - 1) // 2
        kernels[k, shift:shift + len(w)] = w
    lo, hi = max(0, first - centre - 1), min(n_times, last + centre + 1)   # data needed
    n_fft = sp_fft.next_fast_len(hi - lo + longest - 1)
    data = np.ascontiguousarray(trials[..., lo:hi].transpose(1, 2, 0))   # (ch, time, trial)
    spectrum = sp_fft.fft(data, n_fft, axis=1, workers=n_jobs)           # (ch, n_fft, trial)
    kernel_ffts = sp_fft.fft(kernels, n_fft, axis=1, workers=n_jobs).T   # (n_fft, freq)
    # sample t of the "same" convolution is sample t - lo + centre of the full one
    offset = first - lo + centre
    per_freq = n_ch * n_fft * n_trials * 16
    step = min(len(wavelets), max(1, int(chunk_bytes // per_freq)))
    # (frequency, trial) flattened into one contiguous axis: the products below run as one
    # long elementwise loop instead of many short broadcast ones
    tiled = np.tile(spectrum, (1, 1, step))                             # (ch, n_fft, step*trial)
    out = np.zeros((len(seg.segments), n_ch, n_ch), float if real else complex)
    for start in range(0, len(wavelets), step):
        n_freq = min(step, len(wavelets) - start)
        kernel = np.repeat(kernel_ffts[:, start:start + n_freq], n_trials, axis=1)
        product = tiled[:, :, :n_freq * n_trials] * kernel[None]
        tfr = sp_fft.ifft(product, axis=1, overwrite_x=True, workers=n_jobs)
        tfr = tfr.reshape(n_ch, n_fft, n_freq, n_trials)              # (ch, n_fft, freq, trial)
        pairs = tfr.view(float)
        for s, (a, b) in enumerate(seg.segments):
            if real:
                block = pairs[:, offset + a - first:offset + b - first].reshape(n_ch, -1)
                out[s] += block @ block.T
            else:
                block = tfr[:, offset + a - first:offset + b - first].reshape(n_ch, -1)
                out[s] += block @ block.conj().T
    return out


# --------------------------------------------------------------------------------------------------
# Filters and power
# --------------------------------------------------------------------------------------------------
def to_csd_object(matrices: np.ndarray, ch_names: Sequence[str], freqs: Sequence[float],
                  *, tmin: float = 0.0, tmax: float = 0.0,
                  n_fft: int = 1) -> mne.time_frequency.CrossSpectralDensity:
    """Wrap CSD matrices (``(n_bins, n_ch, n_ch)`` or one ``(n_ch, n_ch)``) as an MNE CSD whose
    single frequency bin spans ``freqs`` (what :meth:`CrossSpectralDensity.mean` gives)."""
    matrices = np.asarray(matrices)
    if matrices.ndim == 2:
        matrices = matrices[None]
    iu = np.triu_indices(matrices.shape[-1])
    data = np.stack([m[iu] for m in matrices], axis=1)
    bins = [list(map(float, freqs))] * len(matrices)
    return mne.time_frequency.CrossSpectralDensity(
        data, ch_names=list(ch_names), frequencies=bins, n_fft=n_fft, tmin=tmin, tmax=tmax)


def dics_filters(info: mne.Info, forward: mne.Forward, pooled: np.ndarray,
                 freqs: Sequence[float], *, reg: float, pick_ori: str,
                 reduce_rank: bool = False) -> mne.beamformer.Beamformer:
    """One DICS spatial filter for a band, from the run's pooled CSD.

    :func:`mne.beamformer.make_dics` with MNE's defaults (unit-noise-gain weight normalisation,
    matrix inversion) and real filters; ``reg`` is the Tikhonov regularisation (fraction of the
    CSD's trace) and ``pick_ori`` ``"max-power"`` or ``"normal"``. ``reduce_rank=True`` is
    needed with a spherical head model, where radial dipoles are silent and the lead field has
    rank 2. ``"normal"`` needs the forward model in surface orientation; a free-orientation
    model (as :func:`mne.make_forward_solution` returns) is converted first.

    ``rank="full"``, not ``"info"``: without a noise CSD, MNE whitens with an identity matrix
    reduced to the rank it reads from the SSS processing history (about 70), and the 70
    directions it keeps of an identity are arbitrary sensor axes, not the span of the data.
    After tSSS that whitener kept 31 % of the data's subspace and 18 % of a source's lead
    field, and a focal source recovered at its true points (r 0.84) vanished from the app's
    parcel (r 0.06; docs/meg.md, "Focal sources";
    ``test_the_filters_keep_the_whole_subspace_of_sss_data``). In full rank the loading
    ``reg`` regularises the directions the data do not span, and the power of data in their
    own subspace is unchanged by them.
    """
    if pick_ori == "normal" and not forward["surf_ori"]:
        forward = mne.convert_forward_solution(forward, surf_ori=True, verbose="error")
    csd = to_csd_object(pooled, info["ch_names"], freqs)
    return mne.beamformer.make_dics(info, forward, csd, reg=reg, pick_ori=pick_ori,
                                    real_filter=True, rank="full", reduce_rank=reduce_rank,
                                    verbose="error")


def source_power(filters: mne.beamformer.Beamformer, csds: np.ndarray,
                 *, basis: np.ndarray | None = None, batch: int = 32) -> np.ndarray:
    """Source power of many CSDs through one filter, as :func:`apply_dics_csd` computes it.

    Parameters
    ----------
    filters : Beamformer
        From :func:`dics_filters` (one frequency bin, real weights).
    csds : ndarray, shape (..., n_channels, n_channels)
        CSD matrices in the filters' channel order; only the real part is used.
    basis : ndarray, shape (n_channels, rank) | None
        When given, ``csds`` are ``(..., rank, rank)`` in this basis (sensor CSD
        ``basis @ C @ basis.T``), and the projection costs ``rank**2`` instead of
        ``n_channels**2`` per source.
    batch : int
        Matrices projected at once (memory ``batch * n_channels * n_sources`` floats).

    Returns
    -------
    power : ndarray, shape (..., n_sources)
        ``trace(Re(W (P C P^T) W^H))`` per source, ``W`` the weights and ``P`` the whitener.
    """
    weights = np.asarray(filters["weights"])
    if weights.shape[0] != 1:
        raise ValueError("Expected filters of one frequency bin.")
    if np.iscomplexobj(weights) and np.abs(weights.imag).max() > 0:
        raise ValueError("Complex filters: use make_dics(real_filter=True).")
    gain = np.real(weights[0]) @ np.real(filters["whitener"])      # (n_rows, n_channels)
    if basis is not None:
        gain = gain @ basis                                           # (n_rows, rank)
    n_orient = 3 if filters["is_free_ori"] else 1
    csds = np.real(np.asarray(csds))
    lead = csds.shape[:-2]
    flat = csds.reshape(-1, *csds.shape[-2:])
    rows = np.empty((len(flat), gain.shape[0]))
    for start in range(0, len(flat), batch):
        part = flat[start:start + batch]                              # (k, c, c)
        projected = np.matmul(part, gain.T)                           # (k, c, rows) = C G^T
        rows[start:start + batch] = np.einsum("kcr,rc->kr", projected, gain, optimize=True)
    power = rows.reshape(len(flat), -1, n_orient).sum(axis=-1)
    return power.reshape(*lead, -1)


def baseline_reference(baseline: np.ndarray, scope: str) -> np.ndarray:
    """The baseline power each block is compared with.

    Parameters
    ----------
    baseline : ndarray, shape (n_blocks, ...)
        Each block's baseline power.
    scope : {"block", "run"}
        ``"block"`` returns ``baseline``; ``"run"`` the mean over the blocks, broadcastable
        against it.
    """
    if scope == "block":
        return baseline
    if scope == "run":
        return baseline.mean(axis=0, keepdims=True)
    raise ValueError(f"baseline scope must be 'block' or 'run', got {scope!r}")


def relative_change(power: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``(power - baseline) / baseline``; ``baseline`` broadcasts against ``power``."""
    return (power - baseline) / baseline


def parcel_average(values: np.ndarray, parcel_of_source: np.ndarray, n_parcels: int) -> np.ndarray:
    """Mean over each parcel's sources of the last axis.

    Parameters
    ----------
    values : ndarray, shape (..., n_sources)
    parcel_of_source : ndarray of int, shape (n_sources,)
        Parcel index of each source, ``-1`` for sources outside the included parcels.

    Returns
    -------
    ndarray, shape (..., n_parcels)
        NaN for a parcel without sources.
    """
    parcel_of_source = np.asarray(parcel_of_source, int)
    inside = parcel_of_source >= 0
    average = np.zeros((n_parcels, len(parcel_of_source)))
    average[parcel_of_source[inside], np.flatnonzero(inside)] = 1.0
    counts = average.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        average /= counts[:, None]
    return values @ average.T


def normalize_run(values: np.ndarray) -> np.ndarray:
    """Normalise one run's values of one band (DESIGN 4.3 step 6).

    Parameters
    ----------
    values : ndarray, shape (n_blocks, n_windows, n_parcels)
        Relative power change of every block (all conditions), window and parcel.

    Returns
    -------
    ndarray, same shape
        ``(values - mean over blocks) / std``: the mean over all blocks of all conditions is
        taken per window and parcel; the standard deviation is that of the parcel's values over
        all blocks and windows of the run.
    """
    centred = values - values.mean(axis=0, keepdims=True)
    scale = values.std(axis=(0, 1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, centred / scale, 0.0)
