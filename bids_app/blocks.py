"""Pure code: the block structure of a run, from its BIDS events (DESIGN 3).

Both modalities analyse the same blocks: a block is a run of consecutive stimuli of one condition
(10 pictures in 30 s in the paper) followed by rest. ``events.tsv`` gives one row per stimulus
with ``onset``, ``duration`` and ``trial_type`` (the condition) and, optionally, a ``block``
column. Without it, a new block starts whenever the condition changes or the gap between two
consecutive stimuli of a condition exceeds ``block_gap_s`` (:class:`DesignOptions`).

These functions take and return :class:`pandas.DataFrame` objects; reading the TSV is done by the
caller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bids_app.design import DEFAULT_CONDITIONS, DesignOptions
from bids_app.input_errors import InputDataError

__all__ = ["BLOCK_COLUMNS", "DEFAULT_CONDITIONS", "TRIAL_COLUMNS", "DesignOptions", "EventsError",
           "assign_blocks", "block_table"]

#: Columns of the trials table returned by :func:`assign_blocks`.
TRIAL_COLUMNS = ("onset", "duration", "condition", "block")
#: Columns of the blocks table returned by :func:`block_table`.
BLOCK_COLUMNS = ("condition", "block", "onset", "offset", "n_trials")


class EventsError(InputDataError):
    """The events cannot describe blocks of the configured conditions."""


def assign_blocks(events: pd.DataFrame, design: DesignOptions) -> pd.DataFrame:
    """Select the stimuli of the given conditions and label the block of each.

    Parameters
    ----------
    events : DataFrame
        BIDS events with at least ``onset`` (s), ``duration`` (s) and ``trial_type``; an optional
        ``block`` column labels blocks explicitly (any integer labels, unique within the run).
    design : DesignOptions
        ``conditions``: the ``trial_type`` values that are conditions; other rows
        (instructions, fixation, button presses) are ignored. ``block_gap_s``: without a
        ``block`` column, a gap longer than this (s) between consecutive stimuli of the same
        condition starts a new block. A change of condition always does.

    Returns
    -------
    trials : DataFrame
        One row per stimulus, sorted by onset, columns ``onset``, ``duration``, ``condition``,
        ``block`` (int; blocks numbered 1, 2, ... in time order over the run unless the events
        numbered them).

    Raises
    ------
    EventsError
        When a required column is missing, onsets are not finite, no configured condition
        occurs, or an explicit block mixes conditions.
    """
    conditions = design.conditions
    missing = [c for c in ("onset", "duration", "trial_type") if c not in events.columns]
    if missing:
        raise EventsError(
            f"events lack the column(s) {', '.join(missing)}; BIDS events need onset, duration "
            "and trial_type (the condition name)"
        )
    rows = events[events["trial_type"].astype(str).isin(list(conditions))].copy()
    if rows.empty:
        found = sorted(events["trial_type"].astype(str).unique())
        raise EventsError(
            f"no stimulus of the configured conditions ({', '.join(conditions)}); the events "
            f"have trial types {', '.join(found) or 'none'}. Set the condition names with "
            "--conditions or workflow.conditions in --config"
        )
    onsets = pd.to_numeric(rows["onset"], errors="coerce").to_numpy(dtype=float)
    durations = pd.to_numeric(rows["duration"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    if not np.all(np.isfinite(onsets)):
        raise EventsError("some stimulus onsets are not numbers ('n/a' or text)")
    order = np.argsort(onsets, kind="stable")
    trials = pd.DataFrame(
        {
            "onset": onsets[order],
            "duration": durations[order],
            "condition": rows["trial_type"].astype(str).to_numpy()[order],
        }
    )
    has_blocks = "block" in rows.columns and rows["block"].notna().all()
    if has_blocks:
        labels = pd.to_numeric(rows["block"], errors="coerce").to_numpy()[order]
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise EventsError("the 'block' column must hold whole numbers for every stimulus")
        trials["block"] = labels.astype(int)
        mixed = trials.groupby("block")["condition"].nunique()
        if (mixed > 1).any():
            bad = ", ".join(str(b) for b in mixed.index[mixed > 1])
            raise EventsError(f"block(s) {bad} mix several conditions")
    else:
        new_block = np.ones(len(trials), dtype=bool)
        if len(trials) > 1:
            same = trials["condition"].to_numpy()[1:] == trials["condition"].to_numpy()[:-1]
            gap = np.diff(trials["onset"].to_numpy()) > design.block_gap_s
            new_block[1:] = ~same | gap
        trials["block"] = np.cumsum(new_block).astype(int)
    return trials.loc[:, list(TRIAL_COLUMNS)]


def block_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Summarise the trials of each block.

    Parameters
    ----------
    trials : DataFrame
        As returned by :func:`assign_blocks`.

    Returns
    -------
    blocks : DataFrame
        One row per block in time order: ``condition``, ``block``, ``onset`` (first stimulus
        onset, s), ``offset`` (end of the last stimulus, s), ``n_trials``.
    """
    ends = trials["onset"] + trials["duration"]
    grouped = trials.assign(end=ends).groupby("block", sort=False)
    blocks = pd.DataFrame(
        {
            "condition": grouped["condition"].first(),
            "block": grouped["block"].first(),
            "onset": grouped["onset"].min(),
            "offset": grouped["end"].max(),
            "n_trials": grouped.size(),
        }
    )
    return blocks.sort_values("onset").reset_index(drop=True).loc[:, list(BLOCK_COLUMNS)]
