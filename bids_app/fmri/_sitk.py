"""Private bridge between nibabel (RAS+ world) and SimpleITK (ITK, LPS+ world).

SimpleITK images use ITK's geometry (origin, spacing, direction in LPS+ mm) like ANTs, so the
conversions of :mod:`._ants` apply; this module adds the array order (SimpleITK arrays are
indexed ``z, y, x``) and the conversion of a rigid ``Euler3DTransform`` to a RAS+ matrix.
SimpleITK is imported on first use.
"""

from __future__ import annotations

import numpy as np

from ._ants import LPS_FLIP, ants_geometry, ants_transform_to_ras


def to_sitk(volume: np.ndarray, affine: np.ndarray):
    """SimpleITK float32 image of a 3-D array indexed ``i, j, k`` and its RAS+ affine."""
    import SimpleITK as sitk

    origin, spacing, direction = ants_geometry(affine)
    # SimpleITK's array index order is the reverse of the image's: transpose, one copy
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(volume).T, dtype=np.float32))
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction.ravel().tolist())
    return image


def from_sitk(image) -> np.ndarray:
    """Float32 array indexed ``i, j, k`` of a SimpleITK image (a copy)."""
    import SimpleITK as sitk

    return np.array(sitk.GetArrayViewFromImage(image).T, dtype=np.float32)


def ras_to_lps_point(point: np.ndarray) -> list[float]:
    """A RAS+ point (mm) in ITK's LPS+ world."""
    return (LPS_FLIP[:3, :3] @ np.asarray(point, dtype=float)).tolist()


def rigid_to_ras(transform) -> np.ndarray:
    """4 x 4 RAS+ matrix of an ITK rigid transform (fixed world -> moving world, mm)."""
    parameters = np.concatenate([transform.GetMatrix(), transform.GetTranslation()])
    return ants_transform_to_ras(parameters, np.asarray(transform.GetCenter()))
