"""The derivatives writer: names, atomic writes, sidecars, dataset description."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_app.io import derivatives as d


def test_bids_name_order():
    name = d.bids_name({"desc": "dics", "atlas": "destrieux", "run": "01", "task": "naming",
                        "ses": "meg", "sub": "01"}, "meg", ".tsv.gz")
    assert name == "sub-01_ses-meg_task-naming_run-01_atlas-destrieux_desc-dics_meg.tsv.gz"
    with pytest.raises(ValueError, match="unknown entities"):
        d.bids_name({"sub": "01", "colour": "red"}, "meg", ".tsv")


def test_table_with_sidecar(tmp_path):
    table = pd.DataFrame({"condition": ["a", "b"], "block": [1, 2], "parcel": ["x-lh", "y-rh"],
                          "value": [0.5, np.nan], "normalized": [1.25, -1.25]})
    path = d.write_table(table, tmp_path / "t_bold.tsv", description="test")
    sidecar = json.loads((tmp_path / "t_bold.json").read_text())
    assert set(table.columns) <= set(sidecar) and sidecar["Description"] == "test"
    assert "n/a" in path.read_text()
    pd.testing.assert_frame_equal(d.read_table(path), table)
    gz = d.write_table(table, tmp_path / "t_meg.tsv.gz", description="test")
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    pd.testing.assert_frame_equal(d.read_table(gz), table)
    # byte-identical when written again (gzip without timestamp)
    before = gz.read_bytes()
    d.write_table(table, gz, description="test")
    assert gz.read_bytes() == before


def test_undescribed_column_refused(tmp_path):
    with pytest.raises(KeyError, match="no description"):
        d.write_table(pd.DataFrame({"mystery": [1]}), tmp_path / "x.tsv", description="x")


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out.txt"
    d.atomic_write_text(target, "complete")

    with pytest.raises(TypeError):
        d.atomic_write_bytes(target, object())  # fails while writing
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no .part left


def _write_description(args):
    out, bids = args
    d.write_dataset_description(Path(out), Path(bids))
    return json.loads((Path(out) / "dataset_description.json").read_text())["DatasetType"]


def test_dataset_description_parallel_jobs(tmp_path, skeleton):
    out = tmp_path / "out"
    with mp.get_context("spawn").Pool(4) as pool:
        kinds = pool.map(_write_description, [(str(out), str(skeleton))] * 8)
    assert kinds == ["derivative"] * 8
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["GeneratedBy"][0]["Name"] == "megfmri-fusion"
    assert desc["SourceDatasets"][0]["URL"].startswith("file://")
    assert sorted(p.name for p in out.iterdir()) == [".bidsignore", "dataset_description.json"]
    assert (out / ".bidsignore").read_text().splitlines() == list(d.BIDSIGNORE)


def test_bidsignore_keeps_the_users_lines(tmp_path, skeleton):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".bidsignore").write_text("extra/\n*.html\n")
    d.write_dataset_description(out, skeleton)
    d.write_dataset_description(out, skeleton)                 # a second job adds nothing
    lines = (out / ".bidsignore").read_text().splitlines()
    assert lines[:2] == ["extra/", "*.html"]
    assert sorted(lines[2:]) == sorted(set(d.BIDSIGNORE) - {"*.html"})


def test_container_recorded(tmp_path, skeleton, monkeypatch):
    from bids_app import __version__

    tag = f"megfmri/megfmri-fusion:{__version__}"
    monkeypatch.setenv("MEGFMRI_CONTAINER", "docker")
    monkeypatch.setenv("MEGFMRI_CONTAINER_TAG", tag)
    monkeypatch.setenv("MEGFMRI_VCS_REF", "0123abc")
    desc = d.dataset_description(skeleton)
    assert desc["GeneratedBy"][0]["Container"] == {"Type": "docker", "Tag": tag,
                                                  "URI": f"docker://{tag}"}
    assert "0123abc" in desc["GeneratedBy"][0]["Description"]


def test_exact_versions_recorded(tmp_path, skeleton, monkeypatch, caplog):
    """dataset_description.json records the exact versions the run used (issue 20): Python,
    the packages that decide the results, FreeSurfer when installed; a folder made with other
    versions is named in a warning."""
    import platform
    from importlib import metadata

    fs_home = tmp_path / "freesurfer"
    fs_home.mkdir()
    (fs_home / "build-stamp.txt").write_text("freesurfer-linux-ubuntu22_x86_64-7.4.1-20230614\n")
    monkeypatch.setenv("FREESURFER_HOME", str(fs_home))
    out = tmp_path / "out"
    d.write_dataset_description(out, skeleton)
    generated = json.loads((out / "dataset_description.json").read_text())["GeneratedBy"]
    versions = {g["Name"]: g["Version"] for g in generated}
    assert versions["Python"] == platform.python_version()
    for name in ("mne", "nipype", "nibabel", "nilearn", "numpy", "scipy", "antspyx"):
        assert versions[name] == metadata.version(name)
    assert versions["FreeSurfer"] == "freesurfer-linux-ubuntu22_x86_64-7.4.1-20230614"
    monkeypatch.setattr(d, "software_versions", lambda: [{"Name": "mne", "Version": "0.0"}])
    with caplog.at_level("WARNING"):
        d.write_dataset_description(out, skeleton)
    assert "other software versions" in caplog.text and "mne 0.0" in caplog.text


def test_parcellation_npz_round_trip(tmp_path):
    """The private parcellation file between the anatomy stage and the fMRI and MEG steps has
    one writer and one reader (:mod:`bids_app.io.parcellation_npz`), with the documented arrays
    and dtypes."""
    import numpy as np

    from bids_app.io.parcellation_npz import ARRAYS, read_parcellation, write_parcellation

    path = write_parcellation(tmp_path / "parcellation.npz", names=["a-lh", "b-rh"],
                              hemis=["lh", "rh"], fmri_parcel=[0, -1, 1],
                              meg_parcel=np.array([1, 0, -1]),
                              meg_vertices=(np.array([3, 7]), np.array([2])), atlas="fallback")
    with np.load(path, allow_pickle=False) as raw:
        assert tuple(raw.files) == ARRAYS
        assert raw["fmri_parcel"].dtype == np.int64 and raw["names"].dtype.kind == "U"
    back = read_parcellation(path)
    assert back["names"] == ["a-lh", "b-rh"] and back["hemis"] == ["lh", "rh"]
    assert back["atlas"] == "fallback"
    assert back["meg_vertices_lh"].tolist() == [3, 7] and back["meg_parcel"].tolist() == [1, 0, -1]
    np.savez(tmp_path / "old.npz", names=np.array(["a-lh"]))
    with pytest.raises(ValueError, match="old.npz lacks hemis"):
        read_parcellation(tmp_path / "old.npz")
