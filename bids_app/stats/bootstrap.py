"""Subsampling bootstrap of Spearman correlations, vectorised over resamples (DESIGN 5.4).

Each resample draws ``m = round(fraction * n_obs)`` observations *without replacement*
(:func:`draw_resamples`); the statistic is recomputed on the subset and percentile intervals are
taken over the resamples.

How it is fast
--------------
The naive way (``scipy.stats.spearmanr`` per resample and feature) costs ~390 µs per
correlation. Here the Spearman rho of a subset is computed from the *full-sample* order of the
observations, with matrix products:

For a column ``x`` without ties, the rank of ``x_i`` within a subset ``S`` (indicator ``s``,
``m`` observations) is ``a_i = (m + 1) / 2 + (A s)_i / 2`` with the antisymmetric comparison
``A[i, j] = sign(x_i - x_j)``. With ``b`` the subset ranks of the fMRI values (few columns;
ranked directly, average ranks for ties) and ``w = s * 2b`` (so ``sum(w) = m (m + 1)``), the
centred cross product is

    sum_S (a_i - (m + 1)/2) b_i = t / 4,   t = w' A s = sum_{i<j} A[i, j] (w_i s_j - w_j s_i),

a bilinear form over the ``n_obs (n_obs - 1) / 2`` unordered pairs: one matrix product
``(n_boot, n_pairs) @ (n_pairs, n_features)`` per (unit, condition) gives every resample of
every MEG feature, and ``sum_S (a_i - (m + 1)/2)**2 = m (m**2 - 1) / 12``. All entries are small
integers, so the product is exact in float32 while the sum of the terms' magnitudes,
at most ``m**2 (m + 1)``, stays below 2**24 (any order of summation then adds integers exactly):
up to ``m = 255`` drawn observations (:data:`MAX_FAST_DRAWN`; 319 observations at 80 %). The
pairs are enumerated cyclically, ``(i, i + d mod n_obs)`` for ``d = 1 .. n_obs / 2``, so the
products ``w_i s_j - w_j s_i`` of a batch are built from shifted slices without gathering.
Issue 23 changed the path from the full ``n_obs**2`` form ``w' D s`` (``D = 1 + A``) to the pairs
(half the products) and raised the limit from 128 observations (cohort size: 200).

MEG columns *with* ties in the full sample (and any column when more than ``MAX_FAST_DRAWN``
observations are drawn) take the direct path:
gather the subset values of a batch of resamples, rank them along the observation axis with
:func:`scipy.stats.rankdata` (average ranks) and correlate. Both paths equal
``scipy.stats.spearmanr`` on the subset to ~1e-15.

Resamples are processed in batches so that the largest temporary stays below ``max_batch_bytes``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from bids_app.stats.errors import GroupStatsError
from bids_app.stats.spearman import spearman_array

LOGGER = logging.getLogger(__name__)

__all__ = ["draw_resamples", "resample_size", "bootstrap_spearman_array", "parcel_bootstrap",
           "ci_column_prefix", "percentile_bounds"]

#: Most observations drawn per resample for which the float32 pair path is exact: the largest
#: ``m`` with ``m**2 (m + 1) < 2**24`` (module docstring).
MAX_FAST_DRAWN = 255
#: Default bound for the largest temporary array of a batch (bytes).
MAX_BATCH_BYTES = 64 * 2**20


def resample_size(n_obs: int, fraction: float) -> int:
    """Observations drawn per resample: ``round(fraction * n_obs)`` (Python's round)."""
    return int(round(fraction * n_obs))


def draw_resamples(rng: np.random.Generator, n_obs: int, n_bootstrap: int,
                   fraction: float) -> np.ndarray:
    """Draw the observation indices of every resample, without replacement.

    Each row is a uniformly random subset of ``m = round(fraction * n_obs)`` distinct
    observations: the first ``m`` positions of an argsort of ``n_obs`` uniform numbers drawn with
    ``rng.random((n_bootstrap, n_obs))``, sorted ascending. The same generator state gives the same
    draws, so a test can reproduce them.

    Parameters
    ----------
    rng : numpy.random.Generator
        E.g. ``numpy.random.default_rng(seed)``.
    n_obs : int
        Observations available.
    n_bootstrap : int
        Resamples.
    fraction : float
        Share of the observations drawn, in (0, 1].

    Returns
    -------
    idx : ndarray of int, shape (n_bootstrap, m)
    """
    m = resample_size(n_obs, fraction)
    keys = rng.random((n_bootstrap, n_obs))
    idx = np.argsort(keys, axis=1)[:, :m]
    idx.sort(axis=1)
    return idx


def ci_column_prefix(level: float) -> str:
    """Column prefix of a confidence level: 0.99 -> ``"ci99"``, 0.999 -> ``"ci999"``."""
    return "ci" + f"{round(level * 100, 6):g}".replace(".", "")


def percentile_bounds(level: float) -> tuple[float, float]:
    """Lower and upper quantiles (fractions) of a central interval: 0.99 -> (0.005, 0.995)."""
    tail = (1.0 - level) / 2.0
    return tail, 1.0 - tail


def bootstrap_spearman_array(x: np.ndarray, y: np.ndarray, idx: np.ndarray,
                             ci_levels: Sequence[float], *,
                             groups: Sequence[Sequence[int]] | None = None,
                             return_samples: bool = False,
                             max_batch_bytes: int = MAX_BATCH_BYTES) -> dict:
    """Bootstrap percentile intervals of Spearman rho between ``x`` and ``y`` (no checks).

    Parameters
    ----------
    x : ndarray, shape (n_obs, n_units, n_conditions, n_features)
        E.g. MEG power of each parcel (or cluster) with band x window as features.
    y : ndarray, shape (n_obs, n_units, n_conditions)
        E.g. fMRI values; feature ``f`` of ``x[:, u, c]`` is correlated with ``y[:, u, c]``.
    idx : ndarray of int, shape (n_boot, m)
        Observation indices of each resample (:func:`draw_resamples`), distinct within a row.
    ci_levels : sequence of float
        Central interval levels, e.g. (0.99, 0.999).
    groups : sequence of sequences of int, optional
        If given, the statistic of group ``g`` is the mean of the units' rho in ``groups[g]``
        (full sample and every resample); otherwise each unit is its own group.
    return_samples : bool
        Also return every resample's statistic (memory: n_boot x n_groups x n_conditions x
        n_features x 8 bytes; for tests and small problems).
    max_batch_bytes : int
        Bound of the largest temporary array per batch of resamples.

    Returns
    -------
    result : dict
        ``rho`` : ndarray, shape (n_groups, n_conditions, n_features), full-sample statistic;
        ``ci`` : ndarray, shape (n_levels, 2, n_groups, n_conditions, n_features), percentile
        bounds (numpy's default linear interpolation; NaN resamples ignored);
        ``samples`` (if asked) : ndarray, shape (n_boot, n_groups, n_conditions, n_features).
    """
    n_obs, n_units, n_cond, n_feat = x.shape
    if groups is None:
        groups = [[u] for u in range(n_units)]
    n_boot = idx.shape[0]
    quantiles = [q for level in ci_levels for q in percentile_bounds(level)]
    full = spearman_array(x, y[..., None])  # (n_units, n_cond, n_feat)
    rho = np.empty((len(groups), n_cond, n_feat))
    ci = np.empty((len(ci_levels), 2, len(groups), n_cond, n_feat))
    samples = np.empty((n_boot, len(groups), n_cond, n_feat)) if return_samples else None
    selected = np.zeros((n_boot, n_obs), dtype=np.float32)
    np.put_along_axis(selected, idx, 1.0, axis=1)
    ties = _has_ties(x)  # (n_units, n_cond, n_feat)
    step = max(1, len(groups) // 10)
    for g, members in enumerate(groups):
        members = list(members)
        acc = _bootstrap_unit(x[:, members[0]], y[:, members[0]], idx, selected,
                              ties[members[0]], max_batch_bytes)
        for u in members[1:]:
            acc += _bootstrap_unit(x[:, u], y[:, u], idx, selected, ties[u], max_batch_bytes)
        if len(members) > 1:
            acc /= len(members)
        rho[g] = full[members].mean(axis=0)
        bounds = _quantiles(acc, quantiles)                  # (2 n_levels, n_cond, n_feat)
        ci[:, :, g] = bounds.reshape(len(ci_levels), 2, n_cond, n_feat)
        if samples is not None:
            samples[:, g] = np.moveaxis(acc, -1, 0)
        if (g + 1) % step == 0 or g + 1 == len(groups):
            LOGGER.info("bootstrap: %d/%d units done (%d resamples)", g + 1, len(groups), n_boot)
    out = {"rho": rho, "ci": ci}
    if samples is not None:
        out["samples"] = samples
    return out


def parcel_bootstrap(meg: np.ndarray, fmri: np.ndarray, *, n_bootstrap: int,
                     fraction: float, ci_levels: Sequence[float],
                     seed: int | None = None,
                     max_batch_bytes: int = MAX_BATCH_BYTES) -> dict:
    """Bootstrap intervals of every parcel's rho (the machinery of DESIGN 5.4 on parcels).

    Parameters
    ----------
    meg : ndarray, shape (n_obs, n_parcels, n_conditions, n_bands, n_windows)
        Normalised MEG power per observation.
    fmri : ndarray, shape (n_obs, n_parcels, n_conditions)
        Normalised fMRI block values per observation.
    n_bootstrap : int
        Resamples.
    fraction : float
        Share of the observations drawn per resample (without replacement), in (0, 1].
    ci_levels : sequence of float
        Interval levels in (0, 1).
    seed : int, optional
        Seed of ``numpy.random.default_rng``.
    max_batch_bytes : int
        Bound of the largest temporary per batch.

    Returns
    -------
    result : dict
        ``rho`` : ndarray, shape (n_parcels, n_conditions, n_bands, n_windows);
        ``ci`` : ndarray, shape (n_levels, 2, n_parcels, n_conditions, n_bands, n_windows);
        ``idx`` : ndarray, shape (n_bootstrap, m), the drawn observations.
    """
    meg = np.asarray(meg, dtype=float)
    fmri = np.asarray(fmri, dtype=float)
    if meg.ndim != 5 or fmri.ndim != 3 or meg.shape[:3] != fmri.shape:
        raise GroupStatsError(f"meg must be (n_obs, n_parcels, n_conditions, n_bands, n_windows) "
                              f"and fmri (n_obs, n_parcels, n_conditions), got {meg.shape} and "
                              f"{fmri.shape}")
    for name, a in (("meg", meg), ("fmri", fmri)):
        if not np.isfinite(a).all():
            raise GroupStatsError(f"NaN or infinite values in {name!r}")
    if not 0 < fraction <= 1 or resample_size(meg.shape[0], fraction) < 3:
        raise GroupStatsError(f"bootstrap_fraction must be in (0, 1] and draw at least 3 of the "
                              f"{meg.shape[0]} observations, got {fraction}")
    n_obs, n_parcels, n_cond, n_bands, n_windows = meg.shape
    idx = draw_resamples(np.random.default_rng(seed), n_obs, n_bootstrap, fraction)
    res = bootstrap_spearman_array(meg.reshape(n_obs, n_parcels, n_cond, -1), fmri, idx,
                                   ci_levels, max_batch_bytes=max_batch_bytes)
    shape = (n_parcels, n_cond, n_bands, n_windows)
    return {"rho": res["rho"].reshape(shape),
            "ci": res["ci"].reshape(res["ci"].shape[:2] + shape), "idx": idx}


def _has_ties(x: np.ndarray) -> np.ndarray:
    """True for columns (all axes but 0) with tied values among the observations."""
    s = np.sort(x, axis=0)
    return (np.diff(s, axis=0) == 0).any(axis=0)


def _quantiles(samples: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Quantiles along the last axis, numpy's default ("linear") definition.

    Parameters
    ----------
    samples : ndarray, shape (..., n_boot), C-contiguous
    quantiles : sequence of float in [0, 1]

    Returns
    -------
    bounds : ndarray, shape (n_quantiles, ...)

    Partitions each contiguous row once at the needed order statistics (faster than
    ``np.quantile(axis=0)`` on strided data); NaN resamples fall back to ``np.nanquantile``.
    """
    if np.isnan(samples).any():
        return np.nanquantile(samples, quantiles, axis=-1)
    n = samples.shape[-1]
    pos = (n - 1) * np.asarray(quantiles, float)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = pos - low
    part = np.partition(samples, np.unique(np.concatenate([low, high])), axis=-1)
    a, b = part[..., low], part[..., high]                  # (..., n_quantiles)
    out = np.where(frac < 0.5, a + (b - a) * frac, b - (b - a) * (1 - frac))
    return np.moveaxis(out, -1, 0)


def _pair_blocks(n_obs: int) -> list[tuple[int, int, int]]:
    """The cyclic order of every unordered pair of observations, block by block.

    Block ``(start, d, k)`` holds the pairs ``(i, i + d mod n_obs)`` for ``i < k`` at positions
    ``start + i``: ``d`` runs from 1 to ``(n_obs - 1) // 2`` with ``k = n_obs``; for even
    ``n_obs`` the half turn ``d = n_obs / 2`` has ``k = n_obs / 2``. In all
    ``n_obs (n_obs - 1) / 2`` pairs, each once. With ``x2 = concat(x, x)``, ``x2[d:d + k]`` is
    the second member of a block's pairs: a slice, so nothing is gathered.
    """
    return [(start, d, n_obs if 2 * d < n_obs else n_obs // 2)
            for d, start in zip(range(1, n_obs // 2 + 1), range(0, n_obs * n_obs, n_obs))]


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """``sign(x_i - x_j)`` of every pair of :func:`_pair_blocks`, per column.

    Parameters
    ----------
    x : ndarray, shape (n_obs, n_columns)

    Returns
    -------
    signs : ndarray of float32, shape (n_columns, n_obs (n_obs - 1) / 2), C-contiguous
    """
    n_obs = x.shape[0]
    xt = np.ascontiguousarray(x.T)
    x2 = np.concatenate([xt, xt], axis=1)
    out = np.empty((x.shape[1], n_obs * (n_obs - 1) // 2), dtype=np.float32)
    for start, d, k in _pair_blocks(n_obs):
        out[:, start:start + k] = np.sign(xt[:, :k] - x2[:, d:d + k])
    return out


def _pair_products(w: np.ndarray, s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``w_i s_j - w_j s_i`` of every pair of :func:`_pair_blocks`, per resample.

    Parameters
    ----------
    w, s : ndarray of float32, shape (nb, n_obs)
    out : ndarray of float32, shape (>= nb, n_obs (n_obs - 1) / 2)

    Returns
    -------
    products : view of ``out``, shape (nb, n_pairs)
    """
    nb, n_obs = w.shape
    out = out[:nb]
    w2 = np.concatenate([w, w], axis=1)
    s2 = np.concatenate([s, s], axis=1)
    for start, d, k in _pair_blocks(n_obs):
        block = out[:, start:start + k]
        np.multiply(w[:, :k], s2[:, d:d + k], out=block)
        block -= w2[:, d:d + k] * s[:, :k]
    return out


def _bootstrap_unit(x: np.ndarray, y: np.ndarray, idx: np.ndarray, selected: np.ndarray,
                    ties: np.ndarray, max_batch_bytes: int) -> np.ndarray:
    """Spearman rho of every resample for one unit.

    Parameters
    ----------
    x : ndarray, shape (n_obs, n_conditions, n_features)
    y : ndarray, shape (n_obs, n_conditions)
    idx : ndarray of int, shape (n_boot, m)
    selected : ndarray of float32, shape (n_boot, n_obs), 1 where drawn
    ties : ndarray of bool, shape (n_conditions, n_features)

    Returns
    -------
    rho : ndarray, shape (n_conditions, n_features, n_boot)
    """
    n_obs, n_cond, n_feat = x.shape
    n_boot, m = idx.shape
    fast_ok = m <= MAX_FAST_DRAWN
    mean_rank = (m + 1) / 2.0
    sxx_fast = m * (m * m - 1) / 12.0
    out = np.empty((n_cond, n_feat, n_boot))
    n_pairs = n_obs * (n_obs - 1) // 2
    per_resample = max(n_pairs * 4 + n_feat * 12, m * max(1, int(ties.sum())) * 8 * 3)
    batch = int(max(1, min(n_boot, max_batch_bytes // per_resample)))
    rows_all = np.arange(batch)[:, None]
    products = np.empty((batch, n_pairs), dtype=np.float32) if fast_ok else None
    for c in range(n_cond):
        xc = x[:, c, :]
        fast = ~ties[c] if fast_ok else np.zeros(n_feat, bool)
        slow = ~fast
        all_fast = bool(fast.all())
        if fast.any():
            amat = _pair_signs(xc[:, fast])                # +-1: these columns have no ties
        for start in range(0, n_boot, batch):
            stop = min(n_boot, start + batch)
            nb = stop - start
            ib = idx[start:stop]
            yb = rankdata(y[ib, c], axis=1)                  # (nb, m) subset ranks of y
            yc = yb - mean_rank
            syy = np.einsum("bm,bm->b", yc, yc)
            if fast.any():
                w = np.zeros((nb, n_obs), dtype=np.float32)
                w[rows_all[:nb], ib] = 2 * yb
                pairs = _pair_products(w, selected[start:stop], products)
                # (nb, n_pairs) @ (n_pairs, n_fast), exact integers; this orientation is 2-4x
                # faster in OpenBLAS than amat @ pairs.T at 200 observations (issue 23)
                t = (pairs @ amat.T).T                        # (n_fast, nb)
                # rho = sum_S (a - r) b / sqrt(sxx syy) with sum_S (a - r) b = t / 4
                with np.errstate(divide="ignore", invalid="ignore"):
                    scale = 0.25 / np.sqrt(sxx_fast * syy)
                if all_fast:
                    np.multiply(t, scale, out=out[c, :, start:stop])
                else:
                    out[c, fast, start:stop] = t * scale
            if slow.any():
                xb = rankdata(xc[:, slow][ib], axis=1)        # (nb, m, n_slow)
                xb -= xb.mean(axis=1, keepdims=True)
                sxy = np.einsum("bmf,bm->fb", xb, yc)
                sxx = np.einsum("bmf,bmf->fb", xb, xb)
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[c, slow, start:stop] = sxy / np.sqrt(sxx * syy)
    np.clip(out, -1.0, 1.0, out=out)
    return out
