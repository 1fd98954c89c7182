"""Surface sampling (vertex <- nearest voxel), parcel averages and the fMRIPrep fsaverage route."""

import logging

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_app.fmri.errors import BoldImageError, SurfaceSamplingError
from bids_app.fmri.fsaverage import fsaverage_parcel_time_series
from bids_app.fmri.surface import parcel_time_series, project_points, sample_bold_on_surface

BOLD_SHAPE = (40, 44, 30, 3)


def coded_bold():
    """BOLD whose value encodes voxel and volume: 1e6 * t + 1e4 * i + 1e2 * j + k (float exact)."""
    i, j, k, t = np.indices(BOLD_SHAPE)
    data = (1e6 * t + 1e4 * i + 1e2 * j + k + 1).astype(np.float32)  # +1: no all-zero voxel
    affine = np.eye(4)  # oblique EPI: 3 x 3 x 3.5 mm voxels rotated 10 degrees about x
    affine[:3, :3] = Rotation.from_euler("x", 10, degrees=True).as_matrix() @ np.diag([3, 3, 3.5])
    affine[:3, 3] = [-55.0, -70.0, -40.0]
    return nib.Nifti1Image(data, affine)


def conformed_t1_header():
    """Header of a conformed FreeSurfer volume (LIA, 256^3, 1 mm) with c_ras (2, -17, 19)."""
    affine = np.array([[-1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
    affine[:3, 3] = np.array([2.0, -17.0, 19.0]) - affine[:3, :3] @ [128, 128, 128]
    return nib.MGHImage(np.zeros((256, 256, 256), np.uint8), affine).header


def test_sampling_returns_the_voxel_at_the_projected_point():
    bold = coded_bold()
    t1_header = conformed_t1_header()
    t1w_to_epi = np.eye(4)
    t1w_to_epi[:3, :3] = Rotation.from_euler("xyz", [2, -3, 5], degrees=True).as_matrix()
    t1w_to_epi[:3, 3] = [1.5, -2.0, 3.0]
    rng = np.random.default_rng(0)
    white = rng.uniform(-70, 70, (400, 3))
    pial = white + rng.normal(0, 2.0, (400, 3))
    samples = sample_bold_on_surface(bold, white, pial, t1_header, t1w_to_epi,
                                     projection_fraction=0.5)

    # independent chain: mid-thickness, tkr -> scanner = + c_ras, rigid to the EPI, round
    c_ras = np.array([2.0, -17.0, 19.0])
    scanner = (white + pial) / 2 + c_ras
    epi_world = scanner @ t1w_to_epi[:3, :3].T + t1w_to_epi[:3, 3]
    inverse = np.linalg.inv(bold.affine)
    continuous = epi_world @ inverse[:3, :3].T + inverse[:3, 3]
    voxel = np.floor(continuous + 0.5).astype(int)
    inside = np.all((voxel >= 0) & (voxel < BOLD_SHAPE[:3]), axis=1)
    assert 0 < (~inside).sum() < 300  # some points fall outside the field of view
    i, j, k = voxel[inside].T
    code = 1e4 * i + 1e2 * j + k + 1
    expected = (1e6 * np.arange(3)[None, :] + code[:, None]).astype(np.float32)
    np.testing.assert_array_equal(samples.values[inside], expected)  # exact
    assert np.isnan(samples.values[~inside]).all()
    np.testing.assert_array_equal(samples.valid, inside)
    assert samples.n_outside == (~inside).sum() and samples.n_zero == 0
    np.testing.assert_array_equal(samples.voxels[~inside], -1)


def test_projection_fraction_and_voxels_without_signal(caplog):
    bold = coded_bold()
    data = bold.get_fdata(dtype=np.float32)
    data[10, 10, 10, :] = 0.0  # e.g. moved in from outside the slab during realignment
    bold = nib.Nifti1Image(data, bold.affine)
    t1 = nib.Nifti1Image(np.zeros((10, 10, 10), np.uint8), np.eye(4))  # c_ras = (5, 5, 5)
    centre = bold.affine @ [10, 10, 10, 1]
    white = (centre[:3] - 5.0)[None, :].repeat(2, axis=0)  # tkr = scanner - c_ras
    pial = white.copy()
    pial[1] += bold.affine[:3, 0] * 2  # two voxels further along i
    with caplog.at_level(logging.WARNING):
        at_white = sample_bold_on_surface(bold, white, pial, t1, np.eye(4), projection_fraction=0)
        at_pial = sample_bold_on_surface(bold, white, pial, t1, np.eye(4), projection_fraction=1)
    # both points sit on the zero voxel at the white surface: excluded and counted
    assert at_white.n_zero == 2 and not at_white.valid.any()
    assert "2 on voxels without signal" in caplog.text
    # at the pial surface the second point moved to voxel (12, 10, 10)
    assert at_pial.valid.tolist() == [False, True]
    assert at_pial.values[1, 0] == 1e4 * 12 + 1e2 * 10 + 10 + 1
    np.testing.assert_allclose(project_points(white, pial, 0.25), 0.75 * white + 0.25 * pial)


def test_parcel_time_series_by_hand(caplog):
    values = np.array(
        [[1.0, 2.0], [3.0, 4.0], [5.0, 9.0], [100.0, 100.0], [np.nan, np.nan], [7.0, 7.0]]
    )
    parcels = np.array([0, 0, 1, -1, 1, 1])
    with caplog.at_level(logging.WARNING):
        out = parcel_time_series(values, parcels, ["lh_a", "lh_b", "rh_c"])
    assert list(out.columns) == ["lh_a", "lh_b", "rh_c"] and out.index.name == "volume"
    np.testing.assert_allclose(out["lh_a"], [2.0, 3.0])  # mean of points 0 and 1
    np.testing.assert_allclose(out["lh_b"], [6.0, 8.0])  # point 4 is NaN (invalid), 3 excluded
    assert out["rh_c"].isna().all() and "rh_c" in caplog.text  # no point: NaN and a warning


def test_parcel_arguments_are_checked():
    with pytest.raises(SurfaceSamplingError, match="one entry per point"):
        parcel_time_series(np.zeros((4, 2)), np.zeros(3, int), ["a"])
    with pytest.raises(SurfaceSamplingError, match=r"allowed are -1 .* 0\.\.1"):
        parcel_time_series(np.zeros((3, 2)), np.array([0, 2, -1]), ["a", "b"])
    with pytest.raises(SurfaceSamplingError, match="must match point for point"):
        project_points(np.zeros((3, 3)), np.zeros((4, 3)), 0.5)
    with pytest.raises(SurfaceSamplingError, match=r"\[0, 1\]"):
        project_points(np.zeros((3, 3)), np.zeros((3, 3)), 1.5)


def test_sampling_refuses_a_3d_image():
    bold = coded_bold()
    single = nib.Nifti1Image(bold.get_fdata()[..., 0], bold.affine)
    with pytest.raises(BoldImageError, match="3-D"):
        sample_bold_on_surface(single, np.zeros((1, 3)), np.zeros((1, 3)), single, np.eye(4),
                               projection_fraction=0.5)


# --- fMRIPrep fsaverage route --------------------------------------------------------------------


def test_fsaverage_route_averages_the_grid_vertices():
    n_vertices, n_volumes, n_grid = 40962, 8, 10242  # fsaverage6 data, ico-5 grid
    vertex = np.arange(n_vertices, dtype=np.float32)[:, None]
    volume = np.arange(n_volumes, dtype=np.float32)[None, :]
    lh = vertex + 1000.0 * volume
    rh = -vertex + 1000.0 * volume
    rh[5, :] = 0.0  # a vertex outside fMRIPrep's field of view
    parcels = np.full(2 * n_grid, -1)
    parcels[[0, 1, 2]] = 0  # lh vertices 0-2
    parcels[n_grid + np.array([4, 5, 6])] = 1  # rh vertices 4-6 (5 has no signal)
    parcels[n_grid + 10241] = 2  # last rh grid vertex
    out = fsaverage_parcel_time_series(lh, rh, parcels, ["L", "R", "R_last"], dummy_scans=3)
    assert out.shape == (5, 3)
    kept = 1000.0 * np.arange(3, 8)
    np.testing.assert_allclose(out["L"], kept + 1.0)  # mean of vertices 0, 1, 2
    np.testing.assert_allclose(out["R"], kept - 5.0)  # mean of -4 and -6
    np.testing.assert_allclose(out["R_last"], kept - 10241.0)  # not vertex 10241 of fsaverage6+


def test_fsaverage_route_errors():
    good = np.ones((10242, 10), np.float32)
    parcels = np.zeros(2 * 2562, int)
    with pytest.raises(SurfaceSamplingError, match="not an fsaverage mesh.*transpose"):
        fsaverage_parcel_time_series(good.T, good.T, parcels, ["a"], dummy_scans=0)
    with pytest.raises(SurfaceSamplingError, match="no finer than the fMRIPrep surface"):
        fsaverage_parcel_time_series(good, good, np.zeros(2 * 40962, int), ["a"],
                                     dummy_scans=0)
    with pytest.raises(SurfaceSamplingError, match="differ in shape"):
        fsaverage_parcel_time_series(good, good[:, :5], parcels, ["a"], dummy_scans=0)
    bad = good.copy()
    bad[3, 2] = np.nan
    with pytest.raises(BoldImageError, match="left hemisphere .* NaN"):
        fsaverage_parcel_time_series(bad, good, parcels, ["a"], dummy_scans=0)
    with pytest.raises(BoldImageError, match="10 volume.*dummy"):
        fsaverage_parcel_time_series(good, good, parcels, ["a"], dummy_scans=10)


def test_fsaverage_route_with_real_atlas(mne_testing):
    # the real Desikan-Killiany labels of fsaverage: labels of the first 10242 vertices are the
    # fsaverage5 labels, so a parcel's mean of a vertex-coded signal is its mean vertex index
    annot = mne_testing / "subjects" / "fsaverage" / "label" / "lh.aparc.annot"
    labels, _, names = nib.freesurfer.read_annot(annot)
    grid = labels[:10242]
    keep = np.unique(grid[grid >= 0])
    index = {label: i for i, label in enumerate(keep)}
    parcels = np.concatenate([[index.get(v, -1) for v in grid], np.full(10242, -1)])
    lh = np.repeat(np.arange(163842, dtype=np.float32)[:, None], 6, axis=1)
    out = fsaverage_parcel_time_series(
        lh, np.ones_like(lh), parcels, [names[v].decode() for v in keep], dummy_scans=5
    )
    for label in keep[:5]:
        expected = np.flatnonzero(grid == label).mean()
        assert out[names[label].decode()].iloc[0] == pytest.approx(expected, rel=1e-6)
