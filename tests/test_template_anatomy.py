"""Template anatomy puts the fsaverage surfaces where the anatomy is (issue 19.1).

The fMRI grid is in surface (tkregister) RAS of the image standing for the subject's anatomy,
the convention of FreeSurfer surfaces: sampling adds that image's ``c_ras``
(:func:`bids_app.fmri.geometry.tkr_to_scanner`). Template mode used to give the grid in scanner
RAS instead, so every surface point was off by the T1w's ``c_ras`` (zero in the simulated
T1w, tens of millimetres in many real ones).
"""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.datasets import load_mni152_template

from bids_app.fmri.geometry import tkr_to_scanner
from bids_app.interfaces.anatomy import TemplateImage, TemplateToT1w


def _run(interface, cwd):
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return interface.run()
    finally:
        os.chdir(old)


def _grid_to_scanner(grid_affine_file, anatomy) -> np.ndarray:
    """Template surface RAS -> scanner RAS of the anatomy, as the fMRI sampling composes it."""
    return tkr_to_scanner(anatomy) @ np.loadtxt(grid_affine_file)


def test_without_t1w_the_grid_stays_in_mni_space(tmp_path):
    import nibabel as nib

    result = _run(TemplateImage(), tmp_path)
    image = nib.load(result.outputs.out_file)
    assert not np.allclose(tkr_to_scanner(image)[:3, 3], 0)  # the MNI image has a c_ras
    np.testing.assert_allclose(_grid_to_scanner(result.outputs.grid_affine, image), np.eye(4),
                               atol=1e-9)


@pytest.mark.parametrize("shift", [(12.0, -25.0, 31.0)])
def test_with_t1w_the_grid_follows_the_t1w(tmp_path, shift):
    """A 'T1w' that is the MNI152 image (4-mm voxels, for speed) moved by ``shift`` mm:
    template points must land ``shift`` away, within 1.5 mm."""
    import nibabel as nib

    mni = load_mni152_template(resolution=4)
    affine = mni.affine.copy()
    affine[:3, 3] += shift
    t1w = tmp_path / "sub-01_T1w.nii.gz"
    nib.Nifti1Image(np.asarray(mni.dataobj), affine).to_filename(t1w)
    result = _run(TemplateToT1w(t1w=str(t1w), seed=1, num_threads=1), tmp_path)
    to_scanner = _grid_to_scanner(result.outputs.grid_affine, nib.load(t1w))
    points = np.array([[-40.0, -20.0, 50.0], [30.0, 10.0, 20.0], [0.0, -80.0, 10.0]])
    landed = points @ to_scanner[:3, :3].T + to_scanner[:3, 3]
    assert np.abs(landed - (points + shift)).max() < 1.5
