"""Realignment recovers simulated rigid motion; motion parameters and FD conventions."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from bids_app.fmri.errors import BoldImageError, RegistrationError
from bids_app.fmri.realign import (
    field_of_view_center,
    framewise_displacement,
    mean_volume,
    motion_parameters,
    realign,
)

# x flipped (LAS-like) and an origin far from the volume centre: the conversions between
# RAS+/LPS+ and the rotation centre are exercised
AFFINE = np.array(
    [[-3.0, 0, 0, 45.0], [0, 3.0, 0, -60.0], [0, 0, 3.0, -30.0], [0, 0, 0, 1]]
)
SHAPE = (32, 32, 32)


def blob_phantom(seed=0):
    """Smooth 'head': 25 Gaussian blobs (sigma 4.5-9 mm) inside a blurred ellipsoid."""
    rng = np.random.default_rng(seed)
    grid = np.indices(SHAPE, dtype=float)
    center = (np.array(SHAPE) - 1) / 2
    volume = np.zeros(SHAPE)
    for _ in range(25):
        c = center + rng.uniform(-9, 9, 3)
        sigma = rng.uniform(1.5, 3.0)
        volume += rng.uniform(200, 800) * np.exp(
            -((grid - c[:, None, None, None]) ** 2).sum(0) / (2 * sigma**2)
        )
    radii = np.array([12.0, 13.0, 11.0])[:, None, None, None]
    head = (((grid - center[:, None, None, None]) / radii) ** 2).sum(0) < 1
    return volume + ndimage.gaussian_filter(300.0 * head, 1.5)


def rigid(motion, center):
    """4 x 4 map x -> Rz Ry Rx (x - c) + c + t of a (tx, ty, tz, rx, ry, rz) row."""
    matrix = np.eye(4)
    rotation = Rotation.from_euler("xyz", motion[3:]).as_matrix()
    matrix[:3, :3] = rotation
    matrix[:3, 3] = center + motion[:3] - rotation @ center
    return matrix


def moved_run(reference, truth):
    """Volume k shows the anatomy of the reference at x in its world position T_k(x)."""
    center = field_of_view_center(AFFINE, SHAPE)
    volumes = []
    for row in truth:
        vox = np.linalg.inv(AFFINE) @ np.linalg.inv(rigid(row, center)) @ AFFINE
        volumes.append(
            ndimage.affine_transform(reference, vox[:3, :3], offset=vox[:3, 3], order=3)
        )
    return nib.Nifti1Image(np.stack(volumes, axis=-1).astype(np.float32), AFFINE)


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(3)
    truth = np.zeros((10, 6))
    truth[1:, :3] = rng.uniform(-1.5, 1.5, (9, 3))  # mm
    truth[1:, 3:] = np.radians(rng.uniform(-1.5, 1.5, (9, 3)))  # up to 1.5 degrees
    reference = blob_phantom()
    img = moved_run(reference, truth)
    return img, truth, realign(img)


def test_realignment_recovers_known_motion(simulated):
    _, truth, result = simulated
    # tolerance: 0.3 mm and 0.3 degree, a tenth of a 3-mm voxel (observed ~0.01 mm, ~0.03 deg)
    assert result.motion.shape == (10, 6)
    np.testing.assert_array_equal(result.motion[0], 0.0)
    assert np.abs(result.motion[:, :3] - truth[:, :3]).max() < 0.3
    assert np.degrees(np.abs(result.motion[:, 3:] - truth[:, 3:])).max() < 0.3
    # the framewise displacement agrees with the true motion's (same convention, 50-mm radius)
    np.testing.assert_allclose(
        result.framewise_displacement, framewise_displacement(truth), atol=0.5
    )


def test_realigned_volumes_match_the_reference(simulated):
    img, _, result = simulated
    data = img.get_fdata()
    realigned = result.realigned.get_fdata()
    assert result.realigned.shape == img.shape
    np.testing.assert_allclose(result.realigned.affine, AFFINE)
    inner = (slice(6, -6),) * 3  # away from voxels that moved in from outside the field of view
    before = np.abs(data[inner][..., 1:] - data[inner][..., :1]).mean()
    after = np.abs(realigned[inner][..., 1:] - data[inner][..., :1]).mean()
    # what remains is ANTs' linear-interpolation smoothing (observed ratio ~0.17)
    assert after < 0.25 * before
    table = result.motion_table()
    assert list(table.columns) == [
        "trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "framewise_displacement"
    ]


def test_motion_parameters_decompose_about_the_centre():
    center = np.array([10.0, -20.0, 35.0])
    truth = np.array([[0, 0, 0, 0, 0, 0], [1.0, -2.0, 0.5, 0.02, -0.01, 0.03]])
    matrices = np.stack([rigid(row, center) for row in truth])
    np.testing.assert_allclose(motion_parameters(matrices, center), truth, atol=1e-12)
    # a pure rotation about the centre has no translation; about another point it has one
    pure = rigid(np.array([0, 0, 0, 0.0, 0.0, 0.05]), center)[None]
    assert np.abs(motion_parameters(pure, center)[0, :3]).max() < 1e-12
    assert np.abs(motion_parameters(pure, center + [50.0, 0, 0])[0, :3]).max() > 1.0


def test_framewise_displacement_by_hand():
    motion = np.array(
        [[0, 0, 0, 0, 0, 0], [1.0, -0.5, 0, 0.01, 0, 0], [1.0, 0.5, 0.2, 0, 0, -0.02]]
    )
    # FD1 = 1 + 0.5 + 50 * 0.01 = 2.0 ; FD2 = 1 + 0.2 + 50 * (0.01 + 0.02) = 2.7
    np.testing.assert_allclose(framewise_displacement(motion), [0.0, 2.0, 2.7])


def test_mean_volume():
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    mean = mean_volume(nib.Nifti1Image(data, AFFINE))
    assert mean.shape == (2, 3, 4)
    np.testing.assert_allclose(mean.get_fdata(), data.mean(axis=3))


def test_realign_refuses_a_3d_image():
    with pytest.raises(BoldImageError, match="3-D.*must be 4-D"):
        realign(nib.Nifti1Image(np.ones(SHAPE, dtype=np.float32), AFFINE))


def test_realign_refuses_a_constant_volume():
    data = np.stack([blob_phantom(), np.zeros(SHAPE)], axis=-1).astype(np.float32)
    with pytest.raises(RegistrationError, match="volume.s. 1 .*constant"):
        realign(nib.Nifti1Image(data, AFFINE))
