"""BOLD on the cortical surface and parcel time series (DESIGN 4.2, step 2).

Each point of the fMRI grid (e.g. the fsaverage5 vertices carried to the subject through
``sphere.reg``) takes the time series of the BOLD voxel that contains it ("vertex <- matching
voxel", the nearest-voxel rule of ``mri_vol2surf --interp nearest``), at a given fraction of the
cortical thickness between the white (0) and pial (1) surfaces; 0.5 is mid-thickness, as
``mri_vol2surf --projfrac 0.5``. Points are then averaged within parcels.

Chain of coordinates for one point (all mm, 4 x 4 matrices)::

    p_tkr  = (1 - f) * white + f * pial          # FreeSurfer surface (tkregister) RAS
    p_t1w  = tkr_to_scanner(t1w) @ p_tkr          # T1w scanner RAS (geometry.tkr_to_scanner)
    p_epi  = t1w_to_epi @ p_t1w                   # EPI scanner RAS (coregistration)
    voxel  = round(inv(bold.affine) @ p_epi)      # nearest BOLD voxel

Excluded points
---------------
A point is excluded when its nearest voxel lies outside the BOLD field of view, or when that
voxel's time series is identically zero (outside the acquired slab after realignment, or outside
the brain mask of a preprocessed run). Both counts are logged and returned. A parcel left with no
valid point gets a NaN time series and a warning naming it, rather than an error: a partial
field of view is common (e.g. the inferior temporal lobe), and the group level drops the missing
observations of that parcel only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import sparse

from .errors import SurfaceSamplingError
from .geometry import tkr_to_scanner
from .validation import bold_data, validate_bold

logger = logging.getLogger(__name__)

__all__ = [
    "SurfaceSamples",
    "parcel_time_series",
    "project_points",
    "sample_bold_on_surface",
    "sample_nearest_voxel",
]


@dataclass(frozen=True)
class SurfaceSamples:
    """BOLD time series at the grid points (:func:`sample_bold_on_surface`).

    Attributes
    ----------
    values : ndarray of float32, shape (n_points, n_volumes)
        Time series of each point's nearest voxel; NaN rows for excluded points.
    valid : ndarray of bool, shape (n_points,)
        Points with a usable voxel.
    voxels : ndarray of int, shape (n_points, 3)
        Nearest BOLD voxel of each point (-1 when outside the field of view).
    n_outside : int
        Points whose nearest voxel is outside the BOLD field of view.
    n_zero : int
        Points inside the field of view whose voxel time series is identically zero.
    """

    values: np.ndarray
    valid: np.ndarray
    voxels: np.ndarray
    n_outside: int
    n_zero: int


def project_points(
    white: np.ndarray, pial: np.ndarray, projection_fraction: float
) -> np.ndarray:
    """Points at a fraction of the cortical thickness.

    Parameters
    ----------
    white, pial : ndarray, shape (n_points, 3)
        Matching vertices of the white and pial surfaces (any common frame, mm).
    projection_fraction : float
        0 = white surface, 1 = pial surface, 0.5 = mid-thickness.

    Returns
    -------
    points : ndarray, shape (n_points, 3)
        ``(1 - f) * white + f * pial``.
    """
    white = _coordinates(white, "white")
    pial = _coordinates(pial, "pial")
    if white.shape != pial.shape:
        raise SurfaceSamplingError(
            f"white and pial coordinates must match point for point, got {white.shape} and "
            f"{pial.shape}"
        )
    fraction = float(projection_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise SurfaceSamplingError(
            f"projection_fraction must be in [0, 1] (0 = white, 1 = pial), got {fraction}"
        )
    return (1.0 - fraction) * white + fraction * pial


def sample_nearest_voxel(
    data: np.ndarray, affine: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of the voxels containing world points (nearest-voxel rule).

    Parameters
    ----------
    data : ndarray, shape (n_x, n_y, n_z) or (n_x, n_y, n_z, n_volumes)
        Image data.
    affine : ndarray, shape (4, 4)
        Voxel -> world (mm).
    points : ndarray, shape (n_points, 3)
        World coordinates (mm), in the same world as ``affine``.

    Returns
    -------
    values : ndarray, shape (n_points,) or (n_points, n_volumes)
        The voxel values; 0 where the point is outside the field of view.
    voxels : ndarray of int, shape (n_points, 3)
        Voxel indices (``floor(index + 0.5)`` of the continuous index); -1 outside the field
        of view.
    inside : ndarray of bool, shape (n_points,)
        Points inside the field of view.
    """
    points = np.asarray(points, dtype=float)
    continuous = points @ np.linalg.inv(affine)[:3, :3].T + np.linalg.inv(affine)[:3, 3]
    voxels = np.floor(continuous + 0.5).astype(np.int64)  # nearest voxel, halves round up
    dims = np.asarray(data.shape[:3])
    inside = np.all((voxels >= 0) & (voxels < dims), axis=1)
    voxels[~inside] = -1
    values = np.zeros((len(points),) + data.shape[3:], dtype=data.dtype)
    i, j, k = voxels[inside].T
    values[inside] = data[i, j, k]
    return values, voxels, inside


def sample_bold_on_surface(
    bold: nib.spatialimages.SpatialImage,
    white: np.ndarray,
    pial: np.ndarray,
    t1w,
    t1w_to_epi: np.ndarray,
    *,
    projection_fraction: float,
) -> SurfaceSamples:
    """Sample a BOLD run at the grid points of the cortical ribbon.

    Parameters
    ----------
    bold : nibabel image
        Realigned BOLD run, shape (n_x, n_y, n_z, n_volumes).
    white, pial : ndarray, shape (n_points, 3)
        White and pial coordinates of the grid points in FreeSurfer surface (tkregister) RAS
        mm, as :func:`nibabel.freesurfer.read_geometry` returns them (both hemispheres
        concatenated, in the order of ``parcel_of_point``).
    t1w : nibabel image or header
        The subject's anatomy: the T1w given to ``recon-all`` or its ``orig.mgz`` / ``T1.mgz``
        (only the header is used; see :mod:`.geometry`).
    t1w_to_epi : ndarray, shape (4, 4)
        T1w scanner RAS -> EPI scanner RAS (mm), from :func:`.coregister` or
        :func:`.register_dat_to_affine`.
    projection_fraction : float
        Where in the ribbon to sample: 0 = white, 1 = pial, 0.5 = mid-thickness.

    Returns
    -------
    samples : SurfaceSamples
        Time series per point, the valid mask, voxels and exclusion counts.

    Raises
    ------
    SurfaceSamplingError
        When coordinates are malformed or the matrix is not 4 x 4.
    BoldImageError
        When the BOLD image is not 4-D or contains non-finite values.
    """
    validate_bold(bold, dummy_scans=0, min_volumes=1)
    t1w_to_epi = np.asarray(t1w_to_epi, dtype=float)
    if t1w_to_epi.shape != (4, 4) or not np.all(np.isfinite(t1w_to_epi)):
        raise SurfaceSamplingError(
            f"t1w_to_epi must be a finite 4 x 4 matrix, got shape {t1w_to_epi.shape}"
        )
    points_tkr = project_points(white, pial, projection_fraction)
    tkr_to_epi = t1w_to_epi @ tkr_to_scanner(t1w)
    points_epi = points_tkr @ tkr_to_epi[:3, :3].T + tkr_to_epi[:3, 3]
    data = bold_data(bold)
    values, voxels, inside = sample_nearest_voxel(data, bold.affine, points_epi)
    zero = inside & ~np.any(values != 0, axis=1)
    valid = inside & ~zero
    values = values.astype(np.float32, copy=False)
    values[~valid] = np.nan
    n_outside = int((~inside).sum())
    n_zero = int(zero.sum())
    if n_outside or n_zero:
        logger.warning(
            "Surface sampling: %d of %d grid points fall outside the BOLD field of view and %d "
            "on voxels without signal; they are excluded.",
            n_outside,
            len(points_epi),
            n_zero,
        )
    else:
        logger.info("Surface sampling: all %d grid points have a BOLD voxel.", len(points_epi))
    return SurfaceSamples(
        values=values, valid=valid, voxels=voxels, n_outside=n_outside, n_zero=n_zero
    )


def parcel_time_series(
    point_values: np.ndarray,
    parcel_of_point: np.ndarray,
    parcel_names: Sequence[str],
    *,
    valid: np.ndarray | None = None,
) -> pd.DataFrame:
    """Average the points of each parcel.

    Parameters
    ----------
    point_values : ndarray, shape (n_points, n_volumes)
        Time series per grid point.
    parcel_of_point : ndarray of int, shape (n_points,)
        Parcel index (into ``parcel_names``) of each point; -1 = not in any analysed parcel.
    parcel_names : sequence of str, length n_parcels
        Parcel names, in index order.
    valid : ndarray of bool, shape (n_points,) | None
        Points to use (default: points whose values are all finite).

    Returns
    -------
    time_series : DataFrame, shape (n_volumes, n_parcels)
        Columns are the parcel names; index ``volume`` counts the given volumes from 0. A
        parcel without any valid point is all NaN (a warning names it).

    Raises
    ------
    SurfaceSamplingError
        When the arrays disagree in length or a parcel index is out of range.
    """
    point_values = np.asarray(point_values)
    if point_values.ndim != 2:
        raise SurfaceSamplingError(
            f"point values must be 2-D (n_points, n_volumes), got shape {point_values.shape}"
        )
    n_points = point_values.shape[0]
    parcels = _parcel_indices(parcel_of_point, n_points, parcel_names)
    names = [str(name) for name in parcel_names]
    if valid is None:
        valid = np.all(np.isfinite(point_values), axis=1)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (n_points,):
        raise SurfaceSamplingError(
            f"valid must have one entry per point ({n_points}), got shape {valid.shape}"
        )
    used = valid & (parcels >= 0)
    counts = np.bincount(parcels[used], minlength=len(names))
    weights = sparse.csr_matrix(
        (1.0 / counts[parcels[used]], (parcels[used], np.flatnonzero(used))),
        shape=(len(names), n_points),
    )
    values = np.where(used[:, None], point_values, 0.0).astype(float)
    averaged = np.asarray(weights @ values).T
    empty = counts == 0
    if empty.any():
        averaged[:, empty] = np.nan
        labelled = np.bincount(parcels[parcels >= 0], minlength=len(names))
        never = [names[i] for i in np.flatnonzero(empty & (labelled == 0))]
        lost = [names[i] for i in np.flatnonzero(empty & (labelled > 0))]
        if never:
            logger.warning(
                "No grid point is labelled with parcel(s) %s; their time series are NaN.",
                ", ".join(never),
            )
        if lost:
            logger.warning(
                "Every grid point of parcel(s) %s is outside the BOLD field of view or without "
                "signal; their time series are NaN.",
                ", ".join(lost),
            )
    table = pd.DataFrame(averaged, columns=names)
    table.index.name = "volume"
    return table


def parcel_coverage(valid: np.ndarray, parcel_of_point: np.ndarray,
                    parcel_names: Sequence[str]) -> dict[str, float]:
    """Share of each parcel's grid points with BOLD signal (inside the field of view, not
    masked), for the report's coverage map.

    Parameters
    ----------
    valid : ndarray of bool, shape (n_points,)
        Points with a usable voxel (:attr:`SurfaceSamples.valid`).
    parcel_of_point, parcel_names
        As :func:`parcel_time_series`.

    Returns
    -------
    coverage : dict
        Parcel name -> share in [0, 1]; parcels without any grid point are left out.
    """
    valid = np.asarray(valid, bool)
    parcels = _parcel_indices(parcel_of_point, len(valid), parcel_names)
    inside = parcels >= 0
    total = np.bincount(parcels[inside], minlength=len(parcel_names))
    good = np.bincount(parcels[inside & valid], minlength=len(parcel_names))
    return {str(name): float(good[i] / total[i]) for i, name in enumerate(parcel_names)
            if total[i]}


def _parcel_indices(parcel_of_point, n_points: int, parcel_names) -> np.ndarray:
    """Validated integer parcel index per point (-1 = excluded)."""
    parcels = np.asarray(parcel_of_point)
    if parcels.shape != (n_points,):
        raise SurfaceSamplingError(
            f"parcel_of_point must have one entry per point ({n_points}), got shape "
            f"{parcels.shape}"
        )
    if parcels.size and not np.issubdtype(parcels.dtype, np.integer):
        if not np.all(parcels == np.round(parcels)):
            raise SurfaceSamplingError("parcel_of_point must hold whole numbers")
        parcels = parcels.astype(np.int64)
    n_parcels = len(parcel_names)
    if n_parcels == 0:
        raise SurfaceSamplingError("parcel_names is empty: at least one parcel is needed")
    bad = (parcels < -1) | (parcels >= n_parcels)
    if bad.any():
        raise SurfaceSamplingError(
            f"parcel_of_point holds {np.unique(parcels[bad])[:5].tolist()}; allowed are -1 "
            f"(excluded) and 0..{n_parcels - 1} (indices into the {n_parcels} parcel names)"
        )
    return parcels.astype(np.int64)


def _coordinates(array, what: str) -> np.ndarray:
    coords = np.asarray(array, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise SurfaceSamplingError(
            f"{what} coordinates must have shape (n_points, 3), got {coords.shape}"
        )
    if not np.all(np.isfinite(coords)):
        raise SurfaceSamplingError(f"{what} coordinates contain NaN or infinite values")
    return coords
