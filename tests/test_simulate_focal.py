"""Focal planted sources (issue 25): off-grid points, their exact gain, and a focal study's truth."""

import json

import mne
import numpy as np
import pandas as pd
import pytest

from bids_app.io.templates import write_fsaverage5
from bids_app.meg.headmodel import grid_source_space
from bids_app.simulate import meg as sim_meg
from bids_app.simulate.focal import label_centroid, place_site, site_gain, site_voxels


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return write_fsaverage5(tmp_path_factory.mktemp("subjects"))


def test_site_points_lie_inside_nearby_triangles_and_off_every_vertex(template):
    from bids_app.io.anatomy import read_surface

    rr, tris = read_surface(template / "surf" / "lh.white")
    centre = rr[1234]
    points, normals = place_site(rr, tris, centre, n_points=5, spread_mm=5.0,
                                 rng=np.random.default_rng(0))
    assert points.shape == normals.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    # within the spread (plus half a triangle) of the centre, and never on a vertex
    assert np.linalg.norm(points - centre, axis=1).max() < 5.0 + 4.0
    assert np.min(np.linalg.norm(rr[None] - points[:, None], axis=2)) > 1e-3
    # each normal is its triangle's: perpendicular to the vectors to two of its corners
    for p, n in zip(points, normals):
        containing = [t for t in tris if abs(np.dot(rr[t[0]] - p, n)) < 1e-9
                      and abs(np.dot(rr[t[1]] - p, n)) < 1e-9]
        assert containing


def test_site_gain_equals_the_fixed_gain_of_a_surface_vertex(template):
    """A focal point placed exactly at a vertex, with that vertex's normal, has the gain of
    MNE's fixed-orientation forward model at the vertex (to single precision: MNE stores the
    forward model as float32)."""
    head = sim_meg.template_head()
    info = sim_meg.finish_info(sim_meg.vectorview_like_info(250.0, head), head, 0.0)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=None)
    vertices = [np.array([100, 2000, 5000]), np.array([7])]
    src = grid_source_space(template.name, template.parent, vertices)
    forward = mne.make_forward_solution(info, head["head_mri_t"], src, sphere, meg=True,
                                        eeg=False, verbose="error")
    reference = sim_meg.fixed_gain(forward, src)
    points = src[0]["rr"][vertices[0]] * 1000.0
    normals = src[0]["nn"][vertices[0]]
    gain, names = site_gain(info, head["head_mri_t"], sphere, points, normals)
    assert names == reference.ch_names
    np.testing.assert_allclose(gain, reference.matrix[:, :3], rtol=0,
                               atol=1e-6 * np.abs(reference.matrix[:, :3]).max())


def test_label_centroid_and_site_voxels():
    rr = np.array([[0.0, 0, 0], [2, 0, 0], [10, 0, 0], [0, 4, 0]])
    labels = np.array([0, 0, 1, -1])
    np.testing.assert_allclose(label_centroid(rr, labels, ["precentral", "cuneus"],
                                              ["PRE*"]), [1.0, 0, 0])
    with pytest.raises(ValueError, match="no label matches"):
        label_centroid(rr, labels, ["precentral", "cuneus"], ["insula"])
    assert site_voxels(rr, [0.0, 0, 0], 4.0).tolist() == [True, True, False, True]


@pytest.mark.slow
def test_a_focal_study_plants_sites_and_says_which_parcels_hold_them(tmp_path):
    """One subject, one run of the small preset with the focal effects: the truth names the
    sites and the analysis parcels holding them, the block table carries each site as a unit,
    and the BOLD voxels at a site follow the site's amplitudes, not its parcel's."""
    import nibabel as nib

    from bids_app.cli.simulate import simulate

    bids = simulate(tmp_path / "bids", n_subjects=1, n_runs=1, effects="focal", n_jobs=1)
    truth = json.loads((bids / "sourcedata" / "simulation" / "truth.json").read_text())
    assert truth["model"]["spatial_model"] == "focal"
    sites = {s["name"]: s for s in truth["sites"]}
    assert len(sites) == 5                           # four effects, occipital in both hemis
    for effect in truth["effects"]:
        held = {p for s in sites.values() if s["effect"] == effect["name"] for p in s["parcels"]}
        assert held and set(effect["parcels"]) == held
        assert not held & set(truth["null_parcels"])
    blocks = pd.read_csv(bids / "sourcedata" / "simulation" / "blocks.tsv", sep="\t")
    site_rows = blocks[blocks.parcel.isin(sites)]
    assert set(site_rows.effect) == {e["name"] for e in truth["effects"]}
    assert (blocks[~blocks.parcel.isin(sites)].meg_relchange == 0).all()

    # BOLD: the voxel nearest the occipital site's centre follows the site's amplitudes
    site = sites["site-occipital-alpha-lh"]
    img = nib.load(bids / "sub-01" / "func" / "sub-01_task-naming_run-01_bold.nii.gz")
    ijk = np.round(np.linalg.inv(img.affine) @ np.r_[site["centre_mm"], 1.0])[:3].astype(int)
    assert img.shape[:3] > tuple(ijk) >= (0, 0, 0)
    amplitudes = site_rows[site_rows.parcel == site["name"]].sort_values("block")
    assert amplitudes.fmri_amplitude.std() > 0
