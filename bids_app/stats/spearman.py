"""Spearman rank correlation over the observations, vectorised (DESIGN 5.2).

Three layers: :func:`spearman` checks its arguments, :func:`spearman_array` works on arrays of
any shape (the observations on axis 0), and :func:`_pearson_of_ranks` is the kernel. The result
equals :func:`scipy.stats.spearmanr` (average ranks for ties, two-sided p from Student's t with
``n - 2`` degrees of freedom) to about 1e-15, without a Python loop over the features.

Why the kernel is the app's own (issue 22; ``tests/test_field_libraries.py``,
``benchmarks/bench_field_libraries.py``): ``scipy.stats.spearmanr`` of two 2-D arrays correlates
every column with every other, so column-wise it needs a loop, 8-135x slower at the group
level's sizes (20-200 observations x 59,400 or 158,400 columns). ``scipy.stats.pearsonr`` of
the ranks with ``axis=0`` gives the same rho (to 6e-16) and p (to 3e-14 relative; it takes p from
the beta distribution, ``spearmanr`` and this module from Student's t) but took 1.1-2.2x the
time of this kernel at those six sizes (once 0.83x at 20 x 59,400 in a noisier run) with the
same peak memory (set by the ranking, which takes most of the time at 200 observations), and its
``axis`` argument needs scipy 1.13 (the app supports 1.11).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import special
from scipy.stats import rankdata

from bids_app.stats.errors import GroupStatsError

LOGGER = logging.getLogger(__name__)

__all__ = ["spearman", "spearman_array", "spearman_pvalue", "significance_threshold",
           "rank_columns"]

#: Allowed values of the multiple-comparison ``correction`` option.
CORRECTIONS = ("bonferroni-windows", "none")


def spearman(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho and two-sided p of ``x`` against ``y`` along axis 0, with checks.

    Parameters
    ----------
    x : array_like, shape (n_obs, ...)
        First variable; every column (all axes but the first) is one test.
    y : array_like, shape (n_obs, ...)
        Second variable, broadcastable to ``x`` (e.g. fMRI values with singleton band/window
        axes against MEG band power).

    Returns
    -------
    rho : ndarray, shape broadcast(x, y).shape[1:]
        Spearman correlation; NaN where either variable is constant.
    p : ndarray, same shape as ``rho``
        Two-sided p-value, as :func:`scipy.stats.spearmanr`.

    Raises
    ------
    GroupStatsError
        Fewer than 3 observations, different numbers of observations, non-finite values.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise GroupStatsError(f"x and y need the same number of observations on axis 0, got "
                              f"shapes {x.shape} and {y.shape}")
    if x.shape[0] < 3:
        raise GroupStatsError(f"Spearman correlation needs at least 3 observations, got "
                              f"{x.shape[0]}")
    for name, a in (("x", x), ("y", y)):
        if not np.isfinite(a).all():
            raise GroupStatsError(f"NaN or infinite values in {name!r}")
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError as err:
        raise GroupStatsError(f"x and y shapes do not broadcast: {x.shape} and {y.shape}") from err
    rho = spearman_array(x, y)
    return rho, spearman_pvalue(rho, x.shape[0])


def spearman_array(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho along axis 0 (no checks).

    Ranks each column once (:func:`scipy.stats.rankdata`, average ranks for ties,
    :func:`rank_columns`), then takes the Pearson correlation of the ranks.

    Parameters
    ----------
    x : ndarray, shape (n_obs, ...)
    y : ndarray, shape (n_obs, ...), broadcastable to ``x``

    Returns
    -------
    rho : ndarray, shape broadcast(x, y).shape[1:]
    """
    return _pearson_of_ranks(rank_columns(x), rank_columns(y))


def rank_columns(x: np.ndarray, chunk_bytes: int = 16 * 2**20) -> np.ndarray:
    """Average ranks along axis 0, as ``scipy.stats.rankdata(x, axis=0)`` (identical values).

    Ranks blocks of columns made contiguous along the observations: at the cohort size of
    issue 23 (200 observations x 158,400 columns) 5x faster than ``rankdata(x, axis=0)`` on the
    strided columns, with temporaries bounded by ``chunk_bytes`` instead of several copies of
    ``x``.

    Parameters
    ----------
    x : ndarray, shape (n_obs, ...)
    chunk_bytes : int
        Size of the block of columns ranked at once (float64 bytes).

    Returns
    -------
    ranks : ndarray of float, shape x.shape
    """
    flat = x.reshape(x.shape[0], -1)
    ranks = np.empty(flat.shape)
    cols = max(1, chunk_bytes // (8 * max(1, flat.shape[0])))
    for start in range(0, flat.shape[1], cols):
        block = np.ascontiguousarray(flat[:, start:start + cols].T)
        ranks[:, start:start + cols] = rankdata(block, axis=1).T
    return ranks.reshape(x.shape)


def _pearson_of_ranks(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation along axis 0 of already ranked data, clipped to [-1, 1]."""
    rx = rx - rx.mean(axis=0)
    ry = ry - ry.mean(axis=0)
    sxy = np.sum(rx * ry, axis=0)
    sxx = np.einsum("i...,i...->...", rx, rx)
    syy = np.einsum("i...,i...->...", ry, ry)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = sxy / np.sqrt(sxx * syy)
    return np.clip(rho, -1.0, 1.0)


def spearman_pvalue(rho: np.ndarray, n_obs: int) -> np.ndarray:
    """Two-sided p of Spearman rho from Student's t with ``n_obs - 2`` degrees of freedom.

    Same formula as :func:`scipy.stats.spearmanr`:
    ``t = rho * sqrt(dof / ((rho + 1) (1 - rho)))``, ``p = 2 * stdtr(dof, -|t|)``.

    Parameters
    ----------
    rho : ndarray, any shape
    n_obs : int
        Number of observations the correlations were computed over.

    Returns
    -------
    p : ndarray, same shape as ``rho`` (NaN where ``rho`` is NaN)
    """
    rho = np.asarray(rho, dtype=float)
    dof = n_obs - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt((dof / ((rho + 1.0) * (1.0 - rho))).clip(0))
    return 2 * special.stdtr(dof, -np.abs(t))


def significance_threshold(alpha: float, correction: str, n_windows: int) -> float:
    """p threshold: ``alpha / n_windows`` for ``"bonferroni-windows"``, ``alpha`` for ``"none"``.

    DESIGN 5.2: p < 0.05 Bonferroni-corrected over the 22 windows.
    """
    if correction == "bonferroni-windows":
        return alpha / n_windows
    if correction == "none":
        return alpha
    listed = ", ".join(repr(c) for c in CORRECTIONS)
    raise GroupStatsError(f"Invalid value for 'correction': allowed are {listed}, got "
                          f"{correction!r}")
