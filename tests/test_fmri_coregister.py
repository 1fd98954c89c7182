"""EPI-to-T1w coregistration, NMI, FreeSurfer geometry and register.dat conversion."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from bids_app.fmri.coregister import coregister, normalized_mutual_information
from bids_app.fmri.errors import RegistrationError, SurfaceSamplingError
from bids_app.fmri.geometry import (
    freesurfer_tkr_vox2ras,
    parse_register_dat,
    register_dat_to_affine,
    tkr_to_scanner,
)

T1_AFFINE = np.array([[2.0, 0, 0, -64], [0, 2.0, 0, -64], [0, 0, 2.0, -64], [0, 0, 0, 1]])
T1_SHAPE = (64, 64, 64)
EPI_AFFINE = np.array([[-3.0, 0, 0, 60], [0, 3.0, 0, -60], [0, 0, 3.0, -45], [0, 0, 0, 1]])
EPI_SHAPE = (40, 40, 32)
# tissue intensities: background, scalp, CSF, grey matter, white matter
T1_CONTRAST = np.array([0.0, 700, 150, 450, 800])
EPI_CONTRAST = np.array([0.0, 150, 900, 600, 400])


def tissue(xyz):
    """Tissue label at world points (3, n) of a nested-ellipsoid head with asymmetric features."""
    x, y, z = xyz

    def inside(cx, cy, cz, a, b, c):
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 < 1

    label = np.zeros(x.shape, dtype=int)
    label[inside(0, 0, 0, 52, 60, 50)] = 1
    label[inside(0, 0, 0, 46, 54, 44)] = 2
    label[inside(0, 0, 0, 43, 51, 41)] = 3
    label[inside(0, -4, 4, 33, 41, 31)] = 4
    rng = np.random.default_rng(7)
    for i in range(14):  # ventricles, nuclei, gyri: break the symmetry so rotations are defined
        cx, cy, cz = rng.uniform(-30, 30, 3)
        a, b, c = rng.uniform(4, 9, 3)
        label[inside(cx, cy, cz, a, b, c)] = (2, 3, 4)[i % 3]
    return label


def world(affine, shape):
    ijk = np.indices(shape, dtype=float).reshape(3, -1)
    return affine[:3, :3] @ ijk + affine[:3, 3:]


@pytest.fixture(scope="module")
def pair():
    """T1w and EPI of one head with different contrasts and a known rigid offset."""
    t1 = T1_CONTRAST[tissue(world(T1_AFFINE, T1_SHAPE))].reshape(T1_SHAPE)
    t1 = ndimage.gaussian_filter(t1, 0.7)
    truth = np.eye(4)  # t1w_to_epi: 3-deg/-2-deg/4-deg rotation and (4, -3, 5) mm
    truth[:3, :3] = Rotation.from_euler("xyz", [3, -2, 4], degrees=True).as_matrix()
    truth[:3, 3] = [4.0, -3.0, 5.0]
    epi_world = world(EPI_AFFINE, EPI_SHAPE)
    to_anatomy = np.linalg.inv(truth)
    anatomy = to_anatomy[:3, :3] @ epi_world + to_anatomy[:3, 3:]
    epi = EPI_CONTRAST[tissue(anatomy)].reshape(EPI_SHAPE)
    epi = ndimage.gaussian_filter(epi, 0.8) + np.random.default_rng(0).normal(0, 10, EPI_SHAPE)
    return (
        nib.Nifti1Image(t1.astype(np.float32), T1_AFFINE),
        nib.Nifti1Image(epi.astype(np.float32), EPI_AFFINE),
        truth,
    )


def test_coregistration_recovers_known_offset(pair):
    t1w, epi, truth = pair
    result = coregister(epi, t1w, init="header")
    # compare the maps on points spread through the brain (a 80-mm cube)
    points = np.random.default_rng(1).uniform(-40, 40, (3, 500))
    found = result.t1w_to_epi[:3, :3] @ points + result.t1w_to_epi[:3, 3:]
    expected = truth[:3, :3] @ points + truth[:3, 3:]
    # tolerance: 1 mm anywhere in the brain, a third of an EPI voxel (observed 0.2-0.45 mm)
    assert np.linalg.norm(found - expected, axis=0).max() < 1.0
    rotation_error = Rotation.from_matrix(result.t1w_to_epi[:3, :3] @ truth[:3, :3].T)
    assert np.degrees(rotation_error.magnitude()) < 1.0
    assert result.nmi_after > result.nmi_before
    np.testing.assert_allclose(result.epi_to_t1w @ result.t1w_to_epi, np.eye(4), atol=1e-9)


def test_coregistration_refuses_bad_images(pair):
    t1w, epi, _ = pair
    four_d = nib.Nifti1Image(np.stack([epi.get_fdata()] * 3, -1).astype(np.float32), EPI_AFFINE)
    with pytest.raises(RegistrationError, match="mean EPI must be a 3-D image.*mean_volume"):
        coregister(four_d, t1w, init="header")
    nan = t1w.get_fdata().astype(np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(RegistrationError, match="T1w contains NaN"):
        coregister(epi, nib.Nifti1Image(nan, T1_AFFINE), init="header")
    with pytest.raises(RegistrationError, match="constant"):
        coregister(nib.Nifti1Image(np.zeros(EPI_SHAPE, np.float32), EPI_AFFINE), t1w, init="header")
    with pytest.raises(ValueError, match="allowed are"):
        coregister(epi, t1w, init="guess")


def test_nmi_limits():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 8, 20000).astype(float)
    # a function of the image (any relabelling of intensities) -> 2; independent -> ~1
    assert normalized_mutual_information(a, a, bins=8) == pytest.approx(2.0)
    assert normalized_mutual_information(a, 100 - 3 * a, bins=8) == pytest.approx(2.0)
    independent = normalized_mutual_information(a, rng.integers(0, 8, 20000), bins=8)
    assert 1.0 <= independent < 1.01


# --- FreeSurfer geometry ------------------------------------------------------------------------


def test_tkr_matches_nibabel_and_header_centre_on_real_mgh(mne_testing):
    img = nib.load(mne_testing / "subjects" / "sample" / "mri" / "T1.mgz")  # conformed (LIA)
    header = img.header
    np.testing.assert_allclose(
        freesurfer_tkr_vox2ras(img.affine, img.shape), header.get_vox2ras_tkr(), atol=1e-4
    )
    matrix = tkr_to_scanner(header)
    np.testing.assert_allclose(matrix[:3, :3], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(matrix[:3, 3], header["Pxyz_c"], atol=1e-4)  # c_ras
    np.testing.assert_allclose(tkr_to_scanner(img), matrix)


def test_tkr_of_a_nifti_follows_freesurfer_rule():
    # RAS NIfTI with 1 x 1 x 1.2 mm voxels, 176 x 240 x 256: voxel n/2 must sit at tkr 0 and the
    # tkr -> scanner map must be the translation by c_ras (scanner position of voxel n/2)
    affine = np.array([[1.0, 0, 0, -90], [0, 1.0, 0, -126], [0, 0, 1.2, -72], [0, 0, 0, 1]])
    shape = (176, 240, 256)
    tkr = freesurfer_tkr_vox2ras(affine, shape)
    np.testing.assert_allclose(tkr @ [88, 120, 128, 1], [0, 0, 0, 1])
    np.testing.assert_allclose(tkr[:3, :3], affine[:3, :3])
    c_ras = affine @ [88, 120, 128, 1]
    expected = np.eye(4)
    expected[:3, 3] = c_ras[:3]
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    np.testing.assert_allclose(tkr_to_scanner(header), expected, atol=1e-4)


REGISTER_DAT = """mgh-02407836-v2
3.437500
5.000000
0.150000
9.999921e-01 1.462518e-04 -3.969864e-03 7.764969e-01
3.899203e-03 -2.272341e-01 9.738325e-01 -3.873044e+01
7.596778e-04 9.738404e-01 2.272329e-01 -1.456367e+00
0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00
round
"""


def test_register_dat_parsing_and_conversion():
    # the example of FreeSurfer's RegisterDat wiki page
    reg = parse_register_dat(REGISTER_DAT)
    assert reg.shape == (4, 4) and reg[1, 3] == pytest.approx(-38.73044)
    # conformed anatomy (LIA, 256^3, 1 mm) and an RAS EPI (64 x 64 x 30, 3.4375 x 3.4375 x 5)
    t1_affine = np.array([[-1.0, 0, 0, 130], [0, 0, 1, -110], [0, -1, 0, 140], [0, 0, 0, 1]])
    t1 = nib.Nifti1Image(np.zeros((256, 256, 256), np.uint8), t1_affine)
    epi_affine = np.diag([3.4375, 3.4375, 5.0, 1.0])
    epi_affine[:3, 3] = [-100.0, -90.0, -60.0]
    epi = nib.Nifti1Image(np.zeros((64, 64, 30, 2), np.float32), epi_affine)
    t1w_to_epi = register_dat_to_affine(reg, t1, epi)
    # mri_vol2surf's chain, written with hand-made FreeSurfer matrices: EPI voxel of a surface
    # point v (anatomy tkr RAS) = inv(Tmov) @ R @ v, where Tmov is the EPI's tkr matrix
    t_mov = np.array(
        [
            [3.4375, 0, 0, -3.4375 * 32],
            [0, 3.4375, 0, -3.4375 * 32],
            [0, 0, 5.0, -5.0 * 15],
            [0, 0, 0, 1],
        ]
    )
    c_ras_t1 = t1_affine @ [128, 128, 128, 1]
    for v in np.random.default_rng(2).uniform(-60, 60, (20, 3)):
        freesurfer = np.linalg.inv(t_mov) @ reg @ np.append(v, 1)
        scanner_t1 = np.append(v + c_ras_t1[:3], 1)  # tkr -> scanner is a shift by c_ras
        ours = np.linalg.inv(epi_affine) @ t1w_to_epi @ scanner_t1
        np.testing.assert_allclose(ours, freesurfer, atol=1e-9)


def test_register_dat_errors():
    with pytest.raises(SurfaceSamplingError, match="4 header lines"):
        parse_register_dat("subject\n1\n1\n0.1\n1 0 0 0\nround\n")
    with pytest.raises(SurfaceSamplingError, match="4 x 4"):
        register_dat_to_affine(np.eye(3), nib.Nifti1Image(np.zeros((2, 2, 2)), np.eye(4)), None)
