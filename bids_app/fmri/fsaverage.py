"""Parcel time series from fMRIPrep's ``space-fsaverage*`` BOLD (DESIGN 3, ``--fmriprep-dir``).

fMRIPrep has already realigned, coregistered and sampled the run on an fsaverage surface
(``_hemi-L_space-fsaverage5_bold.func.gii`` and ``_hemi-R_...``). The fsaverage meshes are nested
icosahedral subdivisions: the first ``10 * 4**k + 2`` vertices of fsaverage (ico-7, 163,842),
fsaverage6 (40,962) or fsaverage5 (10,242) are exactly the vertices of ico-``k``. So the fMRI grid
(ico-4, ico-5 or ico-6 on fsaverage) is read off as the first vertices of each hemisphere, and
the parcel labels of the grid apply unchanged.

fMRIPrep keeps every volume, so the dummy volumes are dropped here, as in the app's own route.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import BoldImageError, SurfaceSamplingError
from .surface import parcel_time_series

logger = logging.getLogger(__name__)

__all__ = ["ICO_VERTICES", "fsaverage_parcel_time_series", "ico_order"]

#: Vertices per hemisphere of the icosahedral subdivisions used by fsaverage (order -> count).
ICO_VERTICES = {order: 10 * 4**order + 2 for order in range(8)}


def ico_order(n_vertices: int) -> int | None:
    """Icosahedral order of a per-hemisphere vertex count, or None if it is not one."""
    for order, count in ICO_VERTICES.items():
        if count == n_vertices:
            return order
    return None


def fsaverage_parcel_time_series(
    lh: np.ndarray,
    rh: np.ndarray,
    parcel_of_point: np.ndarray,
    parcel_names: Sequence[str],
    *,
    dummy_scans: int,
) -> pd.DataFrame:
    """Parcel time series from per-vertex fsaverage data of both hemispheres.

    Parameters
    ----------
    lh, rh : ndarray, shape (n_vertices, n_volumes)
        Data of the left and right GIFTI files, one column per volume, every volume of the
        run; ``n_vertices`` is 10,242 (fsaverage5), 40,962 (fsaverage6) or 163,842 (fsaverage).
    parcel_of_point : ndarray of int, shape (2 * n_grid,)
        Parcel index of each grid point, left hemisphere then right; ``n_grid`` is an
        icosahedral count (2,562, 10,242 or 40,962) not larger than ``n_vertices``; -1 =
        excluded.
    parcel_names : sequence of str
        Parcel names in index order.
    dummy_scans : int
        Volumes discarded at the start of the run (DESIGN 4.2.1).

    Returns
    -------
    time_series : DataFrame, shape (n_volumes - dummy_scans, n_parcels)
        As :func:`.parcel_time_series`: vertices whose time series is identically zero (outside
        fMRIPrep's field of view) are excluded; a parcel without any valid vertex is NaN.

    Raises
    ------
    SurfaceSamplingError
        When the vertex counts are not fsaverage meshes, are smaller than the grid, or the
        hemispheres disagree.
    BoldImageError
        When the data contain non-finite values or too few volumes remain.
    """
    lh = _hemisphere(lh, "left")
    rh = _hemisphere(rh, "right")
    if lh.shape != rh.shape:
        raise SurfaceSamplingError(
            f"left and right hemisphere data differ in shape: {lh.shape} and {rh.shape}; use "
            "the two GIFTI files of the same run and space"
        )
    n_vertices, n_volumes = lh.shape
    parcel_of_point = np.asarray(parcel_of_point)
    if parcel_of_point.ndim != 1 or parcel_of_point.size % 2:
        raise SurfaceSamplingError(
            "parcel_of_point must be 1-D with the left then the right hemisphere grid, got "
            f"shape {parcel_of_point.shape}"
        )
    n_grid = parcel_of_point.size // 2
    if ico_order(n_grid) is None or n_grid > n_vertices:
        raise SurfaceSamplingError(
            f"the grid has {n_grid} points per hemisphere; it must be an icosahedral subdivision "
            f"({', '.join(str(ICO_VERTICES[k]) for k in (4, 5, 6))}) no finer than the fMRIPrep "
            f"surface ({n_vertices} vertices)"
        )
    if isinstance(dummy_scans, bool) or not isinstance(dummy_scans, (int, np.integer)):
        raise BoldImageError(f"dummy_scans must be a whole number, got {dummy_scans!r}")
    if not 0 <= dummy_scans < n_volumes:
        raise BoldImageError(
            f"the surface BOLD has {n_volumes} volume(s); {dummy_scans} dummy scan(s) would leave "
            "none. Use the complete run or lower dummy_scans"
        )
    values = np.concatenate([lh[:n_grid, dummy_scans:], rh[:n_grid, dummy_scans:]])
    valid = np.any(values != 0, axis=1)
    if not valid.all():
        logger.warning(
            "fMRIPrep surface data: %d of %d grid vertices have no signal and are excluded.",
            int((~valid).sum()),
            valid.size,
        )
    return parcel_time_series(values, parcel_of_point, parcel_names, valid=valid)


def _hemisphere(data, hemi: str) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2:
        raise SurfaceSamplingError(
            f"{hemi} hemisphere data must be 2-D (n_vertices, n_volumes), got shape {data.shape}"
        )
    if ico_order(data.shape[0]) is None:
        raise SurfaceSamplingError(
            f"{hemi} hemisphere data have {data.shape[0]} vertices, which is not an fsaverage "
            "mesh (fsaverage5 10242, fsaverage6 40962, fsaverage 163842); if the volumes are on "
            "the first axis, transpose the array"
        )
    if not np.all(np.isfinite(data)):
        raise BoldImageError(
            f"the {hemi} hemisphere surface BOLD contains NaN or infinite values; re-run "
            "fMRIPrep or check the GIFTI file"
        )
    return data
