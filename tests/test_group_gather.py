"""Gathering participant outputs into group observations (DESIGN 5.1 and 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bids_app.errors import BadDataError, MissingInputError
from bids_app.io.derivatives import participant_path, write_table
from bids_app.io.group import gather
from bids_app.options import as_dict
from bids_app.stats.options import GroupStatsOptions

CONDS = ["a", "b"]
BANDS = ["alpha", "theta"]
WINDOWS = [100.0, 100.0 + 100 / 3]
PARCELS = pd.DataFrame({"index": [0, 1, 2], "name": ["p-lh", "q-rh", "x-lh"],
                        "hemi": ["lh", "rh", "lh"], "n_vertices": [10, 10, 10],
                        "included": [True, True, False]})


def _write_run(out, sub, run, rng, *, session=None, drop_band=False):
    ent = {"sub": sub, "ses": session, "task": "t", "run": run, "atlas": "x"}
    rows = [(c, b, p, rng.normal()) for c in CONDS for b in (1, 2) for p in ("p-lh", "q-rh")]
    bold = pd.DataFrame(rows, columns=["condition", "block", "parcel", "value"])
    bold["normalized"] = bold["value"] * 2
    write_table(bold, participant_path(out, {**ent, "desc": "blocks"}, "func", "bold", ".tsv"),
                description="x")
    rows = [(c, blk, band, w, p, rng.normal()) for c in CONDS for blk in (1, 2)
            for band in BANDS[: 1 if drop_band else 2] for w in WINDOWS for p in ("p-lh", "q-rh")]
    meg = pd.DataFrame(rows, columns=["condition", "block", "band", "window_start_ms", "parcel",
                                      "relchange"])
    meg["normalized"] = meg["relchange"] + 1
    write_table(meg, participant_path(out, {**ent, "desc": "dics"}, "meg", "meg", ".tsv.gz"),
                description="x")
    return bold, meg


def test_observations_are_block_averages(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for sub in ("01", "02", "03"):
        for run in ("1", "2"):
            written[(sub, run)] = _write_run(tmp_path, sub, run, rng)
    data = gather(tmp_path, task="t", atlas="x", conditions=CONDS, bands=BANDS,
                  windows_ms=WINDOWS, parcel_table=PARCELS, min_observations=5)
    assert data.meg.shape == (6, 2, 2, 2, 2) and data.fmri.shape == (6, 2, 2)
    assert data.parcels == ["p-lh", "q-rh"] and data.hemis == ["lh", "rh"]
    assert data.observations[["subject", "run"]].values.tolist()[:2] == [["01", "1"], ["01", "2"]]
    bold, meg = written[("02", "2")]
    i = 3
    expected = bold[(bold.condition == "b") & (bold.parcel == "q-rh")].normalized.mean()
    assert data.fmri[i, 1, 1] == pytest.approx(expected, rel=1e-9)
    sel = meg[(meg.condition == "a") & (meg.parcel == "p-lh") & (meg.band == "theta")
              & (meg.window_start_ms == WINDOWS[1])]
    assert data.meg[i, 0, 0, 1, 1] == pytest.approx(sel.normalized.mean(), rel=1e-9)
    assert not np.isnan(data.meg).any()
    assert set(data.meg_table.columns) == {"subject", "session", "run", "condition", "band",
                                           "window_start_ms", "parcel", "value"}


def test_too_few_observations(tmp_path):
    rng = np.random.default_rng(0)
    _write_run(tmp_path, "01", "1", rng)
    with pytest.raises(BadDataError, match="Only 1 .* at least 5"):
        gather(tmp_path, task="t", atlas="x", conditions=CONDS, bands=BANDS, windows_ms=WINDOWS,
               parcel_table=PARCELS, min_observations=5)


def test_mismatched_participants_named(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("01", "02", "03"):
        _write_run(tmp_path, sub, "1", rng, drop_band=(sub == "02"))
    with pytest.raises(BadDataError, match="sub-02.*no values for band theta"):
        gather(tmp_path, task="t", atlas="x", conditions=CONDS, bands=BANDS, windows_ms=WINDOWS,
               parcel_table=PARCELS, min_observations=3)


def test_no_outputs(tmp_path):
    with pytest.raises(MissingInputError, match="No participant outputs for task 't'"):
        gather(tmp_path, task="t", atlas="x", conditions=CONDS, bands=BANDS, windows_ms=WINDOWS,
               parcel_table=PARCELS, min_observations=5)


@pytest.mark.parametrize("correction, cluster_rho", [("bonferroni-windows", "pooled"),
                                                      ("none", "mean-parcel-rho")])
def test_group_sidecars_state_the_settings_used(tmp_path, correction, cluster_rho):
    """Every group table's sidecar records the statistical settings, and its 'significant'
    column says what was computed: before, it claimed a Bonferroni correction over windows
    whatever ``correction`` was, and a cluster p-value for ``mean-parcel-rho``."""
    import json

    from bids_app.interfaces.group import GroupStatistics
    from bids_app.io.derivatives import GROUP_TABLES, group_table_path

    rng = np.random.default_rng(0)
    n_obs, n_parcels = 8, 6
    np.savez(tmp_path / "arrays.npz", meg=rng.standard_normal((n_obs, n_parcels, 3, 1, 2)),
             fmri=rng.standard_normal((n_obs, n_parcels, 3)),
             parcels=np.array([f"p{i}-{h}" for i, h in enumerate(["lh", "rh"] * 3)]),
             hemis=np.array(["lh", "rh"] * 3), conditions=np.array(["a", "b", "c"]),
             bands=np.array(["alpha"]), windows_ms=np.array([100.0, 133.3]))
    options = GroupStatsOptions(n_clusters=2, n_bootstrap=50, correction=correction,
                                cluster_rho=cluster_rho)
    GroupStatistics(arrays=str(tmp_path / "arrays.npz"), output_dir=str(tmp_path), task="t",
                    atlas="x", options=as_dict(options), seed=3).run(cwd=str(tmp_path))
    for key in GROUP_TABLES:
        path = group_table_path(tmp_path, "t", "x", key)
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert {k: sidecar[k] for k in ("correction", "cluster_rho", "n_clusters", "n_bootstrap",
                                        "n_observations", "random_seed")} == {
            "correction": correction, "cluster_rho": cluster_rho, "n_clusters": 2,
            "n_bootstrap": 50, "n_observations": n_obs, "random_seed": 3}
        if "significant" not in sidecar:
            continue
        text = sidecar["significant"]["Description"]
        if correction == "none":
            assert "no correction" in text and "Bonferroni" not in text, (key, text)
        else:
            assert "Bonferroni correction over the windows" in text, (key, text)
        assert ("parcels" in text) == (key == "bootstrap" and cluster_rho == "mean-parcel-rho")


def test_group_atlas_never_replaces_a_named_atlas(tmp_path):
    """The group level took the only parcellation present when --atlas named another one (an
    INFO line in the log): a named atlas must be found, at both levels (issue 19, item 2)."""
    from bids_app.workflows.group import group_atlas

    (tmp_path / "atlas-fallback_dseg.tsv").write_text("index\tname\n")
    assert group_atlas(tmp_path, "auto") == "fallback"
    assert group_atlas(tmp_path, "fallback") == "fallback"
    with pytest.raises(MissingInputError, match=r"--atlas desikan \(atlas-desikan\), only "
                                                r"atlas-fallback"):
        group_atlas(tmp_path, "desikan")
    (tmp_path / "atlas-destrieux_dseg.tsv").write_text("index\tname\n")
    assert group_atlas(tmp_path, "auto") == "destrieux"
