"""The simulated MEG run: its compact projection of the sources against MNE's apply_forward_raw."""

import mne
import numpy as np
import pytest

from bids_app.io.templates import write_fsaverage5
from bids_app.meg.headmodel import grid_source_space
from bids_app.simulate import meg as sim_meg


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """fsaverage5 grid of 300 points per hemisphere, Vectorview-like sensors, sphere model."""
    template = write_fsaverage5(tmp_path_factory.mktemp("subjects"))
    rng = np.random.default_rng(0)
    vertices = [np.sort(rng.choice(10242, 300, replace=False)) for _ in range(2)]
    src = grid_source_space(template.name, template.parent, vertices)
    head = sim_meg.template_head()
    info = sim_meg.finish_info(sim_meg.vectorview_like_info(250.0, head), head, 0.0)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=None)
    forward = mne.make_forward_solution(info, head["head_mri_t"], src, sphere, meg=True,
                                        eeg=False, verbose="error")
    return src, info, forward


def _sources(src, rng, n_samples=500):
    """Two groups that share a point (it carries both courses) and five single points."""
    n_points = sum(len(s["vertno"]) for s in src)
    groups = [np.array([3, 10, 11, 350]), np.array([11, 12, 599]),
              *[np.array([p]) for p in rng.choice(np.arange(20, n_points), 5, replace=False)]]
    courses = rng.standard_normal((len(groups), n_samples)) * 1e-8
    return sim_meg.RunSources(groups=groups, courses=courses, sfreq=250.0)


def test_projection_equals_mne_apply_forward_raw(model):
    src, info, forward = model
    sources = _sources(src, np.random.default_rng(1))
    gain = sim_meg.fixed_gain(forward, src)
    ours = sim_meg.project(sources, gain)

    fixed = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True,
                                         use_cps=True, verbose="error")
    reference = mne.apply_forward_raw(fixed, sources.to_stc(src), info, verbose="error")
    assert reference.ch_names == gain.ch_names
    expected = reference.get_data()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert np.abs(expected).max() > 1e-13  # the sources reach the sensors


def test_dense_sources_sum_the_courses_of_a_shared_point(model):
    src = model[0]
    sources = _sources(src, np.random.default_rng(2))
    stc = sources.to_stc(src)
    row_of_point_11 = list(stc.vertices[0]).index(src[0]["vertno"][11])
    np.testing.assert_array_equal(stc.data[row_of_point_11],
                                  sources.courses[0] + sources.courses[1])
    assert stc.data.shape[0] == len(np.unique(np.concatenate(sources.groups)))


def test_gain_refuses_grid_points_missing_from_the_forward_model(model):
    src, _, forward = model
    kept = [src[0]["vertno"][1:], src[1]["vertno"]]  # the first left point is dropped
    stc = mne.SourceEstimate(np.zeros((sum(map(len, kept)), 1)), kept, tmin=0.0, tstep=1.0)
    fewer = mne.forward.restrict_forward_to_stc(forward, stc)
    with pytest.raises(ValueError, match="lacks grid points"):
        sim_meg.fixed_gain(fewer, src)


def test_meg_runs_at_once_fit_the_available_memory():
    from bids_app.simulate.writer import meg_slots

    paper_run = 4.5 * 8 * 309 * 480_600  # bytes at the peak of a paper-preset MEG run
    assert meg_slots(2, paper_run, 24e9) == 2
    assert meg_slots(2, paper_run, 8e9) == 1  # an 8-GB laptop: one at a time
    assert meg_slots(4, paper_run, 1e9) == 1  # never fewer than one
    assert meg_slots(2, paper_run, None) == 2  # unknown memory: no limit
