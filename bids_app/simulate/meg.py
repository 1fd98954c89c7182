"""Simulated MEG recordings of the template head (DESIGN 7).

* **Sensors**: the channels of a real Neuromag recording when one is given (its measurement
  history is cleared so the file looks unprocessed), else a 306-channel Vectorview-like array
  built here from MNE's packaged helmet surface and coil definitions: 102 positions spread over
  the helmet, each with a magnetometer (``VV_MAG_T3``) and two orthogonal planar gradiometers
  (``VV_PLANAR_T1``), named like Neuromag channels; two EOG channels and a trigger channel.
* **Head**: fiducials, HPI coils and head-shape points of fsaverage in the Neuromag head frame
  (defined by the fiducials), so that MNE-BIDS writes consistent landmarks and the app's
  ``origin='auto'`` and coregistration work.
* **Sources**: band-limited activity in the planted parcels (Gaussian noise of the band, or an
  oscillation at its centre: ``source_model``) whose power, in the effect's windows after each
  picture, is multiplied by ``1 + relchange`` of the block; background sources with
  1/f-like activity spread over the cortex; projected through the real BEM forward model in
  fixed orientation (:func:`project`: the points of a parcel share one course, so their gain
  columns are summed first; equal to :func:`mne.apply_forward_raw`, tested); sensor noise
  (the real noise covariance when given, else MNE's ad-hoc covariance) and blinks
  (:func:`mne.simulation.add_eog`, vertical EOG scaled to 100-300 µV, so that some trials
  exceed the 150-µV rejection threshold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from mne.io.constants import FIFF
from scipy import signal

LOGGER = logging.getLogger(__name__)

BANDS = {
    "theta": (4.0, 7.0), "alpha": (8.0, 13.0), "lowbeta": (15.0, 21.0),
    "highbeta": (23.0, 29.0), "lowgamma": (36.0, 46.0), "highgamma": (54.0, 90.0),
}
#: Storage resolution of each channel type (written as 16-bit integers, FIF 'short').
_CAL = {"mag": 1e-15, "grad": 1e-14, "eog": 1e-7, "stim": 1.0}


# --------------------------------------------------------------------------------------------------
# Head and sensors
# --------------------------------------------------------------------------------------------------
def template_head() -> dict:
    """Fiducials (head frame, m) and the head<->MRI transform of the fsaverage template.

    The head frame is the Neuromag frame of the fiducials (:mod:`bids_app.io.templates`), so the
    landmarks written to BIDS and the transform agree exactly.
    """
    from bids_app.io.templates import template_fiducials, template_head_mri_trans

    head_mri = template_head_mri_trans()
    mri_head = np.linalg.inv(head_mri["trans"])
    fids = template_fiducials()
    out = {key: mne.transforms.apply_trans(mri_head, fids[key]) for key in ("lpa", "nasion", "rpa")}
    out.update(head_mri_t=head_mri, mri_head=mri_head)
    return out


def head_shape_points(head: dict, n_points: int = 150) -> np.ndarray:
    """Head-shape points (head frame, m) spread over the upper scalp of fsaverage."""
    from bids_app.io.templates import mne_fsaverage_dir

    surf = mne.read_bem_surfaces(mne_fsaverage_dir() / "fsaverage-head.fif", verbose=False)[0]
    rr = mne.transforms.apply_trans(head["mri_head"], surf["rr"])
    rr = rr[rr[:, 2] > head["nasion"][2] - 0.02]  # above the nasion level
    return _farthest_points(rr, n_points)


def _farthest_points(rr: np.ndarray, n: int) -> np.ndarray:
    """Deterministic farthest-point sampling of ``n`` rows of ``rr``."""
    chosen = [int(np.argmax(rr[:, 2]))]
    dist = np.linalg.norm(rr - rr[chosen[0]], axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(rr - rr[chosen[-1]], axis=1))
    return rr[chosen]


def make_digitization(head: dict) -> mne.channels.DigMontage:
    """Fiducials, four HPI coils and head-shape points of the template head."""
    shape = head_shape_points(head)
    hpi = _farthest_points(shape[shape[:, 2] > 0.03], 4)
    return mne.channels.make_dig_montage(
        nasion=head["nasion"], lpa=head["lpa"], rpa=head["rpa"], hsp=shape, hpi=hpi,
        coord_frame="head",
    )


def _sphere(rr: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere (centre, radius) through points."""
    a = np.column_stack([2 * rr, np.ones(len(rr))])
    sol, *_ = np.linalg.lstsq(a, (rr**2).sum(1), rcond=None)
    return sol[:3], float(np.sqrt(sol[3] + sol[:3] @ sol[:3]))


def vectorview_like_info(sfreq: float, head: dict) -> mne.Info:
    """A 306-channel Vectorview-like sensor array on MNE's packaged helmet, plus EOG and trigger.

    The head is placed in the helmet by matching the centres of spheres fitted to the helmet and
    to the head shape, 1 cm lower than centred; sensors sit 5 mm outside the helmet surface.
    """
    from bids_app.io.templates import mne_fsaverage_dir

    helmets = mne_fsaverage_dir().parent / "helmets"
    helmet = mne.read_bem_surfaces(helmets / "306m.fif.gz", verbose=False)[0]
    rr, nn = helmet["rr"], helmet["nn"]
    center, _ = _sphere(rr)
    outward = np.sign(np.sum(nn * (rr - center), axis=1))[:, None]
    nn = nn * outward
    idx = [int(np.argmin(np.linalg.norm(rr - p, axis=1))) for p in _farthest_points(rr, 102)]
    names, kinds, locs = [], [], []
    for k, i in enumerate(sorted(idx, key=lambda j: (-rr[j, 2], rr[j, 0])), start=1):
        ez = nn[i]
        ex = np.cross([0.0, 0.0, 1.0], ez)
        ex = ex / np.linalg.norm(ex) if np.linalg.norm(ex) > 1e-6 else np.array([1.0, 0, 0])
        ey = np.cross(ez, ex)
        pos = rr[i] + 0.005 * ez
        for suffix, kind, axes in (("1", "mag", (ex, ey)), ("2", "grad", (ex, ey)),
                                   ("3", "grad", (ey, -ex))):
            names.append(f"MEG{k:03d}{suffix}")
            kinds.append(kind)
            locs.append(np.concatenate([pos, axes[0], axes[1], ez]))
    info = mne.create_info(names + ["EOG061", "EOG062", "STI101"], sfreq,
                           kinds + ["eog", "eog", "stim"])
    with info._unlock():
        for ch, loc, kind in zip(info["chs"], locs, kinds):
            ch["loc"][:] = loc
            ch["coord_frame"] = FIFF.FIFFV_COORD_DEVICE
            ch["coil_type"] = (FIFF.FIFFV_COIL_VV_MAG_T3 if kind == "mag"
                               else FIFF.FIFFV_COIL_VV_PLANAR_T1)
        shape_center, _ = _sphere(head_shape_points(head))
        dev_head = np.eye(4)
        dev_head[:3, 3] = shape_center - center + np.array([0.0, 0.0, 0.01])
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", dev_head)
        info["line_freq"] = 50.0
    return info


def template_info(template: Path, sfreq: float) -> mne.Info:
    """Sensor channels and head position of a real recording, as an unprocessed recording."""
    raw_info = mne.io.read_info(template, verbose="error")
    meg = mne.pick_info(raw_info, mne.pick_types(raw_info, meg=True, exclude=[]))
    kinds = [mne.channel_type(meg, i) for i in range(len(meg.ch_names))]
    info = mne.create_info(meg.ch_names + ["EOG061", "EOG062", "STI101"], sfreq,
                           kinds + ["eog", "eog", "stim"])
    with info._unlock():
        for ch, src in zip(info["chs"], meg["chs"]):
            for key in ("loc", "coil_type", "coord_frame", "unit"):
                ch[key] = src[key].copy() if hasattr(src[key], "copy") else src[key]
        info["dev_head_t"] = raw_info["dev_head_t"]
        info["line_freq"] = raw_info["line_freq"] or 50.0
    return info


def finish_info(info: mne.Info, head: dict, meas_date: float) -> mne.Info:
    """Add the template digitisation, storage calibrations and a fixed measurement date."""
    info.set_montage(make_digitization(head), on_missing="ignore")
    with info._unlock():
        for i, ch in enumerate(info["chs"]):
            ch["cal"] = _CAL.get(mne.channel_type(info, i), 1.0)
            ch["range"] = 1.0
        info["description"] = "megfmri-fusion simulation"
    info.set_meas_date(meas_date)
    return info


# --------------------------------------------------------------------------------------------------
# Source activity
# --------------------------------------------------------------------------------------------------
def band_noise(n_samples: int, sfreq: float, band, rng, n_signals=1) -> np.ndarray:
    """Gaussian noise band-passed to ``band`` (Hz; 4th-order Butterworth, zero phase), unit
    standard deviation per signal: the course of a planted parcel before its envelope."""
    sos = signal.butter(4, band, btype="bandpass", fs=sfreq, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal((n_signals, n_samples)), axis=1)
    return x / x.std(axis=1, keepdims=True)


def band_oscillation(n_samples: int, sfreq: float, band, rng, drift: float = 1.0) -> np.ndarray:
    """An oscillation at the centre of ``band`` (Hz) whose phase drifts as a random walk
    (``drift`` rad per square-root second), unit standard deviation: a planted course with a
    constant amplitude, so that the power of a block's trials in a window is the planted one
    (within 2 % from alpha up, ``tests/test_simulate_effects.py``), unlike band-limited noise."""
    times = np.arange(n_samples) / sfreq
    phase = np.cumsum(rng.standard_normal(n_samples)) * drift / np.sqrt(sfreq)
    return np.sqrt(2) * np.cos(2 * np.pi * np.mean(band) * times + phase)


#: How the course of a planted parcel is made (``EffectSet.source_model``).
PLANTED_COURSES = {
    "noise": lambda n, sfreq, band, rng: band_noise(n, sfreq, band, rng)[0],
    "oscillation": band_oscillation,
}


def _pink_noise(n_samples: int, rng, n_signals: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal((n_signals, n_samples)), axis=1)
    freqs = np.arange(spectrum.shape[1], dtype=float)
    freqs[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(freqs), n=n_samples, axis=1)
    return x / x.std(axis=1, keepdims=True)


def window_envelope(times, onsets, changes, start_s, stop_s, ramp_s=0.02) -> np.ndarray:
    """Amplitude envelope: ``sqrt(1 + change)`` in [onset + start, onset + stop] of each
    picture (cosine ramps), 1 elsewhere — power in the window is ``1 + change`` times baseline."""
    env = np.ones_like(times)
    for onset, change in zip(onsets, changes):
        lo, hi = onset + start_s, onset + stop_s
        i0, i1 = np.searchsorted(times, [lo - ramp_s, hi + ramp_s])
        seg = times[i0:i1]
        w = np.clip(np.minimum(seg - (lo - ramp_s), (hi + ramp_s) - seg) / ramp_s, 0, 1)
        w = np.sin(w * np.pi / 2) ** 2
        env[i0:i1] = 1 + w * (np.sqrt(1 + change) - 1)
    return env


@dataclass
class RunSources:
    """One run's source activity, compact: grid points that share a time course are kept
    together (all points of a planted parcel carry one course; each background point its own).

    Projecting it through the forward model (:func:`project`) then costs one product with the
    summed gain columns of each group instead of one row per grid point.
    """

    groups: list[np.ndarray]  # grid point indices (concatenated over hemispheres) per course
    courses: np.ndarray  # (n_groups, n_samples), A m
    sfreq: float

    def to_stc(self, src: mne.SourceSpaces) -> mne.SourceEstimate:
        """The same activity with one row per active grid point (for MNE's functions)."""
        offsets = np.cumsum([0] + [len(s["vertno"]) for s in src])
        order = np.unique(np.concatenate(self.groups))  # grid order, as MNE expects
        data = np.zeros((order.size, self.courses.shape[1]))
        for points, course in zip(self.groups, self.courses):  # a point in two groups
            data[np.searchsorted(order, points)] += course  # carries both courses
        hemi = np.searchsorted(offsets, order, side="right") - 1
        vertices = [np.asarray(s["vertno"])[order[hemi == h] - offsets[h]]
                    for h, s in enumerate(src)]
        return mne.SourceEstimate(data, vertices, tmin=0.0, tstep=1.0 / self.sfreq,
                                  subject="sim")


@dataclass
class FixedGain:
    """The forward model in fixed cortical orientation: one column per grid point."""

    matrix: np.ndarray  # (n_meg_channels, n_grid_points)
    ch_names: list[str]  # the rows


def fixed_gain(forward: mne.Forward, src: mne.SourceSpaces) -> FixedGain:
    """Gain of each grid point of ``src`` along its cortical normal.

    Raises
    ------
    ValueError
        A grid point has no forward solution (MNE dropped it, e.g. outside the inner skull).
    """
    fixed = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True,
                                         use_cps=True, verbose="error")
    columns = []
    offset = 0
    for grid, fwd_space in zip(src, fixed["src"]):
        where = np.searchsorted(fwd_space["vertno"], grid["vertno"])
        where = np.minimum(where, len(fwd_space["vertno"]) - 1)
        if not np.array_equal(np.asarray(fwd_space["vertno"])[where], grid["vertno"]):
            raise ValueError("the forward model lacks grid points of the source space "
                             "(outside the inner skull?)")
        columns.append(where + offset)
        offset += len(fwd_space["vertno"])
    gain = fixed["sol"]["data"][:, np.concatenate(columns)]
    # MNE stores the gain in single precision; sums of its columns are formed in double,
    # as MNE's own product with double-precision sources is
    return FixedGain(np.ascontiguousarray(gain, dtype=np.float64),
                     list(fixed["sol"]["row_names"]))


def project(sources: RunSources, gain: FixedGain) -> np.ndarray:
    """Sensor signals (n_meg_channels, n_samples) of ``sources``: equal to
    :func:`mne.apply_forward_raw` of ``sources.to_stc(src)`` with the fixed-orientation
    forward model (tested), since the projection is linear."""
    summed = np.column_stack([gain.matrix[:, points].sum(axis=1) for points in sources.groups])
    return summed @ sources.courses


def source_activity(
    *,
    n_grid: int,
    planted: list[dict],
    trials: pd.DataFrame,
    blocks: pd.DataFrame,
    sfreq: float,
    duration_s: float,
    rng: np.random.Generator,
    source_model: str = "noise",
    background_nam: float = 8.0,
    n_background: int = 150,
) -> RunSources:
    """Source time courses of one run (A m).

    Parameters
    ----------
    n_grid : int
        Number of grid points (the first columns of the gain); background sources are drawn
        among those not planted.
    planted : list of dict
        Each with ``unit`` (its name in ``blocks``: a parcel or a focal site), ``points``
        (gain columns), ``coherent`` (one course for all points, or one each with the same
        envelope), ``nam`` (amplitude of each point, nAm), ``band`` (name) and ``window_s``
        ((start, stop) after the picture).
    source_model : {"noise", "oscillation"}
        Course of a planted unit before its envelope: band-limited Gaussian noise
        (:func:`band_noise`; the power of 10 trials x 200 ms is then random around the planted
        one) or an oscillation at the band's centre (:func:`band_oscillation`; exact power).
    trials : DataFrame
        Pictures: ``onset`` (s), ``condition``, ``block``.
    blocks : DataFrame
        This run's rows of the simulation's blocks table (``block``, ``parcel`` (the unit),
        ``meg_relchange``).
    """
    n_samples = int(round(duration_s * sfreq))
    times = np.arange(n_samples) / sfreq
    change_of = blocks.set_index(["block", "parcel"])["meg_relchange"]
    groups, courses = [], []  # the points of a group share its course
    for item in planted:
        points = np.asarray(item["points"], int)
        if points.size == 0:
            continue
        changes = [change_of.get((b, item["unit"]), 0.0) for b in trials.block]
        env = window_envelope(times, trials.onset.to_numpy(), changes, *item["window_s"])
        for part in [points] if item["coherent"] else [points[[i]] for i in range(points.size)]:
            base = PLANTED_COURSES[source_model](n_samples, sfreq, BANDS[item["band"]], rng)
            groups.append(part)
            courses.append(item["nam"] * 1e-9 * base * env)
    taken = np.unique(np.concatenate(groups + [np.array([], int)]))
    candidates = np.setdiff1d(np.arange(n_grid), taken)
    background = rng.choice(candidates, size=min(n_background, candidates.size), replace=False)
    pink = _pink_noise(n_samples, rng, background.size) * background_nam * 1e-9
    return RunSources(groups=groups + [np.array([p]) for p in background],
                      courses=np.concatenate([np.array(courses).reshape(-1, n_samples), pink]),
                      sfreq=sfreq)


def simulate_run_raw(
    info: mne.Info,
    sources: RunSources,
    gain: FixedGain,
    trials: pd.DataFrame,
    *,
    rng: np.random.Generator,
    cov: mne.Covariance | None = None,
    blink_scale: float = 2.0,
) -> mne.io.RawArray:
    """Project sources, add sensor noise, blinks and triggers: the unprocessed recording.

    The head does not move, so the sources are projected once through the forward model in
    fixed cortical orientation (:func:`project`, equal to :func:`mne.apply_forward_raw`);
    :func:`mne.simulation.simulate_raw` would interpolate a forward model per sample, which is
    meant for moving heads.
    """
    data = np.zeros((info["nchan"], sources.courses.shape[1]))
    data[[info["ch_names"].index(name) for name in gain.ch_names]] = project(sources, gain)
    raw = mne.io.RawArray(data, info.copy(), verbose="error")
    if cov is None:
        cov = mne.make_ad_hoc_cov(raw.info, verbose="error")
    mne.simulation.add_noise(raw, cov, iir_filter=[0.2, -0.2, 0.04], verbose="error",
                             **_seed_argument(mne.simulation.add_noise, rng))
    mne.simulation.add_eog(raw, verbose="error", **_seed_argument(mne.simulation.add_eog, rng))
    data = raw._data
    eog = mne.pick_types(raw.info, meg=False, eog=True)
    # MNE writes its blink trace on the last EOG channel with peaks of 50-150 µV; blinks of
    # 100-300 µV on the vertical EOG are typical, so some trials exceed 150 µV.
    data[eog[-1]] *= blink_scale
    data[eog[0]] = np.cumsum(rng.normal(0, 2e-7, data.shape[1])) * 0.02 + rng.normal(
        0, 5e-6, data.shape[1])  # horizontal EOG: slow drift and noise
    stim = mne.pick_types(raw.info, meg=False, stim=True)[0]
    data[stim] = 0
    samples = np.round(trials.onset.to_numpy() * info["sfreq"]).astype(int)
    data[stim, samples] = trials.value.to_numpy()
    return raw


def _seed_argument(function, rng) -> dict:
    """The random generator as ``function`` takes it: ``rng`` since MNE 1.13, ``random_state``
    before (the package supports MNE >= 1.8)."""
    import inspect

    name = "rng" if "rng" in inspect.signature(function).parameters else "random_state"
    return {name: rng}
