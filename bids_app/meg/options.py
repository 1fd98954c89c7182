"""Settings of the MEG steps (DESIGN 4.3), one frozen object per step, each default written once.

:class:`MaxwellOptions` (tSSS, :func:`bids_app.meg.maxwell.tsss`), :class:`HeadModelOptions`
(BEM, :func:`bids_app.meg.headmodel.bem_solution`), :class:`EpochOptions` (epochs and EOG
rejection, :func:`bids_app.meg.epochs.make_epochs`) and :class:`DICSOptions` (event-related DICS
power, :func:`bids_app.meg.power.event_related_power`). The ``[meg]`` and ``[anatomy]`` sections
of the configuration are made of their fields (:mod:`bids_app.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_app.options import ANY, AT_LEAST_1, NON_NEGATIVE, POSITIVE, Range, option

#: The six frequency bands of the method (Hz, inclusive edges), in the paper's order.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "theta": (4.0, 7.0),
    "alpha": (8.0, 13.0),
    "lowbeta": (15.0, 21.0),
    "highbeta": (23.0, 29.0),
    "lowgamma": (36.0, 46.0),
    "highgamma": (54.0, 90.0),
}

_NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)"
#: A Maxwell-filter origin: 'auto', or three numbers (mm) separated by commas or spaces, as
#: :func:`bids_app.meg.maxwell.parse_origin` reads them.
ORIGIN = (rf"auto|\s*{_NUMBER}(\s*[,\s]\s*{_NUMBER}){{2}}\s*",
          "'auto' or three numbers 'x,y,z' (mm)")


@dataclass(frozen=True)
class MaxwellOptions:
    """tSSS of each recording (MNE's Maxwell filter; DESIGN 4.3 step 1)."""

    maxfilter: bool = option(
        True, "Apply Maxwell filtering (tSSS) unless the file already is SSS-processed.")
    st_duration_s: float | None = option(
        10.0, "tSSS buffer length (s); None gives plain SSS.", bounds=POSITIVE)
    st_correlation: float = option(0.98, "tSSS subspace correlation limit.",
                                   bounds=Range(0, 1, low_open=True))
    origin: str = option(
        "auto", "Maxwell-filter expansion origin: 'auto' (fit to digitised head shape) or "
        "'x,y,z' in mm (head frame).", pattern=ORIGIN)
    find_bad_channels: bool = option(
        True, "Detect noisy and flat channels before Maxwell filtering.")


@dataclass(frozen=True)
class HeadModelOptions:
    """The single-layer boundary-element head model of each subject."""

    bem_ico: int = option(4, "Icosahedral downsampling of the inner-skull surface for the BEM "
                          "(MNE's make_bem_model).", bounds=Range(3, 5))
    bem_conductivity: float = option(0.3, "Single-layer BEM conductivity (S/m).",
                                     bounds=POSITIVE)


@dataclass(frozen=True)
class EpochOptions:
    """Epochs around the pictures and EOG rejection (DESIGN 4.3 steps 2-3)."""

    tmin_s: float = option(-0.2, "Epoch start relative to each picture (s).",
                           bounds=Range(high=0, high_open=True))
    tmax_s: float = option(1.0, "Epoch end relative to each picture (s).", bounds=POSITIVE)
    tfr_padding_s: float = option(
        0.5, "Data (s) read on both sides of each epoch for the wavelet transform only, so "
        "that windows near the epoch edges are not shortened by zero padding.",
        bounds=NON_NEGATIVE)
    eog_reject_uv: float = option(
        150.0, "Reject a trial when any EOG channel exceeds this peak-to-peak amplitude (µV).",
        bounds=POSITIVE)
    missing_eog: str = option(
        "warn", "When a recording has no EOG channel: 'warn' skips rejection with a warning, "
        "'error' stops.", allowed=("warn", "error"))
    ch_type: str = option("grad", "Sensors used for source estimation.",
                          allowed=("grad", "mag"))


@dataclass(frozen=True)
class DICSOptions:
    """Event-related DICS power in bands and windows (DESIGN 4.3 steps 4-6)."""

    min_trials_per_block: int = option(
        5, "Blocks with fewer trials left after rejection are excluded and reported.",
        bounds=AT_LEAST_1)
    bands: dict[str, list[float]] = option(
        lambda: {k: list(v) for k, v in DEFAULT_BANDS.items()},
        "Frequency bands {name: [fmin, fmax]} in Hz, 0 < fmin < fmax.", bounds=POSITIVE,
        factory=True)
    freq_step_hz: float = option(
        1.0, "Spacing (Hz) of the Morlet wavelet frequencies within each band.", bounds=POSITIVE)
    n_cycles: float = option(
        7.0, "Cycles per Morlet wavelet (capped so that a wavelet fits the epoch).",
        bounds=POSITIVE)
    window_length_ms: float = option(200.0, "Length of each analysis window (ms).",
                                     bounds=POSITIVE)
    first_window_start_ms: float = option(
        100.0, "Start of the first window (ms); every window lies within the epoch "
        "(tmin_s..tmax_s).", bounds=ANY)
    window_step_ms: float = option(100.0 / 3.0, "Step between window starts (ms).",
                                   bounds=POSITIVE)
    n_windows: int = option(22, "Number of analysis windows.", bounds=AT_LEAST_1)
    baseline_ms: list[float] = option(
        lambda: [-200.0, 0.0], "Baseline interval [start, end] (ms), start < end, within the "
        "epoch.", bounds=ANY, factory=True)
    dics_reg: float = option(
        0.2, "Tikhonov regularisation of the DICS filter (fraction of the trace; MNE's default "
        "is 0.05, see docs/meg.md).", bounds=NON_NEGATIVE)
    pick_ori: str = option(
        "normal", "DICS source orientation: the cortical normal of each grid point (from the "
        "FreeSurfer white surface) or MNE's max-power orientation (see docs/meg.md).",
        allowed=("max-power", "normal"))
    baseline_scope: str = option(
        "block", "Baseline each window is compared with: the block's own (the paper) or the "
        "mean of the run's block baselines (less noisy; see docs/meg.md).",
        allowed=("block", "run"))

    @property
    def window_starts_ms(self) -> list[float]:
        """Start (ms) of every analysis window (22 starts 100, 133.3, ..., 800 by default)."""
        return [self.first_window_start_ms + k * self.window_step_ms
                for k in range(self.n_windows)]
