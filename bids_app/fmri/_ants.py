"""Private bridge between nibabel (RAS+ world) and ANTsPy (ITK, LPS+ world).

ITK images place voxel ``ijk`` at ``origin + direction @ (spacing * ijk)`` in LPS+ millimetres;
NIfTI affines place it at ``affine @ [ijk, 1]`` in RAS+ millimetres. The two differ by the flip
``diag(-1, -1, 1)``. ANTs' rigid registration returns a transform that maps points of the
*fixed* image's world to points of the *moving* image's world (ITK convention); helpers here
convert it to a 4 x 4 matrix in RAS+ mm.

``antsRegistration`` writes its transforms to files; they go to a temporary folder that is removed
before returning, so callers see arrays only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import numpy as np

from .errors import RegistrationError

#: Flip between RAS+ and LPS+ (homogeneous).
LPS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def ants_geometry(affine: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
    """ITK origin, spacing and direction (LPS+) of a NIfTI-style RAS+ affine.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Voxel to RAS+ mm.

    Returns
    -------
    origin : tuple of 3 float
    spacing : tuple of 3 float
        Voxel sizes (mm).
    direction : ndarray, shape (3, 3)
        Unit direction cosines (columns), LPS+.
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = LPS_FLIP[:3, :3] @ (linear / spacing)
    origin = LPS_FLIP[:3, :3] @ np.asarray(affine, dtype=float)[:3, 3]
    return tuple(origin), tuple(spacing), direction


def to_ants(volume: np.ndarray, affine: np.ndarray):
    """Make an ANTs image from a 3-D array and its RAS+ affine (float32 copy)."""
    import ants

    origin, spacing, direction = ants_geometry(affine)
    return ants.from_numpy(
        np.ascontiguousarray(volume, dtype=np.float32),
        origin=origin,
        spacing=spacing,
        direction=direction,
    )


def ants_transform_to_ras(parameters: np.ndarray, fixed_parameters: np.ndarray) -> np.ndarray:
    """4 x 4 RAS+ matrix of an ITK ``AffineTransform`` (fixed world -> moving world).

    ITK maps ``x -> A (x - c) + c + t`` in LPS+, with ``parameters = [A (row-major), t]`` and
    ``fixed_parameters = c``.
    """
    params = np.asarray(parameters, dtype=float)
    linear = params[:9].reshape(3, 3)
    translation = params[9:12]
    center = np.asarray(fixed_parameters, dtype=float)[:3]
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + center - linear @ center
    return LPS_FLIP @ lps @ LPS_FLIP


@contextlib.contextmanager
def ants_random_seed(seed: int | None) -> Iterator[None]:
    """Fix ANTs' sampling seed (``ANTS_RANDOM_SEED``) for the duration of the block.

    ``antsRegistration`` draws its metric sample points at random unless this environment
    variable holds a non-zero integer; the previous value is restored on exit.
    """
    if seed is None:
        yield
        return
    previous = os.environ.get("ANTS_RANDOM_SEED")
    os.environ["ANTS_RANDOM_SEED"] = str(int(seed))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ANTS_RANDOM_SEED", None)
        else:
            os.environ["ANTS_RANDOM_SEED"] = previous


def register_rigid(
    fixed, moving, *, interpolator: str = "linear", **options
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid ``ants.registration`` of ``moving`` onto ``fixed``.

    Parameters
    ----------
    fixed, moving : ANTsImage
    interpolator : str
        Interpolation of the returned resampled image: ``"linear"`` (the registration's own
        output) or any :func:`ants.apply_transforms` interpolator (e.g. ``"bSpline"``).
    **options
        Passed to :func:`ants.registration` (``type_of_transform`` must be rigid).

    Returns
    -------
    fixed_to_moving : ndarray, shape (4, 4)
        RAS+ mm matrix mapping a point of the fixed image's world to the corresponding point of
        the moving image's world.
    warped : ndarray, shape fixed.shape
        The moving image resampled on the fixed grid, float32.
    """
    import ants

    with tempfile.TemporaryDirectory(prefix="megfmri_ants_") as tmp:
        try:
            result = ants.registration(
                fixed, moving, outprefix=os.path.join(tmp, "reg_"), **options
            )
        except RuntimeError as err:  # antsRegistration returned non-zero
            raise RegistrationError(
                f"ANTs rigid registration failed ({err}); check that both images contain the "
                "head (not all zeros) and overlap in world space"
            ) from err
        transforms = result["fwdtransforms"]
        if len(transforms) != 1:
            raise RegistrationError(
                f"expected one rigid transform from ANTs, got {len(transforms)}"
            )
        transform = ants.read_transform(transforms[0])
        matrix = ants_transform_to_ras(transform.parameters, transform.fixed_parameters)
        if interpolator == "linear":
            warped_image = result["warpedmovout"]
        else:
            warped_image = ants.apply_transforms(
                fixed, moving, transformlist=transforms, interpolator=interpolator
            )
        warped = warped_image.numpy().astype(np.float32, copy=False)
    return matrix, warped
