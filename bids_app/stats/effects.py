"""Task-dependent effects: non-overlapping bootstrap intervals (DESIGN 5.5, the paper's Table 1).

Rule, applied separately for every interval level (each effect row carries its ``ci_level``):
for a condition, a cluster, a hemisphere and a band, window ``w`` is part of an effect when

1. that condition's interval ``[low, high]`` at ``w`` overlaps the interval of *none* of the other
   conditions (``low_c > high_o`` or ``high_c < low_o`` for every other condition ``o``; with the
   paper's three tasks: "differs from both other tasks"), and
2. at least one condition has a significant cluster correlation at ``w`` (the gate).

Runs of consecutive windows (adjacent window indices) merge into one effect from the first
window's start to the last window's start plus the window length (200 ms). With a single
condition there is nothing to contrast and no effect is reported. Intervals touching at a bound
count as overlapping.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bids_app.stats.bootstrap import ci_column_prefix
from bids_app.stats.errors import GroupStatsError

LOGGER = logging.getLogger(__name__)

__all__ = ["find_effects", "find_effects_array", "effect_cells", "EFFECT_COLUMNS",
           "WINDOW_MS"]

#: Window length (ms); an effect ends at its last window's start plus this.
WINDOW_MS = 200.0
#: Columns of the effects table (DESIGN 6).
EFFECT_COLUMNS = ["condition", "cluster", "hemi", "band", "start_ms", "end_ms", "ci_level"]


def effect_cells(effects: pd.DataFrame, units: pd.DataFrame, n_bands: int) -> tuple[int, dict]:
    """How many (cluster, hemisphere, band) cells an effects table was drawn from, and per
    interval level the number of effect rows and of cells holding at least one.

    ``units`` lists the analysed (cluster, hemi) pairs (e.g. the bootstrap table; repeats are
    ignored). Returns ``(n_cells, {ci_level: (n_rows, n_cells_with_effect)})``.
    """
    n_cells = len(units[["cluster", "hemi"]].drop_duplicates()) * n_bands
    per_level = {level: (len(rows), len(rows[["cluster", "hemi", "band"]].drop_duplicates()))
                 for level, rows in effects.groupby("ci_level")}
    return n_cells, per_level


def find_effects(bootstrap: pd.DataFrame, *, ci_levels: Sequence[float],
                 conditions: Sequence[str] | None = None) -> pd.DataFrame:
    """Effects table from a bootstrap table (checked, table-level).

    Parameters
    ----------
    bootstrap : DataFrame
        Columns ``cluster, hemi, condition, band, window_start_ms, significant`` and
        ``<prefix>_low``, ``<prefix>_high`` per level (prefix from
        :func:`~bids_app.stats.bootstrap.ci_column_prefix`, e.g. ``ci99``). Every (cluster, hemi,
        band) must have every condition at every window.
    ci_levels : sequence of float
        Levels to evaluate; one set of effect rows per level.
    conditions : sequence of str, optional
        Condition order of the output; default the order of first appearance.

    Returns
    -------
    effects : DataFrame
        Columns :data:`EFFECT_COLUMNS`, ms units; sorted by level, condition, cluster, hemi,
        band, start.
    """
    need = {"cluster", "hemi", "condition", "band", "window_start_ms", "significant"}
    need |= {f"{ci_column_prefix(lv)}_{s}" for lv in ci_levels for s in ("low", "high")}
    missing = sorted(need - set(bootstrap.columns))
    if missing:
        raise GroupStatsError(f"bootstrap table lacks column(s) {', '.join(missing)}")
    if conditions is None:
        conditions = list(pd.unique(bootstrap["condition"]))
    units = bootstrap[["cluster", "hemi"]].drop_duplicates().sort_values(["cluster", "hemi"])
    units = [tuple(u) for u in units.itertuples(index=False)]
    bands = list(pd.unique(bootstrap["band"]))
    windows = np.sort(bootstrap["window_start_ms"].unique())
    full = pd.MultiIndex.from_product([range(len(units)), range(len(conditions)),
                                       range(len(bands)), range(len(windows))])
    key = pd.MultiIndex.from_arrays([
        pd.Index(units).get_indexer(pd.MultiIndex.from_frame(bootstrap[["cluster", "hemi"]])),
        pd.Index(conditions).get_indexer(bootstrap["condition"]),
        pd.Index(bands).get_indexer(bootstrap["band"]),
        pd.Index(windows).get_indexer(bootstrap["window_start_ms"])])
    table = bootstrap.set_axis(key, axis=0)
    if table.index.has_duplicates or len(table) != len(full) or (key.to_frame() < 0).any().any():
        raise GroupStatsError("bootstrap table must have exactly one row per cluster, hemi, "
                              "condition, band and window")
    table = table.reindex(full)
    shape = (len(units), len(conditions), len(bands), len(windows))
    gate = table["significant"].astype(bool).to_numpy().reshape(shape).any(axis=1)
    ci = np.stack([np.stack([table[f"{ci_column_prefix(lv)}_{s}"].to_numpy(float).reshape(shape)
                             for s in ("low", "high")]) for lv in ci_levels])
    return find_effects_array(ci, gate, ci_levels=ci_levels, units=units,
                              conditions=conditions, bands=bands, windows_ms=windows)


def find_effects_array(ci: np.ndarray, gate: np.ndarray, *, ci_levels: Sequence[float],
                       units: Sequence[tuple[int, str]], conditions: Sequence[str],
                       bands: Sequence[str], windows_ms: Sequence[float]) -> pd.DataFrame:
    """Effects from interval arrays (no checks).

    Parameters
    ----------
    ci : ndarray, shape (n_levels, 2, n_units, n_conditions, n_bands, n_windows)
        Lower (index 0) and upper (index 1) interval bounds.
    gate : ndarray of bool, shape (n_units, n_bands, n_windows)
        True where at least one condition's cluster correlation is significant.
    ci_levels : sequence of float, length n_levels
    units : sequence of (cluster, hemi), length n_units
    conditions, bands : sequence of str
    windows_ms : sequence of float, length n_windows
        Window starts (ms), ascending.

    Returns
    -------
    effects : DataFrame with columns :data:`EFFECT_COLUMNS`
    """
    n_cond = ci.shape[3]
    rows = []
    windows_ms = np.asarray(windows_ms, float)
    if n_cond < 2:
        return pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    for li, level in enumerate(ci_levels):
        low, high = ci[li, 0], ci[li, 1]            # (units, cond, bands, windows)
        # apart[u, c, o, b, w]: interval of c does not overlap interval of o
        apart = (low[:, :, None] > high[:, None, :]) | (high[:, :, None] < low[:, None, :])
        others = ~np.eye(n_cond, dtype=bool)[None, :, :, None, None]
        distinct = np.where(others, apart, True).all(axis=2) & gate[:, None]
        for u, c, b in zip(*np.nonzero(distinct.any(axis=3))):
            for first, last in _runs(distinct[u, c, b]):
                rows.append((conditions[c], units[u][0], units[u][1], bands[b],
                             windows_ms[first], windows_ms[last] + WINDOW_MS, float(level)))
    effects = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    if not effects.empty:
        effects["cluster"] = effects["cluster"].astype(int)
        effects = effects.sort_values(["ci_level", "condition", "cluster", "hemi", "band",
                                       "start_ms"], kind="stable").reset_index(drop=True)
    LOGGER.info("effects: %d row(s) over %d level(s)", len(effects), len(ci_levels))
    return effects


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True values."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))
