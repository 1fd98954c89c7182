"""Subsampling bootstrap of bids_app.stats (DESIGN 5.4).

The bootstrap draws m = round(0.8 n) observations *without replacement*. Its intervals describe
the spread of rho over subsets of *this* sample, so they are centred on the full-sample rho and
are not calibrated for the population rho. The meaningful checks are therefore: (1) every
resample equals scipy's Spearman on the drawn subset; (2) the interval contains the full-sample
rho; (3) its width follows the subsampling theory, Var(rho_m | data) ~ (1 - m/n)/m (1 - rho^2)^2
(finite-population correction; Spearman's asymptotic variance is ~1.1x Pearson's), which a draw
with replacement or a wrong m would miss by a factor of ~2.
"""

import numpy as np
import pytest
from scipy import stats

from bids_app.stats import bootstrap_spearman_array, draw_resamples, run_group_statistics
from bids_app.stats import bootstrap
from bids_app.stats.bootstrap import resample_size
from bids_app.stats.options import GroupStatsOptions

N_OBS = 20


def _group(seed=0):
    rng = np.random.default_rng(seed)
    meg = rng.normal(size=(N_OBS, 8, 3, 2, 5))
    fmri = rng.normal(size=(N_OBS, 8, 3))
    meg[:, :4, 1] += fmri[:, :4, 1, None, None]
    labels = dict(parcels=[f"p{i}" for i in range(8)], hemis=["lh", "rh"] * 4,
                  conditions=["a", "b", "c"], bands=["alpha", "theta"],
                  windows_ms=[0.0, 100.0, 200.0, 300.0, 400.0])
    return meg, fmri, labels


def test_reproducible_with_seed_and_different_with_another():
    meg, fmri, labels = _group()
    one = run_group_statistics(meg, fmri, **labels, seed=11,
                               options=GroupStatsOptions(n_clusters=2, n_bootstrap=200))
    two = run_group_statistics(meg, fmri, **labels, seed=11,
                               options=GroupStatsOptions(n_clusters=2, n_bootstrap=200))
    other = run_group_statistics(meg, fmri, **labels, seed=12,
                                 options=GroupStatsOptions(n_clusters=2, n_bootstrap=200))
    for key in ("bootstrap", "effects", "spearman", "megttest"):
        assert one[key].equals(two[key])
    assert not np.allclose(one["bootstrap"]["ci99_low"], other["bootstrap"]["ci99_low"])
    # the full-sample statistics do not depend on the seed
    np.testing.assert_array_equal(one["bootstrap"]["rho"], other["bootstrap"]["rho"])


def test_draws_are_subsets_without_replacement():
    idx = draw_resamples(np.random.default_rng(3), N_OBS, 500, 0.8)
    assert idx.shape == (500, 16)
    assert all(len(np.unique(row)) == 16 for row in idx)
    assert idx.min() >= 0 and idx.max() < N_OBS
    # every observation is drawn about 80 % of the time
    counts = np.bincount(idx.ravel(), minlength=N_OBS) / 500
    assert np.all(np.abs(counts - 0.8) < 0.08)


def test_each_resample_equals_scipy_on_the_drawn_subset():
    """Cluster rho of resamples (pooled, as in run_group_statistics) equals spearmanr on the
    subset drawn with the same generator: fast path (continuous MEG) and rank path (ties)."""
    meg, fmri, labels = _group()
    res = run_group_statistics(meg, fmri, **labels, seed=5,
                               options=GroupStatsOptions(n_clusters=2, n_bootstrap=50))
    idx = draw_resamples(np.random.default_rng(5), N_OBS, 50, 0.8)
    np.testing.assert_array_equal(res["bootstrap_idx"], idx)
    clusters = res["clusters"]
    members = clusters.index[(clusters.cluster == 1) & (clusters.hemi == "lh")]
    x = meg[:, members].mean(axis=1).reshape(N_OBS, 1, 3, -1)
    y = fmri[:, members].mean(axis=1).reshape(N_OBS, 1, 3)
    for data in (x, np.round(x * 2)):       # second: many ties in MEG
        boot = bootstrap_spearman_array(data, y, idx, (0.99,), return_samples=True)
        for b in (0, 17, 49):
            for c in range(3):
                for f in (0, 4, 9):
                    ref = stats.spearmanr(data[idx[b], 0, c, f], y[idx[b], 0, c]).statistic
                    assert abs(boot["samples"][b, 0, c, f] - ref) < 1e-12
        q = np.quantile(boot["samples"], [0.005, 0.995], axis=0)
        np.testing.assert_allclose(boot["ci"][0], q, atol=1e-12)
    # and the table's interval for that unit is the one computed here (continuous data)
    boot = bootstrap_spearman_array(x, y, idx, (0.99, 0.999))
    row = res["bootstrap"].query("cluster == 1 and hemi == 'lh'")
    np.testing.assert_allclose(row["ci99_low"], boot["ci"][0, 0].ravel(), atol=1e-12)
    np.testing.assert_allclose(row["ci999_high"], boot["ci"][1, 1].ravel(), atol=1e-12)


def test_interval_contains_full_rho_and_width_follows_subsampling_theory():
    """200 bivariate-normal datasets (rho = 0.5, n = 20): the 99 % interval contains the
    full-sample rho in >= 98 % of datasets, low <= high always, and the median width relative to
    2 z_0.995 sqrt((1 - m/n)/m) (1 - rho_n^2) is 0.8-1.6 (observed ~1.16); halving the fraction
    (m = 10) doubles the width (theory: sqrt(0.05 / 0.0125) = 2)."""
    rng = np.random.default_rng(10)
    n_sets, rho = 100, 0.5
    z = rng.normal(size=(2, N_OBS, n_sets))
    x, y = z[0], rho * z[0] + np.sqrt(1 - rho**2) * z[1]
    widths = {}
    for fraction in (0.8, 0.5):
        idx = draw_resamples(np.random.default_rng(1), N_OBS, 1000, fraction)
        res = bootstrap_spearman_array(x[:, :, None, None], y[:, :, None], idx, (0.99,))
        low, high, full = res["ci"][0, 0, :, 0, 0], res["ci"][0, 1, :, 0, 0], res["rho"][:, 0, 0]
        assert np.all(low <= high)
        assert np.mean((low <= full) & (full <= high)) >= 0.98
        m = resample_size(N_OBS, fraction)
        predicted = 2 * 2.576 * np.sqrt((1 - m / N_OBS) / m) * (1 - full**2)
        assert 0.8 < np.median((high - low) / predicted) < 1.6
        widths[fraction] = np.mean(high - low)
    assert 1.6 < widths[0.5] / widths[0.8] < 2.5


def test_mean_parcel_rho_option():
    """'mean-parcel-rho': the cluster rho is the mean of its parcels' rho; p NaN, not
    significant; the interval brackets it."""
    meg, fmri, labels = _group()
    res = run_group_statistics(meg, fmri, **labels, seed=1,
                               options=GroupStatsOptions(n_clusters=2, n_bootstrap=100,
                                                         cluster_rho="mean-parcel-rho"))
    boot, sp, cl = res["bootstrap"], res["spearman"], res["clusters"]
    row = boot.iloc[7]
    parcels = cl.parcel[(cl.cluster == row.cluster) & (cl.hemi == row.hemi)]
    ref = sp[sp.parcel.isin(parcels) & (sp.condition == row.condition) & (sp.band == row.band)
             & (sp.window_start_ms == row.window_start_ms)].rho.mean()
    assert abs(row.rho - ref) < 1e-12
    assert boot.p.isna().all() and not boot.significant.any()
    assert (boot.ci999_low <= boot.ci99_low).all() and (boot.ci99_high <= boot.ci999_high).all()


@pytest.mark.parametrize("n_obs", [200, 319, 320])
def test_cohort_sized_resamples_equal_scipy_on_both_paths(n_obs, monkeypatch):
    """Issue 23: cohort sizes. 200 and 319 observations (m = 160 and 255, the largest m whose
    float32 pair products are exact, MAX_FAST_DRAWN) take the pair path, 320 (m = 256) the rank
    path; fMRI with ties. Each resampled rho equals spearmanr on the drawn subset to 1e-12
    (measured ~1e-16), and the pair path equals the rank path (forced) to 1e-12."""
    rng = np.random.default_rng(n_obs)
    x = rng.normal(size=(n_obs, 1, 2, 4))
    y = np.round(rng.normal(size=(n_obs, 1, 2)) * 3)
    idx = draw_resamples(np.random.default_rng(1), n_obs, 30, 0.8)
    assert (idx.shape[1] <= bootstrap.MAX_FAST_DRAWN) == (n_obs < 320)
    fast = bootstrap_spearman_array(x, y, idx, (0.99,), return_samples=True)["samples"]
    for b in (0, 29):
        for c in range(2):
            for f in range(4):
                ref = stats.spearmanr(x[idx[b], 0, c, f], y[idx[b], 0, c]).statistic
                assert abs(fast[b, 0, c, f] - ref) < 1e-12
    monkeypatch.setattr(bootstrap, "MAX_FAST_DRAWN", 0)
    ranked = bootstrap_spearman_array(x, y, idx, (0.99,), return_samples=True)["samples"]
    np.testing.assert_allclose(fast, ranked, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_obs", [2, 3, 4, 7, 10])
def test_pair_blocks_enumerate_every_pair_once(n_obs):
    """The cyclic pair order of the fast path holds each unordered pair once, and the pair
    products and signs follow it."""
    first = np.concatenate([np.arange(k) for _, _, k in bootstrap._pair_blocks(n_obs)])
    second = np.concatenate([(np.arange(k) + d) % n_obs
                             for _, d, k in bootstrap._pair_blocks(n_obs)])
    pairs = {frozenset(p) for p in zip(first.tolist(), second.tolist())}
    assert len(first) == len(pairs) == n_obs * (n_obs - 1) // 2
    assert all(len(p) == 2 for p in pairs)
    w = np.arange(1, 2 * n_obs + 1, dtype=np.float32).reshape(2, n_obs)
    s = np.ones_like(w)
    got = bootstrap._pair_products(w, s, np.empty((2, first.size), np.float32))
    np.testing.assert_array_equal(got, w[:, first] * s[:, second] - w[:, second] * s[:, first])
    x = np.random.default_rng(n_obs).normal(size=(n_obs, 3))
    np.testing.assert_array_equal(bootstrap._pair_signs(x), np.sign(x[first] - x[second]).T)
