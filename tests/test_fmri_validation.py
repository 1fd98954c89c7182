"""Bad BOLD input fails early with a message naming the problem and the fix."""

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from bids_app.fmri.errors import BoldImageError, FMRIInputError, RepetitionTimeError
from bids_app.fmri.validation import drop_dummy_volumes, validate_bold, validate_repetition_time


def bold(n_volumes=12, shape=(4, 5, 6), tr=2.0):
    data = np.arange(np.prod(shape) * n_volumes, dtype=np.float32).reshape(*shape, n_volumes)
    img = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_zooms((3.0, 3.0, 3.0, tr))
    img.header.set_xyzt_units("mm", "sec")
    return img


def test_dummy_volumes_are_dropped():
    img = bold()
    kept = drop_dummy_volumes(img, 5)
    assert kept.shape == (4, 5, 6, 7)
    np.testing.assert_array_equal(kept.get_fdata(), img.get_fdata()[..., 5:])
    np.testing.assert_array_equal(kept.affine, img.affine)
    assert kept.header.get_zooms()[3] == 2.0
    assert drop_dummy_volumes(img, 0).shape[3] == 12


@pytest.mark.parametrize(
    ("tr", "match"),
    [
        (None, "no RepetitionTime.*_bold.json"),
        ("2.0", "must be a number of seconds.*str"),
        (True, "must be a number of seconds"),
        (0.0, "positive number of seconds"),
        (-2.0, "positive number of seconds"),
        (float("nan"), "positive number of seconds"),
        (2000.0, "looks like milliseconds.*2 s"),
    ],
)
def test_invalid_repetition_time(tr, match):
    with pytest.raises(RepetitionTimeError, match=match):
        validate_repetition_time(tr)


def test_valid_repetition_time_and_header_mismatch():
    """Issue 19.6: a sidecar TR that disagrees with the header is an error, as in the BIDS
    validator (1 ms tolerance, the header's time unit applied, no time step: not compared)."""
    assert validate_repetition_time(3) == 3.0
    assert validate_repetition_time(3.0, img=bold(tr=3.0004)) == 3.0
    with pytest.raises(RepetitionTimeError, match="disagrees with the image header.*2 s"):
        validate_repetition_time(3.0, img=bold(tr=2.0))
    in_ms = bold(tr=3000.0)
    in_ms.header.set_xyzt_units("mm", "msec")
    assert validate_repetition_time(3.0, img=in_ms) == 3.0
    assert validate_repetition_time(3.0, img=bold(tr=0.0)) == 3.0


def test_3d_image_is_refused():
    img = nib.Nifti1Image(np.ones((4, 5, 6), np.float32), np.eye(4))
    with pytest.raises(BoldImageError, match=r"3-D \(4, 5, 6\).*must be 4-D"):
        drop_dummy_volumes(img, 5)


def test_other_dimensionality_is_refused():
    img = nib.Nifti1Image(np.ones((4, 5, 6, 7, 2), np.float32), np.eye(4))
    with pytest.raises(BoldImageError, match="5 dimensions"):
        validate_bold(img, dummy_scans=0)


def test_too_few_volumes():
    with pytest.raises(BoldImageError, match="6 volume.*5 dummy.*at least 2 must remain"):
        drop_dummy_volumes(bold(n_volumes=6), 5)


def test_nan_values_are_refused():
    img = bold()
    data = img.get_fdata(dtype=np.float32)
    data[1, 2, 3, 4] = np.nan
    data[0, 0, 0, 7] = np.inf
    with pytest.raises(BoldImageError, match=r"2 NaN or infinite value.*2 volume.*4, 7"):
        drop_dummy_volumes(nib.Nifti1Image(data, img.affine), 5)


def test_bad_dummy_scans_and_affine():
    with pytest.raises(BoldImageError, match="dummy_scans must be >= 0"):
        drop_dummy_volumes(bold(), -1)
    with pytest.raises(BoldImageError, match="whole number"):
        drop_dummy_volumes(bold(), 2.5)
    # nibabel refuses to build such an image; any object with shape / affine / dataobj will do
    data = np.ones((4, 5, 6, 8), np.float32)
    singular = SimpleNamespace(shape=data.shape, affine=np.zeros((4, 4)), dataobj=data)
    with pytest.raises(BoldImageError, match="affine .* singular"):
        validate_bold(singular, dummy_scans=0)


def test_errors_are_value_errors():
    # the command line maps every FMRIInputError (a ValueError) to one exit code
    assert issubclass(BoldImageError, FMRIInputError) and issubclass(FMRIInputError, ValueError)
