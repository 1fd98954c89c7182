"""The simulated BOLD run: its fast resampling of head motion against scipy's reference."""

import numpy as np
import pytest
from scipy import ndimage

from bids_app.simulate import fmri as sim_fmri


@pytest.fixture(scope="module")
def head():
    """A blurred ellipsoidal head on the BOLD grid, with a cortical ribbon of 4 parcels."""
    grid = np.indices(sim_fmri.BOLD_SHAPE).astype(float)
    center = (np.asarray(sim_fmri.BOLD_SHAPE)[:, None, None, None] - 1) / 2
    radius = np.sqrt((((grid - center) / np.array([24, 29, 21])[:, None, None, None]) ** 2)
                     .sum(0))
    base = ndimage.gaussian_filter(np.where(radius < 1, 800.0, 0.0) + np.where(radius < 0.7,
                                                                                -200.0, 0.0),
                                   sim_fmri.EPI_PSF_SIGMA_VOXELS)
    ribbon = (radius > 0.75) & (radius < 0.95)
    parcel = np.full(sim_fmri.BOLD_SHAPE, -1)
    parcel[ribbon] = (grid[0][ribbon] > center[0, 0, 0, 0]) * 2 + (grid[1][ribbon]
                                                                   > center[1, 0, 0, 0])
    return base, parcel


def _reference(base, parcel, amplitudes, regressors, motion, tr, seed):
    """The straightforward way: build every volume, then move it with affine_transform."""
    rng = np.random.default_rng(seed)
    n_vol = len(regressors)
    drift = sim_fmri.slow_drift(n_vol, tr)
    signal = np.zeros(sim_fmri.BOLD_SHAPE + (n_vol,))
    inside = parcel >= 0
    signal[inside] = amplitudes[parcel[inside]] @ regressors.T / 100.0
    out = np.empty(sim_fmri.BOLD_SHAPE + (n_vol,))
    for k in range(n_vol):
        moved = sim_fmri._move(base * (1.0 + signal[..., k] + drift[k]), motion[k])
        out[..., k] = moved + rng.normal(0.0, 0.006 * 800.0, sim_fmri.BOLD_SHAPE)
    return np.clip(out, 0, None)


def test_moved_volumes_equal_scipy_affine_transform_of_each_volume(head):
    """Prefiltering the parts once and evaluating the spline inside the head only gives the
    image of moving every volume with ``scipy.ndimage.affine_transform`` (same order): equal to
    1e-3 intensity units (grey matter is 800, the noise SD 4.8) for motions of up to 2 mm and
    2 degrees, several times the simulator's random walk."""
    base, parcel = head
    rng = np.random.default_rng(0)
    n_vol, tr = 5, 3.0
    amplitudes = rng.uniform(0.5, 3.0, (4, 2))
    regressors = rng.uniform(0, 1, (n_vol, 2))
    motion = np.column_stack([rng.uniform(-2, 2, (n_vol, 3)), rng.uniform(-2, 2, (n_vol, 3))])
    img = sim_fmri.synth_bold(base, parcel, amplitudes, regressors, tr=tr, motion=motion,
                              rng=np.random.default_rng(7))
    expected = _reference(base, parcel, amplitudes, regressors, motion, tr, seed=7)
    got = np.asarray(img.dataobj, dtype=float)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    # the block signal is really there: the moved ribbon differs from the moved baseline
    assert np.abs(expected - _reference(base, parcel, 0 * amplitudes, regressors, motion, tr,
                                        seed=7)).max() > 10


def test_head_support_holds_everything_the_motion_can_move(head):
    """Outside the support the moved baseline is below 0.01 (it is set to zero there)."""
    base, _ = head
    outside = ~sim_fmri.head_support(base)
    assert outside.any()
    for params in ([2, -2, 2, 0, 0, 0], [0, 0, 0, 2, -2, 2]):
        assert np.abs(sim_fmri._move(base, np.asarray(params, float))[outside]).max() < 0.01


def test_quadratic_resampling_departs_from_cubic_by_a_fraction_of_the_noise(head):
    """The simulator's quadratic B-spline against the cubic one, inside the head: SD of the
    difference below 1 (the noise SD is 4.8, the block signal about 8); linear interpolation,
    which spoils the fMRI truth (docs/simulation.md), departs by several times more."""
    base, _ = head
    inside = sim_fmri.head_support(base)
    for params in ([0.5, 0.4, 0.3, 0.3, 0.2, 0.4], [2, -2, 2, 2, -2, 2]):
        params = np.asarray(params, float)
        cubic = sim_fmri._move(base, params, order=3)
        quadratic = sim_fmri._move(base, params, order=sim_fmri.MOTION_SPLINE_ORDER)
        linear = sim_fmri._move(base, params, order=1)
        assert (quadratic - cubic)[inside].std() < 1.0
        assert (linear - cubic)[inside].std() > 3 * (quadratic - cubic)[inside].std()
