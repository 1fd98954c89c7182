"""Quality measures of the EPI-to-T1w registration (issue 24).

The registration's own cost says how well the images match at the transform it found, not
whether a better match lies a few millimetres away. :func:`residual_shift` asks exactly that:
starting at the registration's result, it searches translations of the T1w over the mean EPI
(a compass search, 8 -> 1 mm steps) for the largest normalised mutual information (the measure
of :mod:`.coregister`). A good registration sits at the optimum (residual 0-2 mm: the search's
1-mm resolution and the 3-mm EPI voxels); a registration that is off by a centimetre is found
about a centimetre away. The report warns from :data:`RESIDUAL_SHIFT_WARN_MM`.

:func:`display_volumes` resamples the T1w and the EPI (as the header places it, and as the
registration places it) on one RAS-aligned grid, for the report's before/after slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coregister import normalized_mutual_information, resample_to_grid

__all__ = [
    "RESIDUAL_SHIFT_WARN_MM",
    "DisplayVolumes",
    "display_volumes",
    "grid_placement",
    "residual_shift",
    "surface_bounds",
    "volume_in_box",
]

#: Residual shift (mm) from which the participant report warns of a misregistered run: twice
#: the residual of a good registration (<= 2 mm: search step 1 mm, EPI voxels 3 mm), half of
#: the smallest shift a reviewer should not accept (a centimetre moves BOLD into the
#: neighbouring gyrus).
RESIDUAL_SHIFT_WARN_MM = 4.0


def residual_shift(
    epi: np.ndarray,
    epi_affine: np.ndarray,
    t1w: np.ndarray,
    t1w_affine: np.ndarray,
    epi_to_t1w: np.ndarray,
    *,
    steps_mm: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0),
    max_shift_mm: float = 30.0,
    stride: int = 2,
    bins: int = 32,
) -> np.ndarray:
    """The translation that would still improve a registration (compass search on NMI).

    Parameters
    ----------
    epi : ndarray, shape (n_x, n_y, n_z)
        Mean EPI.
    epi_affine : ndarray, shape (4, 4)
        EPI voxel -> EPI scanner RAS (mm).
    t1w : ndarray, shape (m_x, m_y, m_z)
        T1w image.
    t1w_affine : ndarray, shape (4, 4)
        T1w voxel -> T1w scanner RAS (mm).
    epi_to_t1w : ndarray, shape (4, 4)
        The registration to check: EPI scanner RAS -> T1w scanner RAS (mm), the inverse of
        :attr:`.CoregistrationResult.t1w_to_epi`.
    steps_mm : tuple of float
        Search steps, coarse to fine (mm).
    max_shift_mm : float
        The search stops at this distance (mm).
    stride : int
        Every ``stride``-th EPI voxel along each axis enters the NMI (speed; 2 keeps about
        20,000 voxels of a 3-mm run).
    bins : int
        Histogram bins of the NMI.

    Returns
    -------
    shift : ndarray, shape (3,)
        Translation (mm, T1w scanner RAS) to add to ``epi_to_t1w`` for the best NMI; its norm
        is the distance by which the registration misses the optimum.
    """
    sub = (slice(None, None, stride),) * 3
    grid = epi[sub]
    grid_affine = np.asarray(epi_affine, float) @ np.diag([stride, stride, stride, 1.0])
    base = np.asarray(epi_to_t1w, float)

    def nmi(shift: np.ndarray) -> float:
        moved = base.copy()
        moved[:3, 3] += shift
        resampled, inside = resample_to_grid(t1w, t1w_affine, grid.shape, grid_affine,
                                             grid_to_source=moved)
        if inside.sum() < 100:
            return -np.inf
        return normalized_mutual_information(grid, resampled, bins=bins, mask=inside)

    best, best_value = np.zeros(3), nmi(np.zeros(3))
    moves = np.vstack([np.eye(3), -np.eye(3)])
    for step in steps_mm:
        improved = True
        while improved:
            improved = False
            candidates = [best + step * m for m in moves
                          if np.linalg.norm(best + step * m) <= max_shift_mm]
            values = [nmi(c) for c in candidates]
            if values and max(values) > best_value:
                k = int(np.argmax(values))
                best, best_value, improved = candidates[k], values[k], True
    return best


@dataclass(frozen=True)
class DisplayVolumes:
    """Images on one RAS-aligned grid for the report's slices.

    Attributes
    ----------
    t1w, epi_before, epi_after : ndarray, shape (n_x, n_y, n_z)
        The T1w; the mean EPI where its header puts it; the mean EPI where the registration
        puts it (0 outside the EPI's field of view).
    affine : ndarray, shape (4, 4)
        Voxel -> T1w scanner RAS (mm); diagonal, so axis ``k`` is RAS axis ``k``.
    """

    t1w: np.ndarray
    epi_before: np.ndarray
    epi_after: np.ndarray
    affine: np.ndarray


def display_volumes(epi: np.ndarray, epi_affine: np.ndarray, t1w: np.ndarray,
                    t1w_affine: np.ndarray, t1w_to_epi: np.ndarray, *,
                    bounds_mm: np.ndarray, voxel_mm: float = 2.0) -> DisplayVolumes:
    """Resample the T1w and the mean EPI (before and after registration) on one grid.

    Parameters
    ----------
    epi, epi_affine, t1w, t1w_affine
        As :func:`residual_shift`.
    t1w_to_epi : ndarray, shape (4, 4)
        The registration (T1w scanner RAS -> EPI scanner RAS, mm).
    bounds_mm : ndarray, shape (2, 3)
        Lowest and highest corner (T1w scanner RAS, mm) of the box shown, e.g. the cortex'
        bounding box with a margin.
    voxel_mm : float
        Voxel size of the grid (mm).
    """
    t1w_on_grid, affine = volume_in_box(t1w, t1w_affine, bounds_mm, voxel_mm)
    before, _ = volume_in_box(epi, epi_affine, bounds_mm, voxel_mm)
    after, _ = volume_in_box(epi, epi_affine, bounds_mm, voxel_mm, box_to_image=t1w_to_epi)
    return DisplayVolumes(t1w_on_grid, before, after, affine)


def volume_in_box(data: np.ndarray, affine: np.ndarray, bounds_mm: np.ndarray,
                  voxel_mm: float = 2.0, *, box_to_image: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Resample an image on the RAS-aligned grid spanning ``bounds_mm`` (2 x 3: low, high
    corners, mm) with ``voxel_mm`` voxels; ``box_to_image`` maps the box's world to the
    image's (default identity). Returns the resampled data and the grid's (diagonal) affine."""
    low, high = np.asarray(bounds_mm, float)
    shape = tuple(int(n) for n in np.ceil((high - low) / voxel_mm) + 1)
    grid_affine = np.diag([voxel_mm] * 3 + [1.0])
    grid_affine[:3, 3] = low
    resampled, _ = resample_to_grid(data, affine, shape, grid_affine, grid_to_source=box_to_image)
    return resampled, grid_affine


def surface_bounds(surfaces, margin_mm: float = 10.0) -> np.ndarray:
    """The box (2 x 3: low, high corners, mm) around the vertices of ``surfaces`` (a sequence
    of (rr, tris)), widened by ``margin_mm``."""
    rr = np.concatenate([np.asarray(s[0], float) for s in surfaces])
    return np.vstack([rr.min(axis=0) - margin_mm, rr.max(axis=0) + margin_mm])


def grid_placement(surface_rr: np.ndarray, vertices: np.ndarray,
                   grid_rr: np.ndarray) -> np.ndarray:
    """The affine (4 x 4) that takes a surface's coordinates to where the fMRI grid put its
    vertices (least squares; the identity for the subject's own surfaces, the template
    placement in template mode).

    Parameters
    ----------
    surface_rr : ndarray, shape (n_vertices, 3)
        A surface as read (mm).
    vertices : ndarray of int, shape (n,)
        Grid points' vertex numbers on that surface.
    grid_rr : ndarray, shape (n, 3)
        The grid points' coordinates (mm).
    """
    source = np.column_stack([np.asarray(surface_rr, float)[np.asarray(vertices, int)],
                              np.ones(len(vertices))])
    solution, *_ = np.linalg.lstsq(source, np.asarray(grid_rr, float), rcond=None)
    out = np.eye(4)
    out[:3, :] = solution.T
    return out
