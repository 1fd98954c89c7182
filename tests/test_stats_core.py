"""Spearman, Ward clustering, paired t-tests and input checks of bids_app.stats (DESIGN 5).

Known answers come from scipy itself: ``scipy.stats.spearmanr``, ``scipy.cluster.hierarchy`` and
``scipy.stats.ttest_rel``. Tolerances: 1e-12 for rho and p (both are a few floating-point
operations from the same ranks; observed differences are ~1e-16), 1e-10 for t and its p.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.cluster import hierarchy

from bids_app.stats import (GroupStatsError, paired_ttest_array, run_group_statistics, spearman,
                            ward_clusters)
from bids_app.stats.options import GroupStatsOptions
from bids_app.stats.spearman import rank_columns

N_OBS = 20


def _scipy_columns(x, y):
    out = [stats.spearmanr(x[:, j], y[:, j]) for j in range(x.shape[1])]
    return np.array([r.statistic for r in out]), np.array([r.pvalue for r in out])


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_equals_scipy(ties):
    """rho and p equal scipy.stats.spearmanr per column; ties use average ranks in both."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N_OBS, 300))
    y = rng.normal(size=(N_OBS, 300)) + 0.5 * x
    if ties:
        x, y = np.round(x), np.round(y * 2)
        assert any(len(np.unique(x[:, j])) < N_OBS for j in range(x.shape[1]))
    rho, p = spearman(x, y)
    ref_rho, ref_p = _scipy_columns(x, y)
    np.testing.assert_allclose(rho, ref_rho, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, ref_p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [8, 1000, 2**24])
def test_rank_columns_equals_rankdata(chunk_bytes):
    """The blocked ranking of the Spearman kernel (issue 23) gives rankdata(axis=0) exactly,
    ties included, whatever the block size (1 column, several, all)."""
    x = np.round(np.random.default_rng(2).normal(size=(N_OBS, 3, 5, 7)) * 2)
    np.testing.assert_array_equal(rank_columns(x, chunk_bytes), stats.rankdata(x, axis=0))


def test_spearman_broadcasts_fmri_over_features():
    """MEG (n, parcels, bands) against fMRI (n, parcels, 1) equals the column-wise answer."""
    rng = np.random.default_rng(2)
    meg = rng.normal(size=(N_OBS, 4, 6))
    fmri = rng.normal(size=(N_OBS, 4, 1))
    rho, _ = spearman(meg, fmri)
    for parcel in range(4):
        ref, _ = _scipy_columns(meg[:, parcel], np.repeat(fmri[:, parcel], 6, axis=1))
        np.testing.assert_allclose(rho[parcel], ref, atol=1e-12)


def test_ward_equals_scipy():
    """Labels, leaf order and linkage are those of linkage + optimal_leaf_ordering + fcluster."""
    rng = np.random.default_rng(3)
    rho = np.tanh(rng.normal(size=(40, 66)) + np.repeat(rng.normal(size=(4, 66)), 10, axis=0))
    labels, position, linkage = ward_clusters(rho, 5)
    ref = hierarchy.optimal_leaf_ordering(hierarchy.linkage(rho, "ward", metric="euclidean"),
                                          rho)
    np.testing.assert_array_equal(linkage, ref)
    np.testing.assert_array_equal(labels, hierarchy.fcluster(ref, 5, criterion="maxclust"))
    np.testing.assert_array_equal(np.argsort(position), hierarchy.leaves_list(ref))
    assert labels.min() == 1 and labels.max() == 5


def test_paired_ttest_equals_scipy():
    """t and p of every column equal scipy.stats.ttest_rel (1e-10)."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(N_OBS, 5, 7))
    b = a + rng.normal(0.3, 1.0, size=a.shape)
    t, p = paired_ttest_array(a, b)
    ref = stats.ttest_rel(a, b, axis=0)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-10, atol=1e-10)


def _inputs(n_obs=N_OBS, n_parcels=6, rng=None):
    rng = rng or np.random.default_rng(5)
    meg = rng.normal(size=(n_obs, n_parcels, 3, 2, 4))
    fmri = rng.normal(size=(n_obs, n_parcels, 3))
    labels = dict(parcels=[f"p{i}" for i in range(n_parcels)],
                  hemis=["lh", "rh"] * (n_parcels // 2), conditions=["a", "b", "c"],
                  bands=["alpha", "theta"], windows_ms=[0.0, 100.0, 200.0, 300.0])
    return meg, fmri, labels


def test_megttest_table_matches_scipy_on_cluster_means():
    """The megttest rows are ttest_rel of the cluster-hemisphere averaged MEG power."""
    meg, fmri, labels = _inputs()
    res = run_group_statistics(meg, fmri, **labels, seed=0,
                               options=GroupStatsOptions(n_clusters=2, n_bootstrap=20))
    clusters = res["clusters"]
    row = res["megttest"].iloc[9]
    members = clusters.index[(clusters.cluster == row.cluster) & (clusters.hemi == row.hemi)]
    ci = [labels["conditions"].index(row.condition_a), labels["conditions"].index(row.condition_b)]
    b, w = labels["bands"].index(row.band), labels["windows_ms"].index(row.window_start_ms)
    x = meg[:, members][:, :, :, b, w].mean(axis=1)
    ref = stats.ttest_rel(x[:, ci[0]], x[:, ci[1]])
    assert abs(row.t - ref.statistic) < 1e-10 and abs(row.p - ref.pvalue) < 1e-10
    assert list(res["megttest"].columns) == ["condition_a", "condition_b", "cluster", "hemi",
                                             "band", "window_start_ms", "t", "p", "significant"]


def test_output_columns_contract():
    """Tables have the columns of DESIGN 6 (bootstrap also p and significant)."""
    meg, fmri, labels = _inputs()
    res = run_group_statistics(meg, fmri, **labels, seed=0,
                               options=GroupStatsOptions(n_clusters=3, n_bootstrap=30))
    assert list(res["spearman"].columns) == ["parcel", "hemi", "condition", "band",
                                             "window_start_ms", "rho", "p", "significant"]
    assert list(res["clusters"].columns) == ["parcel", "hemi", "cluster", "leaf_order"]
    assert list(res["bootstrap"].columns) == [
        "cluster", "hemi", "condition", "band", "window_start_ms", "rho", "p", "significant",
        "ci99_low", "ci99_high", "ci999_low", "ci999_high"]
    assert list(res["effects"].columns) == ["condition", "cluster", "hemi", "band", "start_ms",
                                            "end_ms", "ci_level"]
    assert isinstance(res["linkage"], np.ndarray) and res["rho"].shape == (6, 24)
    # the spearman table is the rho matrix, features condition-major, then band, then window
    np.testing.assert_array_equal(res["spearman"]["rho"].to_numpy().reshape(6, 24), res["rho"])
    first = res["spearman"].iloc[:9]
    assert list(first.window_start_ms) == [0, 100, 200, 300] * 2 + [0]
    assert list(first.band) == ["alpha"] * 4 + ["theta"] * 4 + ["alpha"]


@pytest.mark.parametrize(("change", "message"), [
    ({"n_obs": 4}, "Too few observations"),
    ({"nan": "meg"}, "NaN values in 'meg'"),
    ({"nan": "fmri"}, "NaN values in 'fmri'"),
    ({"cluster_rho": "x"}, "Invalid value for 'cluster_rho': allowed are 'pooled', "
                           "'mean-parcel-rho', got 'x'"),
    ({"correction": "fdr"}, "Invalid value for 'correction': allowed are 'bonferroni-windows', "
                            "'none', got 'fdr'"),
    ({"n_clusters": 7}, "n_clusters"),
    ({"ci_levels": (0.99, 1.5)}, "ci_levels"),
    ({"bootstrap_fraction": 0.0}, "bootstrap_fraction"),
    ({"fmri_shape": True}, "Shape mismatch"),
    ({"hemis": ["lh", "xx"] * 3}, "Invalid value for 'hemis'"),
])
def test_errors_name_the_issue(change, message):
    """Bad inputs raise GroupStatsError (a ValueError) whose message names the problem."""
    meg, fmri, labels = _inputs(n_obs=change.get("n_obs", N_OBS))
    if change.get("nan") == "meg":
        meg[3, 1, 0, 0, 0] = np.nan
    if change.get("nan") == "fmri":
        fmri[0, 0, 0] = np.nan
    if change.get("fmri_shape"):
        fmri = fmri[:, :5]
    if "hemis" in change:
        labels["hemis"] = change["hemis"]
    options = {k: v for k, v in change.items()
               if k in ("cluster_rho", "correction", "n_clusters", "ci_levels",
                        "bootstrap_fraction")}
    with pytest.raises(GroupStatsError, match=message.replace("(", r"\(")) as info:
        run_group_statistics(meg, fmri, **labels, seed=0,
                             options=GroupStatsOptions(n_bootstrap=10,
                                                       **{"n_clusters": 2, **options}))
    assert isinstance(info.value, ValueError)
