"""Realignment accuracy on the simulator's BOLD run (issue 23): the template's baseline EPI and
cortical ribbon, block signal, drift, noise, and the simulator's random-walk head motion."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_app.fmri.realign import field_of_view_center, motion_parameters, realign
from bids_app.interfaces.threads import limit_threads
from bids_app.simulate import fmri as sim_fmri
from bids_app.simulate.design import make_design, run_events

N_KEPT = 60
#: Issue 23's targets; errors observed on this run: 0.019 mm and 0.022 degree (ANTs'
#: BOLDRigid, before issue 23, was within 0.05 mm / 0.05 degree on the same kind of run).
TOLERANCE_MM, TOLERANCE_DEG = 0.05, 0.05


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from bids_app.simulate.anatomy import prepare_template_anatomy

    anatomy = prepare_template_anatomy(tmp_path_factory.mktemp("anatomy"), atlas="fallback")
    base, gm = sim_fmri.epi_templates(anatomy.white, anatomy.pial, anatomy.inner_skull)
    parcel = sim_fmri.voxel_parcels(anatomy.mid_rr, anatomy.vertex_parcel, gm)
    design = make_design("small")
    rng = np.random.default_rng(7)
    regressors, _ = sim_fmri.block_regressors(run_events(design, rng), design.n_volumes,
                                              design.tr_s)
    dummies = design.dummy_volumes
    regressors = regressors[: dummies + N_KEPT]
    amplitudes = 1.0 + 0.6 * rng.standard_normal((len(anatomy.parcel_names),
                                                  regressors.shape[1]))
    motion = sim_fmri.random_motion(len(regressors), rng)  # the simulator's random walk
    img = sim_fmri.synth_bold(base, parcel, amplitudes, regressors, tr=design.tr_s, rng=rng,
                              motion=motion)
    kept = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32)[..., dummies:], img.affine)
    worlds = np.stack([sim_fmri.motion_world(row) for row in motion[dummies:]])
    true_maps = worlds @ np.linalg.inv(worlds[0])  # first kept volume -> volume k (RAS+ mm)
    truth = motion_parameters(true_maps, field_of_view_center(img.affine, kept.shape))
    with limit_threads(1):  # ITK sums in another order with other thread counts
        return kept, truth, true_maps, realign(kept)


def test_motion_is_recovered_within_five_hundredths(simulated):
    _, truth, _, result = simulated
    # the motion (up to 0.42 mm and 0.49 degree) is large against the tolerance: returning
    # no motion would fail by far
    assert np.abs(truth[:, :3]).max() > 0.3 and np.degrees(np.abs(truth[:, 3:])).max() > 0.3
    error_mm = np.abs(result.motion[:, :3] - truth[:, :3]).max()
    error_deg = np.degrees(np.abs(result.motion[:, 3:] - truth[:, 3:])).max()
    assert error_mm <= TOLERANCE_MM and error_deg <= TOLERANCE_DEG, (error_mm, error_deg)


def test_realigned_run_is_as_still_as_with_the_true_motion(simulated):
    kept, truth, true_maps, result = simulated
    # the volume farthest from the reference (translation + rotation as arc at 50 mm)
    far = np.argmax(np.linalg.norm(truth[:, :3], axis=1)
                    + 50 * np.linalg.norm(truth[:, 3:], axis=1))
    data = kept.get_fdata()
    true_map = np.linalg.inv(kept.affine) @ true_maps[far] @ kept.affine
    ideal = ndimage.affine_transform(data[..., far], true_map[:3, :3], true_map[:3, 3], order=3)
    # the head, away from the edges of the field of view (where scipy and ITK extrapolate
    # differently)
    head = np.zeros(kept.shape[:3], bool)
    head[3:-3, 3:-3, 3:-3] = True
    head &= data[..., 0] > 0.2 * data[..., 0].max()

    def residual(volume):
        return np.abs(volume - data[..., 0])[head].mean()

    before, ideal_residual = residual(data[..., far]), residual(ideal)
    after = residual(result.realigned.get_fdata()[..., far])
    # noise and block signal remain in both (observed: 11.7 before, 7.17 with the true
    # motion, 7.17 realigned)
    assert after <= 1.02 * ideal_residual < 0.9 * before, (after, ideal_residual, before)


def test_realignment_is_reproducible(simulated):
    kept, _, _, result = simulated
    with limit_threads(1):
        again = realign(nib.Nifti1Image(np.asarray(kept.dataobj)[..., :6], kept.affine))
    np.testing.assert_array_equal(again.motion, result.motion[:6])
