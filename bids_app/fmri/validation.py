"""Input checks for BOLD runs and the removal of dummy volumes (DESIGN 4.2, step 1).

These run first so that a user sees one clear message instead of a traceback from deep inside a
registration or a filter.
"""

from __future__ import annotations

import logging
import numbers

import nibabel as nib
import numpy as np

from .errors import BoldImageError, RepetitionTimeError

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_REPETITION_TIME_S",
    "TR_TOLERANCE_S",
    "bold_data",
    "drop_dummy_volumes",
    "validate_bold",
    "validate_repetition_time",
]

#: Largest accepted repetition time (s). Larger values are nearly always milliseconds.
MAX_REPETITION_TIME_S = 30.0
#: Largest accepted difference between the sidecar's and the header's TR (s), as the BIDS
#: validator's REPETITION_TIME_MISMATCH check.
TR_TOLERANCE_S = 1e-3


def validate_repetition_time(tr, *, img: nib.spatialimages.SpatialImage | None = None) -> float:
    """Check the repetition time of a run and return it as a float (s).

    Parameters
    ----------
    tr : float | None
        ``RepetitionTime`` from the BOLD JSON sidecar, in seconds (BIDS).
    img : nibabel image | None
        When given, the header's time step (``pixdim[4]`` in its time unit, seconds when the
        unit is unknown, as the BIDS validator reads it) must equal ``tr`` within 1 ms, the
        BIDS validator's REPETITION_TIME_MISMATCH rule: the block volumes are chosen from the
        TR, so a disagreement means one of the two is wrong. A header without a time step
        (0) is not compared.

    Returns
    -------
    tr : float
        The repetition time (s).

    Raises
    ------
    RepetitionTimeError
        When ``tr`` is missing, not a number, not finite, not positive or larger than
        :data:`MAX_REPETITION_TIME_S` (likely milliseconds), or disagrees with the header.
    """
    fix = "set \"RepetitionTime\" (seconds) in the run's _bold.json sidecar"
    if tr is None:
        raise RepetitionTimeError(f"the BOLD run has no RepetitionTime; {fix}")
    if isinstance(tr, bool) or not isinstance(tr, numbers.Real):
        raise RepetitionTimeError(
            f"RepetitionTime must be a number of seconds, got {tr!r} ({type(tr).__name__}); {fix}"
        )
    value = float(tr)
    if not np.isfinite(value) or value <= 0:
        raise RepetitionTimeError(
            f"RepetitionTime must be a positive number of seconds, got {value}; {fix}"
        )
    if value > MAX_REPETITION_TIME_S:
        raise RepetitionTimeError(
            f"RepetitionTime {value:g} is larger than {MAX_REPETITION_TIME_S:g} s and looks like "
            f"milliseconds; BIDS gives it in seconds ({value / 1000:g} s?); {fix}"
        )
    if img is not None:
        header_tr = _header_repetition_time(img)
        if header_tr is not None and abs(header_tr - value) >= TR_TOLERANCE_S:
            raise RepetitionTimeError(
                f"RepetitionTime {value:g} s in the JSON sidecar disagrees with the image "
                f"header's time step, {header_tr:g} s; correct whichever is wrong (the sidecar, "
                "or the header's pixdim[4] and time unit, e.g. by converting the DICOMs again "
                "with dcm2niix)"
            )
    return value


def _header_repetition_time(img) -> float | None:
    """Time step of a 4-D NIfTI header in seconds, or None when absent."""
    header = img.header
    zooms = header.get_zooms()
    if len(zooms) < 4 or not zooms[3] or not np.isfinite(zooms[3]):
        return None
    step = float(zooms[3])
    if step == 0:
        return None
    get_units = getattr(header, "get_xyzt_units", None)
    units = get_units()[1] if get_units is not None else "sec"
    return {"msec": step / 1e3, "usec": step / 1e6}.get(units, step)


def validate_bold(
    img: nib.spatialimages.SpatialImage,
    *,
    dummy_scans: int,
    min_volumes: int = 2,
    check_finite: bool = True,
) -> None:
    """Check that an image can be used as a BOLD run.

    Parameters
    ----------
    img : nibabel image
        The BOLD run.
    dummy_scans : int
        Volumes that will be discarded at the start (>= 0).
    min_volumes : int
        Volumes that must remain after discarding the dummy scans.
    check_finite : bool
        Also check that every value is finite (reads the whole image).

    Raises
    ------
    BoldImageError
        When the image is not 4-D, has too few volumes, has a singular or non-finite affine, or
        contains NaN / infinite values.
    """
    if isinstance(dummy_scans, bool) or not isinstance(dummy_scans, numbers.Integral):
        raise BoldImageError(f"dummy_scans must be a whole number, got {dummy_scans!r}")
    if dummy_scans < 0:
        raise BoldImageError(f"dummy_scans must be >= 0, got {dummy_scans}")
    shape = img.shape
    if len(shape) == 3:
        raise BoldImageError(
            f"the BOLD image is 3-D {tuple(shape)} (a single volume); a BOLD run must be 4-D "
            "(x, y, z, time). Check that the right file was selected (not a reference or "
            "mean image)"
        )
    if len(shape) != 4:
        raise BoldImageError(
            f"the BOLD image has {len(shape)} dimensions {tuple(shape)}; a BOLD run must be 4-D "
            "(x, y, z, time)"
        )
    n_volumes = shape[3]
    if n_volumes - dummy_scans < min_volumes:
        raise BoldImageError(
            f"the BOLD run has {n_volumes} volume(s); after discarding {dummy_scans} dummy "
            f"scan(s) at least {min_volumes} must remain. Use the complete run or lower "
            "dummy_scans"
        )
    affine = np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise BoldImageError(
            "the BOLD image's affine (voxel to world) is singular or not finite; repair the "
            "header (e.g. re-convert the DICOMs with dcm2niix)"
        )
    if check_finite:
        data = np.asanyarray(img.dataobj)
        bad = ~np.isfinite(data)
        if bad.any():
            volumes = np.flatnonzero(bad.reshape(-1, n_volumes).any(axis=0))
            shown = ", ".join(str(v) for v in volumes[:10]) + (" ..." if len(volumes) > 10 else "")
            raise BoldImageError(
                f"the BOLD image contains {int(bad.sum())} NaN or infinite value(s) in "
                f"{len(volumes)} volume(s) (0-based: {shown}); registration and filtering need "
                "finite values. Re-export the run from the scanner data or replace the "
                "non-finite voxels before running the app"
            )


def bold_data(img: nib.spatialimages.SpatialImage) -> np.ndarray:
    """Data of a BOLD image as float32, shape (n_x, n_y, n_z, n_volumes)."""
    return np.asarray(img.dataobj, dtype=np.float32)


def drop_dummy_volumes(
    img: nib.spatialimages.SpatialImage, dummy_scans: int, *, min_volumes: int = 2
) -> nib.Nifti1Image:
    """Discard the first volumes of a run (scanner not at steady state).

    Parameters
    ----------
    img : nibabel image
        4-D BOLD run, shape (n_x, n_y, n_z, n_volumes).
    dummy_scans : int
        Volumes to discard (DESIGN 4.2: 5 in the paper).
    min_volumes : int
        Volumes that must remain.

    Returns
    -------
    kept : Nifti1Image
        Shape (n_x, n_y, n_z, n_volumes - dummy_scans), same affine and header. Volume ``j`` of
        ``kept`` is volume ``j + dummy_scans`` of the run, acquired at ``(j + dummy_scans) * TR``
        after the first acquired volume.

    Raises
    ------
    BoldImageError
        See :func:`validate_bold`.
    """
    validate_bold(img, dummy_scans=dummy_scans, min_volumes=min_volumes)
    data = np.asanyarray(img.dataobj)[..., dummy_scans:]
    header = img.header.copy()
    kept = nib.Nifti1Image(data, img.affine, header=header)
    kept.set_data_dtype(data.dtype)  # scaled integers come back as floats: keep them exact
    logger.info("Discarded %d dummy volume(s); %d remain.", dummy_scans, data.shape[3])
    return kept
