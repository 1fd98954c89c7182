"""Parcellation, grids and template anatomy (issue 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_app.errors import BadDataError, MissingInputError, UsageError
from bids_app.io.anatomy import make_parcellation, subject_grids, subject_surfaces
from bids_app.io.atlases import atlas_name_from_file, resolve_atlas
from bids_app.io.templates import write_fsaverage5
from bids_app.parcels.options import ParcellationOptions
from bids_app.parcels.grid import grid_on_subject, n_ico_vertices
from bids_app.parcels.parcellation import (
    ParcellationError,
    build_parcellation,
    exclusion_patterns,
    read_annotation,
    split_counts,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_fsaverage5(tmp_path_factory.mktemp("fs"))


def test_template_is_complete_and_stable(template, tmp_path):
    for name in ("lh.white", "rh.pial", "lh.sphere.reg", "rh.inflated", "lh.curv"):
        assert (template / "surf" / name).stat().st_size > 0
    assert (template / "bem" / "inner_skull.surf").is_file()
    again = write_fsaverage5(tmp_path)
    for f in ("surf/lh.white", "surf/rh.sphere.reg", "bem/inner_skull.surf"):
        assert (again / f).read_bytes() == (template / f).read_bytes()


def test_grid_identity_on_fsaverage(template):
    surfaces = subject_surfaces(template.parent, template.name)
    grids = subject_grids(surfaces, template,
                          ParcellationOptions(meg_grid="ico4", fmri_grid="ico5"))
    for meg, fmri in zip(grids["meg"], grids["fmri"]):
        np.testing.assert_array_equal(meg, np.arange(2562))
        np.testing.assert_array_equal(fmri, np.arange(10242))


def test_grid_follows_sphere_reg(template):
    """A subject whose sphere.reg is fsaverage's with shuffled vertices maps back exactly."""
    from nibabel.freesurfer import read_geometry

    sphere, _ = read_geometry(str(template / "surf" / "lh.sphere"))
    perm = np.random.default_rng(0).permutation(len(sphere))
    subject_sphere = sphere[perm] + 1e-4  # tiny offsets, as a registration would leave
    vertices = grid_on_subject(sphere, subject_sphere, "ico4")
    np.testing.assert_array_equal(perm[vertices], np.arange(n_ico_vertices("ico4")))
    with pytest.raises(ParcellationError, match="allowed are ico3, ico4, ico5, ico6"):
        n_ico_vertices("oct6")


def test_split_counts_reach_target():
    parts = split_counts({"a": 100, "b": 30, "c": 10}, 7)
    assert sum(parts.values()) == 7 and parts["a"] >= parts["b"] >= parts["c"] == 1


@pytest.mark.shared_data
def test_desikan_from_real_annotation(template, mne_testing):
    labels = [read_annotation(mne_testing / "subjects" / "fsaverage" / "label" /
                              f"{h}.aparc.annot", h) for h in ("lh", "rh")]
    assert labels[0].vertex_label.shape == (10242,)
    assert "superiortemporal" in labels[0].names
    parc = build_parcellation(labels, atlas="desikan", exclude=exclusion_patterns("desikan"),
                              n_included_per_hemi=70, subject=template.name,
                              subjects_dir=template.parent)
    table = parc.table
    assert list(table.columns) == ["index", "name", "hemi", "n_vertices", "included"]
    assert table[table.included].groupby("hemi").size().to_dict() == {"lh": 70, "rh": 70}
    assert (table.n_vertices > 0).all()  # no empty parcel
    assert not table[table.name.str.startswith("inferiortemporal")].included.any()
    for hemi, labels_h in zip(("lh", "rh"), labels):
        rows = parc.labels[hemi]
        # every labelled vertex is in exactly one parcel; parcels partition their atlas label
        assert np.array_equal(rows >= 0, labels_h.vertex_label >= 0)
        counts = np.bincount(rows[rows >= 0], minlength=len(table))
        assert np.array_equal(counts[table.hemi == hemi], table.n_vertices[table.hemi == hemi])
        for row in table[table.hemi == hemi].itertuples():
            atlas_name = row.name.split("_div")[0].rsplit("-", 1)[0]
            k = labels_h.names.index(atlas_name)
            assert set(np.flatnonzero(rows == row.index)) <= set(np.flatnonzero(
                labels_h.vertex_label == k))
    # every included parcel has MEG grid points
    points = parc.to_points([np.arange(2562), np.arange(2562)])
    assert np.bincount(points[points >= 0], minlength=140).min() > 0


@pytest.mark.shared_data
def test_atlas_found_in_fs_subjects_dir(template, mne_testing):
    choice = resolve_atlas("desikan", freesurfer_dirs=[mne_testing / "subjects"])
    assert choice.files[0] == mne_testing / "subjects" / "fsaverage" / "label" / "lh.aparc.annot"
    parc = make_parcellation(
        atlas=choice.name, atlas_files=choice.files, parcellation_table=None,
        options=ParcellationOptions(), template_dir=template)
    assert parc.atlas == "desikan"


@pytest.fixture
def no_atlas_anywhere(monkeypatch, tmp_path):
    """No FreeSurfer, nilearn or TemplateFlow atlas files (an empty home)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("FREESURFER_HOME", "TEMPLATEFLOW_HOME", "NILEARN_DATA"):
        monkeypatch.delenv(name, raising=False)


def test_default_atlas_falls_back_with_a_note(template, no_atlas_anywhere, tmp_path):
    choice = resolve_atlas("auto", freesurfer_dirs=[tmp_path / "derivatives" / "freesurfer"])
    assert choice.name == "fallback" and choice.files is None
    assert "searched" in choice.note and "--atlas-file" in choice.note
    assert str(tmp_path / "derivatives" / "freesurfer" / "fsaverage" / "label") in choice.note
    assert resolve_atlas("fallback").note is None  # asked for: nothing to announce


def test_named_atlas_is_never_replaced(no_atlas_anywhere, tmp_path):
    """Issue 19.2: a named atlas that is nowhere stops the run, listing where it looked."""
    fs = tmp_path / "derivatives" / "freesurfer"
    with pytest.raises(MissingInputError, match="No 'desikan' atlas") as err:
        resolve_atlas("desikan", freesurfer_dirs=[fs])
    assert str(fs / "fsaverage" / "label" / "lh.aparc.annot") in err.value.message
    with pytest.raises(MissingInputError):
        resolve_atlas("destrieux", freesurfer_dirs=[fs])


@pytest.mark.shared_data
def test_atlas_file_names_the_atlas(mne_testing, tmp_path):
    """Issue 19.2: outputs are named after the atlas the file holds; a contradicting --atlas
    is refused."""
    left = mne_testing / "subjects" / "fsaverage" / "label" / "lh.aparc.annot"
    for atlas in ("auto", "desikan", "aparc"):
        choice = resolve_atlas(atlas, atlas_file=left)
        assert (choice.name, choice.label) == ("desikan", "desikan")
    with pytest.raises(UsageError, match="contradicts"):
        resolve_atlas("destrieux", atlas_file=left)
    lobes = mne_testing / "subjects" / "fsaverage" / "label" / "lh.PALS_B12_Lobes.annot"
    assert resolve_atlas("auto", atlas_file=lobes).label == "PALSB12Lobes"


@pytest.mark.parametrize(("name", "atlas"), [
    ("lh.aparc.a2009s.annot", "destrieux"), ("lh.aparc.annot", "desikan"),
    ("lh.HCP-MMP1.annot", "HCP-MMP1"),
    ("tpl-fsaverage_hemi-L_den-164k_atlas-Destrieux_dseg.label.gii", "destrieux"),
    ("tpl-fsaverage_hemi-L_den-164k_atlas-Schaefer2018_desc-400Parcels_dseg.label.gii",
     "Schaefer2018"),
])
def test_atlas_name_from_file(name, atlas):
    assert atlas_name_from_file(Path(name)) == atlas


def test_unreadable_atlas_file_is_bad_data(tmp_path):
    for hemi in ("lh", "rh"):
        (tmp_path / f"{hemi}.broken.annot").write_bytes(b"\x00" * 40)
    with pytest.raises(BadDataError, match="lh.broken.annot"):
        resolve_atlas("auto", atlas_file=tmp_path / "lh.broken.annot")


def test_fallback_is_deterministic(template):
    first = make_parcellation(
        atlas="fallback", atlas_files=None, parcellation_table=None,
        options=ParcellationOptions(), template_dir=template)
    second = make_parcellation(
        atlas="fallback", atlas_files=None, parcellation_table=None,
        options=ParcellationOptions(), template_dir=template)
    assert first.atlas == second.atlas == "fallback"
    pd.testing.assert_frame_equal(first.table, second.table)
    for hemi in ("lh", "rh"):
        np.testing.assert_array_equal(first.labels[hemi], second.labels[hemi])
    assert first.included.groupby("hemi").size().to_dict() == {"lh": 70, "rh": 70}
    assert not first.table[first.table.name.str.startswith("medialwall")].included.any()


def test_edited_table_is_applied(template, tmp_path):
    from bids_app.io.derivatives import write_table

    parc = make_parcellation(atlas="fallback", atlas_files=None, parcellation_table=None,
                             options=ParcellationOptions(), template_dir=template)
    table = parc.table.copy()
    table.loc[table.name == "occipital_01-lh", "included"] = False
    path = write_table(table, tmp_path / "atlas-fallback_dseg.tsv", description="edited")
    edited = make_parcellation(atlas="fallback", atlas_files=None, parcellation_table=path,
                               options=ParcellationOptions(), template_dir=template)
    assert "occipital_01-lh" not in edited.included_names
    assert len(edited.included_names) == 139
    table.loc[0, "name"] = "renamed"
    write_table(table, path, description="edited")
    with pytest.raises(BadDataError, match="do not match"):
        make_parcellation(atlas="fallback", atlas_files=None, parcellation_table=path,
                          options=ParcellationOptions(), template_dir=template)


def test_explicit_atlas_file_must_exist(tmp_path):
    with pytest.raises(MissingInputError, match="right-hemisphere sibling"):
        resolve_atlas("auto", atlas_file=tmp_path / "lh.x.annot")


def test_unusable_anatomy_is_named(template, tmp_path):
    subject = tmp_path / "sub-01"
    shutil.copytree(template, subject)
    (subject / "surf" / "lh.sphere.reg").unlink()
    with pytest.raises(MissingInputError, match=r"lh\.sphere\.reg is missing"):
        subject_surfaces(tmp_path, "sub-01")
    shutil.copyfile(template / "surf" / "lh.sphere", subject / "surf" / "lh.sphere.reg")
    (subject / "surf" / "rh.pial").write_bytes(b"")
    with pytest.raises(BadDataError, match=r"rh\.pial cannot be read"):
        subject_surfaces(tmp_path, "sub-01")
    from nibabel.freesurfer import read_geometry, write_geometry

    rr, tris = read_geometry(str(template / "surf" / "rh.white"))
    shutil.copyfile(template / "surf" / "rh.white", subject / "surf" / "rh.pial")
    keep = tris[(tris < 5000).all(axis=1)]
    write_geometry(str(subject / "surf" / "rh.sphere.reg"), rr[:5000], keep)
    with pytest.raises(BadDataError, match="disagree in vertex count"):
        subject_surfaces(tmp_path, "sub-01")


def test_annotation_with_wrong_vertex_count(tmp_path):
    from nibabel.freesurfer import write_annot

    path = tmp_path / "lh.bad.annot"
    write_annot(str(path), np.zeros(5000, int), np.array([[0, 0, 0, 0, 0]]), [b"a"])
    with pytest.raises(ParcellationError, match="has 5000 vertices"):
        read_annotation(path, "lh")
