"""fMRI block values per parcel, their normalisation and the average per condition (DESIGN 4.2,
steps 3-6).

Timing
------
Event onsets are in seconds from the first *acquired* volume of the run (BIDS), dummy volumes
included. Volume ``k`` of the original series is taken to be acquired at ``k * TR`` (slice timing
is ignored: every slice of a volume is treated as acquired at the volume's start); volume ``j``
of the kept series is volume ``j + dummy_scans`` of the original one.

Which volumes belong to a block and to its rest
-----------------------------------------------
The BOLD response lags the stimuli, so every interval is shifted by ``hrf_delay_s`` (3 s by
default). The first volume of a block is the first one acquired at or after
``onset + hrf_delay_s``; the block takes ``n_block`` volumes from there, and its baseline is the
``n_rest`` volumes just before it.

Unless given, the two counts come from the design: a block of ``n`` stimuli lasts
``D = n * (mean stimulus-onset asynchrony)`` (the time from the first stimulus to when the next one
would come: 30 s for 10 pictures about 3 s apart), the rest ``R = C - D`` where ``C`` is the time
between the onsets of consecutive blocks; ``D`` and ``C`` are medians over the run's blocks. Then::

    n_block = round(D / TR) + 1        n_rest = round(R / TR) - 1

i.e. the volumes acquired in the *closed* delayed block interval ``[onset + d, onset + D + d]`` and
in the *open* delayed rest interval ``(onset - R + d, onset + d)`` when onsets fall on volume
times: every volume of a block-rest cycle is used exactly once. In the paper (TR 3 s, 30-s
blocks, 21-s rests): ``n_block = 10 + 1 = 11`` and ``n_rest = 7 - 1 = 6`` (11 + 6 = 17 volumes =
51 s, one cycle).

Values and normalisation
------------------------
For each block and parcel, ``value`` = mean of the block's volumes - mean of its rest volumes of
the high-pass filtered parcel time series. ``normalized`` = (``value`` - mean of ``value`` over all
blocks of all conditions of the run) / standard deviation of the run's whole filtered parcel time
series (sample standard deviation, ``ddof=1``, as MATLAB's ``std``). Parcels whose time series are
NaN (no valid grid point) stay NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..blocks import block_table
from .options import BlockOptions
from .errors import EventTimingError
from .highpass import highpass_filter
from .validation import validate_repetition_time

logger = logging.getLogger(__name__)

__all__ = [
    "BLOCK_ESTIMATE_COLUMNS",
    "VOLUME_TABLE_COLUMNS",
    "average_blocks",
    "block_estimates",
    "block_values",
    "block_volume_table",
    "design_volume_counts",
    "normalize_block_values",
]

#: Columns of the per-run output (``desc-blocks_bold.tsv``, DESIGN 6).
BLOCK_ESTIMATE_COLUMNS = ("condition", "block", "parcel", "value", "normalized")
#: Columns of :func:`block_volume_table`.
VOLUME_TABLE_COLUMNS = (
    "condition",
    "block",
    "onset",
    "rest_start",
    "rest_stop",
    "block_start",
    "block_stop",
)
_TRIAL_COLUMNS = ("onset", "duration", "condition", "block")
#: Tolerance (in volumes) when deciding whether a volume time reaches a delayed onset.
_TIME_TOLERANCE = 1e-6


def _check_trials(trials: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _TRIAL_COLUMNS if c not in trials.columns]
    if missing:
        raise EventTimingError(
            f"the trials table lacks {', '.join(missing)}; pass the output of "
            "bids_app.blocks.assign_blocks (columns onset, duration, condition, block)"
        )
    if trials.empty:
        raise EventTimingError("the trials table is empty: the run has no stimulus")
    return trials.sort_values("onset", kind="stable")


def design_volume_counts(trials: pd.DataFrame, tr: float) -> tuple[int, int]:
    """Block and rest volume counts derived from the events and the TR.

    Parameters
    ----------
    trials : DataFrame
        Stimuli of the run, as returned by :func:`bids_app.blocks.assign_blocks`.
    tr : float
        Repetition time (s).

    Returns
    -------
    n_block, n_rest : int
        ``round(D / TR) + 1`` and ``round(R / TR) - 1`` (module docstring); 11 and 6 for the
        paper's design.

    Raises
    ------
    EventTimingError
        When the run has a single block (no rest length can be derived) or the rest is too
        short for a baseline volume.
    """
    tr = validate_repetition_time(tr)
    trials = _check_trials(trials)
    durations = []
    onsets = []
    for _, group in trials.groupby("block", sort=False):
        first, last = group["onset"].min(), group["onset"].max()
        n_trials = len(group)
        if n_trials > 1:
            durations.append((last - first) * n_trials / (n_trials - 1))
        else:
            durations.append(float(group["duration"].iloc[0]))
        onsets.append(first)
    block_s = float(np.median(durations))
    if len(onsets) < 2:
        raise EventTimingError(
            "the run has a single block, so the rest length cannot be derived from the events; "
            "set rest_volumes (and block_volumes) explicitly"
        )
    cycle_s = float(np.median(np.diff(np.sort(onsets))))
    rest_s = cycle_s - block_s
    n_block = int(round(block_s / tr)) + 1
    n_rest = int(round(rest_s / tr)) - 1
    if n_rest < 1:
        raise EventTimingError(
            f"blocks last {block_s:.1f} s and start every {cycle_s:.1f} s, leaving {rest_s:.1f} s "
            f"of rest: too short for a baseline volume at TR {tr:g} s; set rest_volumes "
            "explicitly"
        )
    logger.info(
        "Design: blocks of %.1f s every %.1f s (rest %.1f s) at TR %g s -> %d block and %d rest "
        "volumes.",
        block_s,
        cycle_s,
        rest_s,
        tr,
        n_block,
        n_rest,
    )
    return n_block, n_rest


def block_volume_table(
    trials: pd.DataFrame,
    *,
    tr: float,
    n_volumes: int,
    options: BlockOptions,
) -> pd.DataFrame:
    """The kept volumes of each block and of the rest before it.

    Parameters
    ----------
    trials : DataFrame
        Stimuli of the run (:func:`bids_app.blocks.assign_blocks`), onsets in s from the first
        acquired volume (dummy volumes included).
    tr : float
        Repetition time (s).
    n_volumes : int
        Volumes kept after discarding the dummy scans.
    options : BlockOptions
        ``dummy_scans`` (volumes discarded at the start of the run), ``hrf_delay_s``
        (haemodynamic delay added to the onsets, s), ``block_volumes`` and ``rest_volumes``
        (volumes per block and per baseline; None derives them, :func:`design_volume_counts`).

    Returns
    -------
    table : DataFrame
        One row per block in time order: ``condition``, ``block``, ``onset`` (s), and half-open
        ranges ``[rest_start, rest_stop)`` and ``[block_start, block_stop)`` of indices into the
        *kept* volumes.

    Raises
    ------
    EventTimingError
        When a block starts before the first kept volume, its rest would need volumes before the
        first kept one, or a block extends past the last volume.
    """
    tr = validate_repetition_time(tr)
    trials = _check_trials(trials)
    dummy_scans, hrf_delay_s = options.dummy_scans, options.hrf_delay_s
    block_volumes, rest_volumes = options.block_volumes, options.rest_volumes
    if block_volumes is None or rest_volumes is None:
        derived_block, derived_rest = design_volume_counts(trials, tr)
        block_volumes = derived_block if block_volumes is None else block_volumes
        rest_volumes = derived_rest if rest_volumes is None else rest_volumes
    for name, count in (("block_volumes", block_volumes), ("rest_volumes", rest_volumes)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise EventTimingError(f"{name} must be a whole number >= 1, got {count!r}")
    block_volumes, rest_volumes = int(block_volumes), int(rest_volumes)
    blocks = block_table(trials)
    first_kept_s = dummy_scans * tr
    last_kept_s = (dummy_scans + n_volumes - 1) * tr
    rows = []
    for block in blocks.itertuples(index=False):
        label = f"block {block.block} ({block.condition}, onset {block.onset:g} s)"
        if block.onset < first_kept_s:
            raise EventTimingError(
                f"{label} starts before the first kept volume, acquired at {first_kept_s:g} s "
                f"({dummy_scans} dummy scan(s) x TR {tr:g} s). Event onsets must count from the "
                "first acquired volume (BIDS); if they do, lower dummy_scans"
            )
        first = int(np.ceil((block.onset + hrf_delay_s) / tr - _TIME_TOLERANCE)) - dummy_scans
        rest_start, block_stop = first - rest_volumes, first + block_volumes
        if rest_start < 0:
            raise EventTimingError(
                f"the rest before {label} needs {rest_volumes} volume(s) from "
                f"{(rest_start + dummy_scans) * tr:g} s, before the first kept volume "
                f"({first_kept_s:g} s). Lower dummy_scans or rest_volumes, or start the first "
                "block later in the run"
            )
        if block_stop > n_volumes:
            raise EventTimingError(
                f"the BOLD run is shorter than its events: {label} needs volumes up to "
                f"{(block_stop - 1 + dummy_scans) * tr:g} s but the last volume is acquired at "
                f"{last_kept_s:g} s ({n_volumes} kept + {dummy_scans} dummy volumes x TR "
                f"{tr:g} s). Check that the events belong to this run and that the BOLD file is "
                "complete"
            )
        rows.append(
            (block.condition, block.block, block.onset, rest_start, first, first, block_stop)
        )
    table = pd.DataFrame(rows, columns=list(VOLUME_TABLE_COLUMNS))
    overlap = table["rest_start"].to_numpy()[1:] < table["block_stop"].to_numpy()[:-1]
    if overlap.any():
        logger.warning(
            "The baseline of %d block(s) overlaps the previous block's volumes (%d block, %d rest "
            "volumes at TR %g s); check block_volumes / rest_volumes.",
            int(overlap.sum()),
            block_volumes,
            rest_volumes,
            tr,
        )
    return table


def block_values(time_series: pd.DataFrame, volume_table: pd.DataFrame) -> pd.DataFrame:
    """Block value per block and parcel: mean of the block minus mean of its rest.

    Parameters
    ----------
    time_series : DataFrame, shape (n_volumes, n_parcels)
        Filtered parcel time series over the kept volumes (columns = parcel names).
    volume_table : DataFrame
        As returned by :func:`block_volume_table`.

    Returns
    -------
    values : DataFrame
        Columns ``condition, block, parcel, value``; one row per block x parcel, blocks in time
        order, parcels in column order.
    """
    data = time_series.to_numpy(dtype=float)
    if volume_table["block_stop"].max() > len(data) or volume_table["rest_start"].min() < 0:
        raise EventTimingError(
            "the volume table refers to volumes outside the time series; build it with the same "
            "number of kept volumes"
        )
    values = np.array(
        [
            data[row.block_start : row.block_stop].mean(axis=0)
            - data[row.rest_start : row.rest_stop].mean(axis=0)
            for row in volume_table.itertuples(index=False)
        ]
    )
    parcels = [str(c) for c in time_series.columns]
    n_blocks, n_parcels = values.shape
    return pd.DataFrame(
        {
            "condition": np.repeat(volume_table["condition"].to_numpy(), n_parcels),
            "block": np.repeat(volume_table["block"].to_numpy(), n_parcels),
            "parcel": np.tile(parcels, n_blocks),
            "value": values.ravel(),
        }
    )


def normalize_block_values(values: pd.DataFrame, time_series: pd.DataFrame) -> pd.DataFrame:
    """Add the ``normalized`` column (per run and parcel).

    Parameters
    ----------
    values : DataFrame
        Output of :func:`block_values` for one run.
    time_series : DataFrame, shape (n_volumes, n_parcels)
        The run's filtered parcel time series (its standard deviation is the scale).

    Returns
    -------
    values : DataFrame
        Columns ``condition, block, parcel, value, normalized`` with
        ``normalized = (value - mean over blocks) / std(time series, ddof=1)`` per parcel.
    """
    scale = time_series.std(axis=0, ddof=1)
    scale.index = [str(c) for c in scale.index]
    flat = scale.index[(scale == 0).to_numpy()]
    if len(flat):
        logger.warning(
            "Parcel(s) %s have a constant time series; their normalised values are NaN.",
            ", ".join(flat),
        )
        scale = scale.replace(0.0, np.nan)
    centred = values["value"] - values.groupby("parcel", sort=False)["value"].transform("mean")
    out = values.copy()
    out["normalized"] = centred.to_numpy() / values["parcel"].map(scale).to_numpy(dtype=float)
    return out.loc[:, list(BLOCK_ESTIMATE_COLUMNS)]


def block_estimates(
    time_series: pd.DataFrame,
    trials: pd.DataFrame,
    *,
    tr: float,
    options: BlockOptions,
) -> pd.DataFrame:
    """Normalised block values of one run from its parcel time series (DESIGN 4.2, steps 3-5).

    Parameters
    ----------
    time_series : DataFrame, shape (n_volumes, n_parcels)
        Parcel time series over the kept volumes (:func:`.parcel_time_series` or
        :func:`.fsaverage_parcel_time_series`), unfiltered.
    trials : DataFrame
        Stimuli of the run (:func:`bids_app.blocks.assign_blocks`).
    tr : float
        Repetition time (s).
    options : BlockOptions
        Dummy volumes discarded before ``time_series`` starts, high-pass cut-off period (s),
        haemodynamic delay (s), volumes per block and baseline (None: from the events).

    Returns
    -------
    estimates : DataFrame
        Columns exactly ``condition, block, parcel, value, normalized``; one row per block x
        parcel.
    """
    tr = validate_repetition_time(tr)
    volume_table = block_volume_table(
        trials,
        tr=tr,
        n_volumes=len(time_series),
        options=options,
    )
    filtered = highpass_filter(time_series, tr=tr, period_s=options.highpass_period_s)
    values = block_values(filtered, volume_table)
    return normalize_block_values(values, filtered)


def average_blocks(
    estimates: pd.DataFrame, *, conditions: Sequence[str] | None = None
) -> pd.DataFrame:
    """Average the blocks of each condition (DESIGN 4.2, step 6).

    Parameters
    ----------
    estimates : DataFrame
        Output of :func:`block_estimates` (columns ``condition, block, parcel, value,
        normalized``).
    conditions : sequence of str | None
        Order of the conditions in the output (default: order of first appearance).

    Returns
    -------
    averages : DataFrame
        Columns ``condition, parcel, value, normalized, n_blocks``; one row per condition x
        parcel, parcels in their original order.
    """
    missing = [c for c in BLOCK_ESTIMATE_COLUMNS if c not in estimates.columns]
    if missing:
        raise ValueError(f"block estimates lack the column(s) {', '.join(missing)}")
    grouped = estimates.groupby(["condition", "parcel"], sort=False)
    averages = grouped[["value", "normalized"]].mean()
    averages["n_blocks"] = grouped["block"].nunique()
    averages = averages.reset_index()
    if conditions is not None:
        order = {name: i for i, name in enumerate(conditions)}
        unknown = sorted(set(averages["condition"]) - set(order))
        if unknown:
            raise ValueError(
                f"conditions {unknown} are in the estimates but not in 'conditions'"
            )
        parcel_order = {p: i for i, p in enumerate(pd.unique(estimates["parcel"]))}
        averages = averages.sort_values(
            ["condition", "parcel"],
            key=lambda col: col.map(order if col.name == "condition" else parcel_order),
        ).reset_index(drop=True)
    return averages
