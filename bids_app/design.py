"""The experiment's design as both modalities read it from the events (pure, standard library
only, so that the configuration can import it without the science libraries).

:class:`DesignOptions` is used by :func:`bids_app.blocks.assign_blocks` for the fMRI block values
and the MEG trials alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_app.options import POSITIVE, option

#: Condition names (``trial_type`` values) of the published picture-naming design.
DEFAULT_CONDITIONS: tuple[str, ...] = ("object_object", "action_action", "object_action")


@dataclass(frozen=True)
class DesignOptions:
    """The experiment's design as both modalities read it from the events."""

    conditions: list[str] = option(
        lambda: list(DEFAULT_CONDITIONS),
        "Condition names: the 'trial_type' values of the stimuli, in report order. Other "
        "trial types (instructions, fixation) are ignored.", factory=True)
    block_gap_s: float = option(
        8.0, "When events.tsv has no 'block' column, a gap longer than this (s) between "
        "consecutive same-condition stimuli starts a new block.", bounds=POSITIVE)
