"""Motion correction: rigid realignment of every volume to the first kept volume (DESIGN 4.2.1).

The registration itself is ITK's, through SimpleITK (``ImageRegistrationMethod``: rigid
``Euler3DTransform``, mean squares on a regular 5 % sample of the reference voxels, regular-step
gradient descent at full resolution, each volume started from the previous volume's transform as
FSL's MCFLIRT does), not a hand-written optimiser; the volumes are resampled with ITK's cubic
B-spline. It replaced ANTs' ``BOLDRigid`` preset (issue 23), which was several times slower for
the same accuracy (figures and settings in docs/fmri.md). What this module adds is the
bookkeeping: world geometry in RAS+ mm, the motion parameters in a conventional form and the
framewise displacement.

Motion parameters
-----------------
For each volume ``k`` the registration returns the rigid map ``T_k`` from the reference
volume's world to volume ``k``'s world: the anatomy found at ``x`` (RAS+ mm) in the reference is
found at ``T_k(x)`` in volume ``k``. It is written ``T_k(x) = R_k (x - c) + c + t_k`` with
``c`` the centre of the reference field of view (world position of voxel ``(n - 1) / 2``), so
the parameters do not depend on where the header puts the world origin (SPM rotates about the
world origin, which is only meaningful when the origin is in the head):

* ``trans_x, trans_y, trans_z`` = ``t_k`` (mm): displacement of the field-of-view centre;
* ``rot_x, rot_y, rot_z`` (radians, as SPM's ``rp_*.txt``, FSL's ``.par`` and fMRIPrep's
  confounds): right-handed rotations about the RAS+ x, y and z axes, composed
  ``R_k = Rz(rot_z) @ Ry(rot_y) @ Rx(rot_x)`` (x first; ``scipy`` Euler sequence ``"xyz"``).

Framewise displacement follows Power et al. (2012, NeuroImage 59:2142): the sum of the absolute
backward differences of the six parameters, rotations converted to arc length on a sphere of
50 mm radius; 0 for the first volume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from . import _sitk
from .errors import RegistrationError
from .validation import bold_data, validate_bold

logger = logging.getLogger(__name__)

__all__ = [
    "MOTION_COLUMNS",
    "RealignResult",
    "field_of_view_center",
    "framewise_displacement",
    "mean_volume",
    "motion_parameters",
    "realign",
    "realign_array",
]

#: Names of the six motion parameters (fMRIPrep confounds naming).
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")

_INTERPOLATORS = ("bSpline", "linear", "lanczosWindowedSinc")

# Registration settings, chosen on the simulator's runs with benchmarks/bench_realign.py
# (docs/fmri.md). Step lengths are in mm of displacement: the optimiser's scales make a unit
# step of any parameter move the voxels by about 1 mm (``SetOptimizerScalesFromPhysicalShift``).
_LEARNING_RATE_MM = 0.1
_MIN_STEP_MM = 1e-4
_RELAXATION = 0.5
_MAX_ITERATIONS = 200


@dataclass(frozen=True)
class RealignResult:
    """Outcome of :func:`realign`.

    Attributes
    ----------
    realigned : Nifti1Image
        The run resampled on the reference volume's grid (cubic B-spline by default), float32,
        shape (n_x, n_y, n_z, n_volumes). Voxels that moved in from outside the field of view
        are 0.
    transforms : ndarray, shape (n_volumes, 4, 4)
        Rigid maps from the reference volume's world to each volume's world (RAS+ mm); the
        first is the identity.
    motion : ndarray, shape (n_volumes, 6)
        ``trans_x, trans_y, trans_z`` (mm) and ``rot_x, rot_y, rot_z`` (rad); see the module
        docstring for the convention.
    framewise_displacement : ndarray, shape (n_volumes,)
        Power's framewise displacement (mm); 0 for the first volume.
    center : ndarray, shape (3,)
        Rotation centre used for :attr:`motion` (RAS+ mm).
    """

    realigned: nib.Nifti1Image
    transforms: np.ndarray
    motion: np.ndarray
    framewise_displacement: np.ndarray
    center: np.ndarray

    def motion_table(self) -> pd.DataFrame:
        """Motion parameters and framewise displacement, one row per volume.

        Columns ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad),
        ``framewise_displacement`` (mm), as in fMRIPrep's confounds file.
        """
        table = pd.DataFrame(self.motion, columns=list(MOTION_COLUMNS))
        table["framewise_displacement"] = self.framewise_displacement
        return table


def field_of_view_center(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World position (RAS+ mm) of the centre of a grid, voxel ``(n - 1) / 2``."""
    center_voxel = (np.asarray(shape[:3], dtype=float) - 1.0) / 2.0
    return np.asarray(affine, dtype=float)[:3, :3] @ center_voxel + np.asarray(affine)[:3, 3]


def motion_parameters(transforms: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Six rigid-body parameters of each transform.

    Parameters
    ----------
    transforms : ndarray, shape (n_volumes, 4, 4)
        Rigid maps reference world -> volume world (RAS+ mm).
    center : ndarray, shape (3,)
        Rotation centre (RAS+ mm), usually :func:`field_of_view_center` of the reference.

    Returns
    -------
    motion : ndarray, shape (n_volumes, 6)
        ``trans_x, trans_y, trans_z`` (mm) and ``rot_x, rot_y, rot_z`` (rad) such that
        ``T(x) = Rz @ Ry @ Rx @ (x - center) + center + trans``.
    """
    transforms = np.asarray(transforms, dtype=float)
    center = np.asarray(center, dtype=float)
    linear = transforms[:, :3, :3]
    translation = transforms[:, :3, 3] + linear @ center - center
    rotations = Rotation.from_matrix(linear).as_euler("xyz")
    return np.column_stack([translation, rotations])


def framewise_displacement(motion: np.ndarray, *, radius_mm: float = 50.0) -> np.ndarray:
    """Framewise displacement of Power et al. (2012).

    Parameters
    ----------
    motion : ndarray, shape (n_volumes, 6)
        Translations (mm) then rotations (rad), as returned by :func:`motion_parameters`.
    radius_mm : float
        Radius (mm) of the sphere on which rotations are turned into displacements (50 mm).

    Returns
    -------
    fd : ndarray, shape (n_volumes,)
        ``sum |d trans| + radius_mm * sum |d rot|`` (mm); the first value is 0.
    """
    motion = np.asarray(motion, dtype=float)
    steps = np.abs(np.diff(motion, axis=0))
    fd = steps[:, :3].sum(axis=1) + radius_mm * steps[:, 3:].sum(axis=1)
    return np.concatenate([[0.0], fd])


def mean_volume(img: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    """Mean over time of a 4-D image (e.g. the realigned run), float32, same affine."""
    validate_bold(img, dummy_scans=0, min_volumes=1, check_finite=False)
    mean = np.asarray(img.dataobj, dtype=np.float32).mean(axis=3)
    return nib.Nifti1Image(mean, img.affine)


def realign(
    img: nib.spatialimages.SpatialImage,
    *,
    sampling_rate: float = 0.05,
    seed: int | None = 1,
    interpolator: str = "bSpline",
    fd_radius_mm: float = 50.0,
) -> RealignResult:
    """Realign every volume of a run to its first volume (rigid, 6 parameters; SimpleITK).

    Parameters
    ----------
    img : nibabel image
        BOLD run without its dummy volumes (see :func:`.drop_dummy_volumes`),
        shape (n_x, n_y, n_z, n_volumes); the first volume is the reference.
    sampling_rate : float
        Fraction of the reference voxels at which the mean-squares metric is evaluated, on a
        regular grid with a random jitter (0 < rate <= 1). 5 % was as accurate as 10 % on the
        simulator's runs and half the cost (docs/fmri.md).
    seed : int | None
        Seed of the sample points' jitter, for reproducible results; None draws it from the
        clock.
    interpolator : {'bSpline', 'linear', 'lanczosWindowedSinc'}
        How volumes are resampled on the reference grid. Cubic B-spline (SPM reslices with a
        4th-degree B-spline by default) avoids the smoothing that linear interpolation applies
        differently to every volume, depending on its sub-voxel shift (see docs/fmri.md).
    fd_radius_mm : float
        Head radius (mm) for the framewise displacement.

    Returns
    -------
    result : RealignResult
        Realigned image, transforms, motion parameters and framewise displacement.

    Raises
    ------
    BoldImageError
        When the image is not a usable 4-D run (see :func:`.validate_bold`).
    RegistrationError
        When a volume is constant or the registration fails.
    """
    validate_bold(img, dummy_scans=0, min_volumes=1)
    if interpolator not in _INTERPOLATORS:
        raise ValueError(
            f"Invalid value for 'interpolator': allowed are {_INTERPOLATORS}, got {interpolator!r}"
        )
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    data = bold_data(img)
    realigned, transforms = realign_array(
        data,
        img.affine,
        sampling_rate=sampling_rate,
        seed=seed,
        interpolator=interpolator,
    )
    center = field_of_view_center(img.affine, data.shape)
    motion = motion_parameters(transforms, center)
    fd = framewise_displacement(motion, radius_mm=fd_radius_mm)
    header = img.header.copy() if isinstance(img, nib.Nifti1Image) else None
    out = nib.Nifti1Image(realigned, img.affine, header=header)
    out.set_data_dtype(np.float32)
    logger.info(
        "Realigned %d volumes: max |translation| %.2f mm, max |rotation| %.2f deg, "
        "mean FD %.3f mm.",
        data.shape[3],
        np.abs(motion[:, :3]).max(),
        np.degrees(np.abs(motion[:, 3:]).max()),
        fd.mean(),
    )
    return RealignResult(
        realigned=out, transforms=transforms, motion=motion, framewise_displacement=fd,
        center=center,
    )


def realign_array(
    data: np.ndarray,
    affine: np.ndarray,
    *,
    sampling_rate: float = 0.05,
    seed: int | None = 1,
    interpolator: str = "bSpline",
) -> tuple[np.ndarray, np.ndarray]:
    """Array-level realignment to the first volume.

    Every volume is registered to the first with the previous volume's transform as the start
    (the head moves little between volumes), then resampled on the first volume's grid. ITK
    uses its global default number of threads (``SimpleITK.ProcessObject``), which
    :func:`bids_app.interfaces.threads.limit_threads` sets to the node's budget.

    Parameters
    ----------
    data : ndarray, shape (n_x, n_y, n_z, n_volumes)
        Finite BOLD data.
    affine : ndarray, shape (4, 4)
        Voxel to RAS+ mm of every volume.
    sampling_rate, seed, interpolator
        See :func:`realign`.

    Returns
    -------
    realigned : ndarray of float32, shape (n_x, n_y, n_z, n_volumes)
    transforms : ndarray, shape (n_volumes, 4, 4)
        Reference world -> volume world (RAS+ mm); ``transforms[0]`` is the identity.
    """
    import SimpleITK as sitk

    n_volumes = data.shape[3]
    flat_std = data.reshape(-1, n_volumes).std(axis=0)
    constant = np.flatnonzero(flat_std == 0)
    if constant.size:
        raise RegistrationError(
            f"volume(s) {', '.join(map(str, constant[:10]))} of the run are constant (e.g. all "
            "zeros) and cannot be realigned; remove them or use the complete, valid run"
        )
    resampling = {
        "bSpline": sitk.sitkBSpline,  # cubic
        "linear": sitk.sitkLinear,
        "lanczosWindowedSinc": sitk.sitkLanczosWindowedSinc,
    }[interpolator]
    registration = _rigid_registration(sampling_rate, seed)
    realigned = np.empty(data.shape, dtype=np.float32)
    realigned[..., 0] = data[..., 0]
    transforms = np.tile(np.eye(4), (n_volumes, 1, 1))
    fixed = _sitk.to_sitk(data[..., 0], affine)
    transform = sitk.Euler3DTransform()
    # rotations about the field-of-view centre keep them apart from translations
    transform.SetCenter(_sitk.ras_to_lps_point(field_of_view_center(affine, data.shape)))
    report_every = max(1, n_volumes // 10)
    for k in range(1, n_volumes):
        moving = _sitk.to_sitk(data[..., k], affine)
        transform = sitk.Euler3DTransform(transform)  # start from the previous volume's
        registration.SetInitialTransform(transform, inPlace=True)
        try:
            registration.Execute(fixed, moving)
        except RuntimeError as err:
            raise RegistrationError(
                f"rigid registration of volume {k} to volume 0 failed ({err}); check that the "
                "volumes contain the head and overlap in world space"
            ) from err
        transforms[k] = _sitk.rigid_to_ras(transform)
        realigned[..., k] = _sitk.from_sitk(
            sitk.Resample(moving, fixed, transform, resampling, 0.0, sitk.sitkFloat32)
        )
        if k % report_every == 0 or k == n_volumes - 1:
            logger.info("Realignment: volume %d/%d", k + 1, n_volumes)
    return realigned, transforms


def _rigid_registration(sampling_rate: float, seed: int | None):
    """SimpleITK registration method: mean squares, regular-step gradient descent, one level.

    The metric's image gradients are central differences at the sample points (no gradient
    filter over the whole volume at every call, which would cost more than the optimisation).
    """
    import SimpleITK as sitk

    registration = sitk.ImageRegistrationMethod()
    registration.SetMetricAsMeanSquares()
    registration.SetMetricSamplingStrategy(registration.REGULAR)
    # ITK reads a seed of 0 as "use the clock": pass seed + 1 so that every seed is reproducible
    registration.SetMetricSamplingPercentage(
        sampling_rate, sitk.sitkWallClock if seed is None else int(seed) + 1
    )
    registration.SetMetricUseFixedImageGradientFilter(False)
    registration.SetMetricUseMovingImageGradientFilter(False)
    registration.SetInterpolator(sitk.sitkLinear)
    registration.SetOptimizerAsRegularStepGradientDescent(
        learningRate=_LEARNING_RATE_MM,
        minStep=_MIN_STEP_MM,
        numberOfIterations=_MAX_ITERATIONS,
        relaxationFactor=_RELAXATION,
        gradientMagnitudeTolerance=1e-8,
    )
    registration.SetOptimizerScalesFromPhysicalShift()
    return registration
