"""The whole group level (DESIGN 5): Spearman, Ward, cluster bootstrap, effects, MEG t-tests.

:func:`run_group_statistics` checks its inputs and options, then calls the array functions of
the package. It returns the tables of DESIGN 6 as pandas DataFrames, plus arrays for the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from bids_app.stats.bootstrap import (bootstrap_spearman_array, ci_column_prefix, draw_resamples,
                                      resample_size)
from bids_app.stats.clustering import ward_clusters
from bids_app.stats.effects import find_effects_array
from bids_app.stats.errors import GroupStatsError, check_choice
from bids_app.stats.options import GroupStatsOptions
from bids_app.stats.spearman import (CORRECTIONS, significance_threshold, spearman_array,
                                     spearman_pvalue)
from bids_app.stats.ttest import paired_ttest_array

LOGGER = logging.getLogger(__name__)

__all__ = ["run_group_statistics", "CLUSTER_RHO", "HEMIS"]

#: Allowed values of ``cluster_rho``.
CLUSTER_RHO = ("pooled", "mean-parcel-rho")
#: Allowed hemisphere labels.
HEMIS = ("lh", "rh")


def run_group_statistics(meg, fmri, *, parcels: Sequence[str], hemis: Sequence[str],
                         conditions: Sequence[str], bands: Sequence[str],
                         windows_ms: Sequence[float], options: GroupStatsOptions,
                         seed: int | None = None, parcel_intervals: bool = False) -> dict:
    """MEG-fMRI fusion statistics of one task at the group level (DESIGN 5).

    1. Spearman rho and p of every parcel x (condition, band, window) over the observations;
       significant where ``p < alpha / n_windows`` (``"bonferroni-windows"``) or ``p < alpha``
       (``"none"``).
    2. Ward clustering of the parcels' rho rows, optimal leaf order, cut into ``n_clusters``.
    3. Per cluster and hemisphere (empty combinations skipped) the cluster statistic:
       ``"pooled"`` averages MEG and fMRI over the cluster's parcels in that hemisphere, then
       Spearman rho, p and significance; ``"mean-parcel-rho"`` is the mean of the parcels' rho
       (p NaN, significant False). Subsampling bootstrap of that statistic (``n_bootstrap``
       resamples of ``round(bootstrap_fraction * n_obs)`` observations without replacement,
       ``numpy.random.default_rng(seed)``), percentile intervals per level.
    4. Effects (:mod:`bids_app.stats.effects`), one set of rows per interval level. The gate
       "a significant correlation in that window" is the cluster correlation's significance for
       ``"pooled"``; for ``"mean-parcel-rho"`` (no cluster p) it is "at least one of the
       cluster's parcels in that hemisphere is significant in that condition, band and window".
    5. Paired t-tests of cluster-averaged MEG power between every pair of conditions
       (``condition_a`` before ``condition_b`` in ``conditions``), same correction.

    Parameters
    ----------
    meg : array_like, shape (n_obs, n_parcels, n_conditions, n_bands, n_windows)
        Normalised MEG band power per observation (subject x run).
    fmri : array_like, shape (n_obs, n_parcels, n_conditions)
        Normalised fMRI block values per observation.
    parcels : sequence of str, length n_parcels
    hemis : sequence of {'lh', 'rh'}, length n_parcels
    conditions : sequence of str, length n_conditions
    bands : sequence of str, length n_bands
    windows_ms : sequence of float, length n_windows
        Window starts (ms); windows are 200 ms long.
    options : GroupStatsOptions
        ``n_clusters`` (Ward clusters K, 1..n_parcels); ``n_bootstrap`` (resamples, >= 1);
        ``bootstrap_fraction`` (share of the observations drawn per resample, in (0, 1]; at
        least 3 observations); ``ci_levels`` (interval levels in (0, 1); columns
        ``ci99_low`` etc., :func:`ci_column_prefix`); ``alpha`` (significance level in
        (0, 1)); ``correction`` ('bonferroni-windows' or 'none'); ``cluster_rho`` ('pooled' or
        'mean-parcel-rho'); ``min_observations`` (fewest observations accepted).
    seed : int, optional
        Bootstrap seed; None draws fresh entropy (not reproducible).
    parcel_intervals : bool
        Also bootstrap every parcel's rho (same draws) and return ``parcel_ci``.

    Returns
    -------
    results : dict
        DataFrames ``spearman``, ``clusters``, ``bootstrap``, ``effects``, ``megttest`` (columns
        of DESIGN 6, see ``docs/statistics.md``) and arrays ``rho`` (n_parcels, n_features),
        ``linkage`` (n_parcels - 1, 4), ``labels`` (n_parcels,), ``leaf_order`` (n_parcels,),
        ``bootstrap_idx`` (n_bootstrap, m), ``cluster_rho`` (n_units, n_conditions, n_bands,
        n_windows), ``cluster_ci`` (n_levels, 2, n_units, ...) and, if asked, ``parcel_ci``.

    Raises
    ------
    GroupStatsError
        Too few observations, shape mismatches, NaN or infinite values, invalid options.
    """
    n_clusters, n_bootstrap, bootstrap_fraction = (options.n_clusters, options.n_bootstrap,
                                                   options.bootstrap_fraction)
    ci_levels, alpha, correction = options.ci_levels, options.alpha, options.correction
    cluster_rho, min_observations = options.cluster_rho, options.min_observations
    meg, fmri, ci_levels = _check(meg, fmri, parcels, hemis, conditions, bands, windows_ms,
                                  n_clusters, n_bootstrap, bootstrap_fraction, ci_levels, alpha,
                                  correction, cluster_rho, seed, min_observations)
    t0 = time.perf_counter()
    n_obs, n_parcels, n_cond, n_bands, n_windows = meg.shape
    threshold = significance_threshold(alpha, correction, n_windows)
    parcels, hemis = list(map(str, parcels)), list(map(str, hemis))
    windows = np.asarray(windows_ms, float)
    feature_shape = (n_cond, n_bands, n_windows)

    # 1. parcel Spearman
    rho = spearman_array(meg, fmri[..., None, None])                 # (P, C, B, W)
    p = spearman_pvalue(rho, n_obs)
    sig = p < threshold
    spearman_table = pd.DataFrame({
        **_label_columns([("parcel", parcels), ("condition", conditions), ("band", bands),
                          ("window_start_ms", windows)]),
        "rho": rho.ravel(), "p": p.ravel(), "significant": sig.ravel()})
    spearman_table.insert(1, "hemi", np.repeat(hemis, n_cond * n_bands * n_windows))
    LOGGER.info("Spearman: %d parcels x %d features, %d significant (p < %.3g)", n_parcels,
                rho[0].size, int(sig.sum()), threshold)

    # 2. Ward clustering
    rho_matrix = rho.reshape(n_parcels, -1)
    labels, leaf_order, linkage = ward_clusters(rho_matrix, n_clusters)
    clusters_table = pd.DataFrame({"parcel": parcels, "hemi": hemis, "cluster": labels,
                                   "leaf_order": leaf_order})

    # 3. cluster statistic and bootstrap
    hemi_arr = np.asarray(hemis)
    units, members = [], []
    for k in range(1, int(labels.max()) + 1):
        for hemi in HEMIS:
            idx = np.flatnonzero((labels == k) & (hemi_arr == hemi))
            if idx.size:
                units.append((k, hemi))
                members.append(idx)
    meg_units = np.stack([meg[:, m].mean(axis=1) for m in members], axis=1)   # (n, U, C, B, W)
    fmri_units = np.stack([fmri[:, m].mean(axis=1) for m in members], axis=1)  # (n, U, C)
    rng = np.random.default_rng(seed)
    boot_idx = draw_resamples(rng, n_obs, n_bootstrap, bootstrap_fraction)
    n_units = len(units)
    if cluster_rho == "pooled":
        boot = bootstrap_spearman_array(meg_units.reshape(n_obs, n_units, n_cond, -1),
                                        fmri_units, boot_idx, ci_levels)
        unit_p = spearman_pvalue(boot["rho"], n_obs).reshape((n_units,) + feature_shape)
        unit_sig = unit_p < threshold
        gate = unit_sig.any(axis=1)
    else:
        boot = bootstrap_spearman_array(meg.reshape(n_obs, n_parcels, n_cond, -1), fmri,
                                        boot_idx, ci_levels, groups=members)
        unit_p = np.full((n_units,) + feature_shape, np.nan)
        unit_sig = np.zeros((n_units,) + feature_shape, bool)
        gate = np.stack([sig[m].any(axis=(0, 1)) for m in members])
    unit_rho = boot["rho"].reshape((n_units,) + feature_shape)
    unit_ci = boot["ci"].reshape(boot["ci"].shape[:3] + feature_shape)
    unit_keys = _label_columns([("unit", list(range(n_units))), ("condition", conditions),
                                ("band", bands), ("window_start_ms", windows)])
    unit_index = unit_keys.pop("unit")
    bootstrap_table = pd.DataFrame({
        "cluster": np.array([u[0] for u in units], int)[unit_index],
        "hemi": np.array([u[1] for u in units])[unit_index], **unit_keys,
        "rho": unit_rho.ravel(), "p": unit_p.ravel(), "significant": unit_sig.ravel()})
    for li, level in enumerate(ci_levels):
        prefix = ci_column_prefix(level)
        bootstrap_table[f"{prefix}_low"] = unit_ci[li, 0].ravel()
        bootstrap_table[f"{prefix}_high"] = unit_ci[li, 1].ravel()

    # 4. effects
    effects = find_effects_array(unit_ci, gate, ci_levels=ci_levels, units=units,
                                 conditions=list(conditions), bands=list(bands),
                                 windows_ms=windows)

    # 5. MEG t-tests between conditions
    rows = []
    for a, b in combinations(range(n_cond), 2):
        t, tp = paired_ttest_array(meg_units[:, :, a], meg_units[:, :, b])   # (U, B, W)
        cols = _label_columns([("unit", list(range(n_units))), ("band", bands),
                               ("window_start_ms", windows)])
        ui = cols.pop("unit")
        rows.append(pd.DataFrame({
            "condition_a": conditions[a], "condition_b": conditions[b],
            "cluster": np.array([u[0] for u in units], int)[ui],
            "hemi": np.array([u[1] for u in units])[ui], **cols,
            "t": t.ravel(), "p": tp.ravel(), "significant": (tp < threshold).ravel()}))
    megttest = (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["condition_a", "condition_b", "cluster", "hemi", "band", "window_start_ms",
                 "t", "p", "significant"]))

    results = {"spearman": spearman_table, "clusters": clusters_table,
               "bootstrap": bootstrap_table, "effects": effects, "megttest": megttest,
               "rho": rho_matrix, "linkage": linkage, "labels": labels,
               "leaf_order": leaf_order, "bootstrap_idx": boot_idx, "cluster_rho": unit_rho,
               "cluster_ci": unit_ci}
    if parcel_intervals:
        parcel = bootstrap_spearman_array(meg.reshape(n_obs, n_parcels, n_cond, -1), fmri,
                                          boot_idx, ci_levels)
        results["parcel_ci"] = parcel["ci"].reshape(parcel["ci"].shape[:3] + feature_shape)
    LOGGER.info("group statistics done in %.1f s: %d cluster-hemisphere units, %d effect rows",
                time.perf_counter() - t0, n_units, len(effects))
    return results


def _label_columns(axes: list[tuple[str, Sequence]]) -> dict:
    """Columns enumerating the C-order product of labelled axes (first axis slowest)."""
    sizes = [len(v) for _, v in axes]
    grids = np.indices(sizes).reshape(len(sizes), -1)
    out = {}
    for (name, values), g in zip(axes, grids):
        out[name] = np.asarray(values)[g] if name != "unit" else g
    return out


def check_n_clusters(n_clusters: int, n_parcels: int) -> None:
    """Ward clusters need 1 to ``n_parcels`` clusters.

    Raises
    ------
    GroupStatsError
        ``n_clusters`` is not an integer in that range.
    """
    if not (isinstance(n_clusters, (int, np.integer)) and 1 <= n_clusters <= n_parcels):
        raise GroupStatsError(f"Invalid value for 'n_clusters': must be an integer between 1 and "
                              f"the number of parcels ({n_parcels}), got {n_clusters!r}")


def _check(meg, fmri, parcels, hemis, conditions, bands, windows_ms, n_clusters, n_bootstrap,
           fraction, ci_levels, alpha, correction, cluster_rho, seed, min_observations):
    """Validate inputs and options; return float arrays and the levels as a tuple."""
    check_choice("correction", correction, CORRECTIONS)
    check_choice("cluster_rho", cluster_rho, CLUSTER_RHO)
    meg = np.asarray(meg, dtype=float)
    fmri = np.asarray(fmri, dtype=float)
    if meg.ndim != 5:
        raise GroupStatsError(f"meg must have shape (n_obs, n_parcels, n_conditions, n_bands, "
                              f"n_windows), got {meg.ndim}-D shape {meg.shape}")
    if fmri.ndim != 3:
        raise GroupStatsError(f"fmri must have shape (n_obs, n_parcels, n_conditions), got "
                              f"{fmri.ndim}-D shape {fmri.shape}")
    if meg.shape[:3] != fmri.shape:
        raise GroupStatsError(f"Shape mismatch: meg {meg.shape} and fmri {fmri.shape} must agree "
                              f"on (n_obs, n_parcels, n_conditions)")
    n_obs, n_parcels, n_cond, n_bands, n_windows = meg.shape
    for name, seq, n in (("parcels", parcels, n_parcels), ("hemis", hemis, n_parcels),
                         ("conditions", conditions, n_cond), ("bands", bands, n_bands),
                         ("windows_ms", windows_ms, n_windows)):
        if len(seq) != n:
            raise GroupStatsError(f"Shape mismatch: {name} has {len(seq)} entries, the arrays "
                                  f"have {n}")
    bad = sorted({str(h) for h in hemis} - set(HEMIS))
    if bad:
        raise GroupStatsError(f"Invalid value for 'hemis': allowed are 'lh', 'rh', got "
                              f"{', '.join(map(repr, bad))}")
    if len(set(conditions)) != n_cond:
        raise GroupStatsError(f"conditions must be distinct, got {list(conditions)}")
    if n_obs < min_observations:
        raise GroupStatsError(f"Too few observations: {n_obs}, the group level needs at least "
                              f"min_observations={min_observations} (subject x run pairs with "
                              f"both MEG and fMRI)")
    for name, a in (("meg", meg), ("fmri", fmri)):
        if np.isnan(a).any():
            raise GroupStatsError(f"NaN values in {name!r} ({int(np.isnan(a).sum())} of "
                                  f"{a.size}); every observation needs every value")
        if not np.isfinite(a).all():
            raise GroupStatsError(f"Infinite values in {name!r}")
    check_n_clusters(n_clusters, n_parcels)
    if not (isinstance(n_bootstrap, (int, np.integer)) and n_bootstrap >= 1):
        raise GroupStatsError(f"Invalid value for 'n_bootstrap': must be a positive integer, got "
                              f"{n_bootstrap!r}")
    if not (0 < fraction <= 1) or resample_size(n_obs, fraction) < 3:
        raise GroupStatsError(f"Invalid value for 'bootstrap_fraction': must be in (0, 1] and "
                              f"draw at least 3 of the {n_obs} observations, got {fraction!r}")
    ci_levels = tuple(float(c) for c in ci_levels)
    if not ci_levels or any(not 0 < c < 1 for c in ci_levels):
        raise GroupStatsError(f"Invalid value for 'ci_levels': each level must be in (0, 1), got "
                              f"{list(ci_levels)}")
    if len({ci_column_prefix(c) for c in ci_levels}) != len(ci_levels):
        raise GroupStatsError(f"ci_levels must be distinct, got {list(ci_levels)}")
    if not 0 < alpha < 1:
        raise GroupStatsError(f"Invalid value for 'alpha': must be in (0, 1), got {alpha!r}")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise GroupStatsError(f"Invalid value for 'seed': must be an integer or None, got "
                              f"{seed!r}")
    return meg, fmri, ci_levels
