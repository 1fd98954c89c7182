"""Maxwell filtering with tSSS (DESIGN 4.3 step 1), with MNE's implementation.

:func:`tsss` detects bad channels (:func:`mne.preprocessing.find_bad_channels_maxwell`), then
runs :func:`mne.preprocessing.maxwell_filter` with the fine-calibration and cross-talk files of
the system. A recording already processed by MaxFilter (or MNE) is returned unchanged: SSS must
not be applied twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np

from bids_app.meg.errors import CalibrationError, NoSensorsError
from bids_app.meg.options import MaxwellOptions

LOGGER = logging.getLogger(__name__)

__all__ = ["MaxwellResult", "check_calibration", "is_sss_processed", "parse_origin", "tsss"]


@dataclass
class MaxwellResult:
    """What :func:`tsss` did."""

    raw: mne.io.BaseRaw
    applied: bool
    reason: str = ""
    noisy: list[str] = field(default_factory=list)
    flat: list[str] = field(default_factory=list)
    origin_mm: tuple[float, float, float] | None = None

    def summary(self) -> dict:
        """JSON-ready summary for the report."""
        return {"applied": self.applied, "reason": self.reason, "noisy": list(self.noisy),
                "flat": list(self.flat),
                "origin_mm": None if self.origin_mm is None else list(self.origin_mm)}


def is_sss_processed(info: mne.Info) -> bool:
    """True when ``info["proc_history"]`` records a Maxwell filtering (SSS or tSSS)."""
    for entry in info.get("proc_history") or []:
        sss = entry.get("max_info", {}).get("sss_info", {})
        if sss:
            return True
    return False


def parse_origin(origin: str) -> str | tuple[float, float, float]:
    """``"auto"`` or ``"x,y,z"`` in mm → ``"auto"`` or a tuple in m (MNE's unit)."""
    text = str(origin).strip()
    if text == "auto":
        return "auto"
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    try:
        values = tuple(float(p) / 1000.0 for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ValueError(f"Invalid value for 'origin': allowed are 'auto' or 'x,y,z' in mm, "
                         f"got {origin!r}.")
    return values


def _normalise_name(name: str) -> str:
    return name.replace(" ", "")


def check_calibration(info: mne.Info, calibration: str | Path | None) -> None:
    """Refuse a fine-calibration file written for another MEG system.

    The file lists the sensors it calibrates; they must cover this recording's MEG channels
    (MaxFilter writes ``MEG0113``, older files ``MEG 0113``: both accepted).
    """
    if calibration is None:
        return
    try:
        cal = mne.preprocessing.read_fine_calibration(calibration)
    except Exception as err:  # noqa: BLE001 - any reader failure means an unusable file
        raise CalibrationError(f"the fine-calibration file {calibration} cannot be read "
                               f"({err}); give the system's sss_cal.dat.") from err
    listed = {_normalise_name(n) for n in cal["ch_names"]}
    meg = [info["ch_names"][i] for i in mne.pick_types(info, meg=True, ref_meg=False, exclude=[])]
    missing = [n for n in meg if _normalise_name(n) not in listed]
    if missing:
        raise CalibrationError(
            f"the fine-calibration file {calibration} does not belong to this MEG system: "
            f"{len(missing)} of {len(meg)} MEG channels are not in it (e.g. {missing[0]}). "
            "Use the calibration file of the system the data were recorded on."
        )


def tsss(
    raw: mne.io.BaseRaw,
    options: MaxwellOptions,
    *,
    calibration: str | Path | None = None,
    cross_talk: str | Path | None = None,
    coord_frame: str = "head",
    regularize: str | None = "in",
    skip_if_processed: bool = True,
) -> MaxwellResult:
    """Maxwell-filter a recording with temporal extension (tSSS).

    Parameters
    ----------
    raw : Raw
        Loaded recording (not modified).
    options : MaxwellOptions
        ``st_duration_s`` (tSSS buffer, s; None gives plain SSS), ``st_correlation`` (tSSS
        subspace correlation limit), ``origin`` (expansion origin, "auto" fits a sphere to the
        head shape, else "x,y,z" in mm in ``coord_frame``; :func:`parse_origin`) and
        ``find_bad_channels`` (detect noisy and flat channels first; they are added to
        ``info["bads"]`` and reconstructed by SSS). ``maxfilter`` is the caller's to check.
    calibration, cross_talk : path | None
        Fine-calibration (``.dat``) and cross-talk (``.fif``) files of the system.
    coord_frame : "head" | "meg"
        Frame of the origin ("meg" for empty-room recordings).
    regularize : "in" | None
        Regularisation of the internal basis (MaxFilter ``-regularize in``).
    skip_if_processed : bool
        Return the data unchanged when they already are SSS-processed.
    """
    if not len(mne.pick_types(raw.info, meg=True, ref_meg=False, exclude=[])):
        raise NoSensorsError("the recording has no MEG channels; Maxwell filtering needs them.")
    if skip_if_processed and is_sss_processed(raw.info):
        LOGGER.info("Maxwell filter: skipped, the recording already is SSS-processed")
        return MaxwellResult(raw=raw, applied=False,
                             reason="already SSS-processed (proc_history)")
    check_calibration(raw.info, calibration)
    raw = raw.copy().load_data()
    noisy, flat = [], []
    kwargs = dict(calibration=calibration, cross_talk=cross_talk,
                  origin=parse_origin(options.origin), coord_frame=coord_frame)
    st_duration = options.st_duration_s
    if options.find_bad_channels:
        noisy, flat = mne.preprocessing.find_bad_channels_maxwell(
            raw, **kwargs, verbose="error")[:2]
        raw.info["bads"] = sorted(set(raw.info["bads"]) | set(noisy) | set(flat))
        LOGGER.info("Maxwell filter: %d noisy and %d flat channels marked bad", len(noisy),
                    len(flat))
    try:
        out = mne.preprocessing.maxwell_filter(
            raw, **kwargs, st_duration=st_duration, st_correlation=options.st_correlation,
            regularize=regularize, bad_condition="warning", verbose="error")
    except (ValueError, RuntimeError) as err:
        if "calibration" in str(err).lower() or "cross" in str(err).lower():
            raise CalibrationError(f"Maxwell filtering failed: {err}. Check that the "
                                   "calibration and cross-talk files are this system's.") from err
        raise
    used = out.info["proc_history"][0]["max_info"]["sss_info"].get("origin")
    origin_mm = None if used is None else tuple(float(v) * 1000.0 for v in np.ravel(used)[:3])
    LOGGER.info("Maxwell filter: %s applied", "tSSS" if st_duration else "SSS")
    return MaxwellResult(raw=out, applied=True, noisy=list(noisy), flat=list(flat),
                         origin_mm=origin_mm)
