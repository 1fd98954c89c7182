"""MEG head models on the real sample head (issue 4)."""

from __future__ import annotations

import shutil

import mne
import numpy as np
import pytest

from bids_app.meg.headmodel import (
    HeadModelError,
    bem_solution,
    content_key,
    forward_model,
    sphere_model,
)
from bids_app.meg.options import HeadModelOptions


@pytest.fixture(scope="module")
def sample(mne_testing, tmp_path_factory):
    """The sample subject's BEM folder in a writable SUBJECTS_DIR."""
    subjects = tmp_path_factory.mktemp("subjects")
    shutil.copytree(mne_testing / "subjects" / "sample", subjects / "sample")
    info = mne.io.read_info(mne_testing / "SSS" / "sample_audvis_trunc_raw_sss.fif",
                            verbose="error")
    trans = mne.read_trans(mne_testing / "MEG" / "sample" / "sample_audvis_trunc-trans.fif")
    return subjects, info, trans


@pytest.mark.shared_data
def test_bem_matches_the_shipped_solution(mne_testing, tmp_path):
    """Our BEM of the sample subject's 1280-triangle inner skull equals MNE's stored solution.

    The stored solution was computed from the surface inside ``sample-1280-bem.fif``; that
    surface is written as the subject's ``bem/inner_skull.surf``. Tolerance 1e-5 relative: the
    FIF file stores the matrix in single precision.
    """
    from nibabel.freesurfer import write_geometry

    bem_dir = mne_testing / "subjects" / "sample" / "bem"
    model = mne.read_bem_surfaces(bem_dir / "sample-1280-bem.fif", verbose="error")[0]
    (tmp_path / "sample" / "bem").mkdir(parents=True)
    write_geometry(str(tmp_path / "sample" / "bem" / "inner_skull.surf"), model["rr"] * 1000,
                   model["tris"])
    ours = bem_solution("sample", tmp_path, HeadModelOptions(bem_conductivity=0.3),
                        full_resolution=True)
    ref = mne.read_bem_solution(bem_dir / "sample-1280-bem-sol.fif", verbose="error")
    assert ours["surfs"][0]["np"] == ref["surfs"][0]["np"] == 642
    scale = np.abs(ref["solution"]).max()
    np.testing.assert_allclose(ours["solution"], ref["solution"], rtol=0, atol=1e-5 * scale)


@pytest.mark.shared_data
def test_forward_on_the_real_head(sample):
    subjects, info, trans = sample
    bem = bem_solution("sample", subjects, HeadModelOptions(bem_ico=4))
    src = mne.setup_volume_source_space("sample", pos=20.0, bem=bem, subjects_dir=subjects,
                                        verbose="error")
    fwd = forward_model(info, trans, src, bem)
    n_meg = len(mne.pick_types(info, meg=True, exclude=[]))
    assert n_meg == 306
    assert fwd["sol"]["data"].shape == (306, 3 * src[0]["nuse"])
    assert np.all(np.isfinite(fwd["sol"]["data"]))
    key = content_key(info, trans, src, bem)
    assert key == content_key(info.copy(), trans, src, bem)
    moved = info.copy()
    with moved._unlock():
        moved["dev_head_t"]["trans"][0, 3] += 0.001
    assert content_key(moved, trans, src, bem) != key


@pytest.mark.shared_data
def test_sphere_fallback_fits_head_shape(sample):
    _, info, _ = sample
    sphere = sphere_model(info)
    assert sphere["is_sphere"] and 0.05 < sphere.radius < 0.12


def test_missing_inner_skull_is_named(tmp_path):
    (tmp_path / "sub-01" / "bem").mkdir(parents=True)
    with pytest.raises(HeadModelError, match="No inner-skull surface in .*sub-01/bem"):
        bem_solution("sub-01", tmp_path, HeadModelOptions())
