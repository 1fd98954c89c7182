"""Settings of the fMRI steps (DESIGN 4.2), one frozen object per step, each default written once.

:class:`BlockOptions` (block values, :func:`bids_app.fmri.block_estimates.block_estimates`) and
:class:`RegistrationOptions` (how BOLD reaches the cortical surface). The ``[fmri]`` section of
the configuration is made of their fields (:mod:`bids_app.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_app.options import AT_LEAST_1, NON_NEGATIVE, POSITIVE, Range, option


@dataclass(frozen=True)
class BlockOptions:
    """Block values of each run from its parcel time series (DESIGN 4.2 steps 3-5)."""

    dummy_scans: int = option(5, "Volumes discarded at the start of each run.",
                              bounds=NON_NEGATIVE)
    highpass_period_s: float = option(
        510.0, "High-pass cut-off period (s) of the discrete-cosine drift basis (SPM).",
        bounds=POSITIVE)
    hrf_delay_s: float = option(
        3.0, "Delay (s) added to block onsets and ends when choosing the volumes of a block and "
        "of the rest before it, to follow the haemodynamic lag.", bounds=NON_NEGATIVE)
    block_volumes: int | None = option(
        None, "Volumes averaged per block. Default: derived from the events and TR (11 in the "
        "paper).", bounds=AT_LEAST_1)
    rest_volumes: int | None = option(
        None, "Rest volumes before each block used as its baseline. Default: derived from the "
        "events and TR (6 in the paper).", bounds=AT_LEAST_1)


@dataclass(frozen=True)
class RegistrationOptions:
    """How each BOLD run reaches the cortical surface (DESIGN 4.2 steps 1-2)."""

    registration: str = option(
        "auto", "EPI-to-T1w registration: 'bbregister' (FreeSurfer), 'ants' (rigid mutual "
        "information, ANTsPy), 'auto' (bbregister when FreeSurfer is installed, else ants).",
        allowed=("auto", "bbregister", "ants"))
    projection_fraction: float = option(
        0.5, "Where in the cortical ribbon BOLD is sampled (0 = white, 1 = pial).",
        bounds=Range(0, 1))
    coregistration_init: str = option(
        "header", "Start of the ANTs EPI-to-T1w registration: 'header' (same session, scanner "
        "alignment) or 'center-of-mass' (T1w and BOLD from different sessions).",
        allowed=("header", "center-of-mass"))
