"""The analysis grids: icosahedral vertices of fsaverage carried to each subject (DESIGN 4.1).

fsaverage's first ``10 * 4**k + 2`` vertices are an icosahedron subdivided ``k`` times (ico-4:
2,562 per hemisphere; ico-5: 10,242, i.e. fsaverage5). Grid point ``i`` of a subject is the
subject vertex whose ``sphere.reg`` position is nearest to fsaverage vertex ``i`` on the fsaverage
sphere (the registration target), so point ``i`` is the same fsaverage location in every subject
— as :func:`mne.morph_source_spaces` does. For fsaverage itself (or fsaverage5) the mapping is
the identity.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from bids_app.parcels.parcellation import ParcellationError

ICO_ORDERS = {"ico3": 3, "ico4": 4, "ico5": 5, "ico6": 6}


def n_ico_vertices(grid: str) -> int:
    """Vertices per hemisphere of an ``icoN`` grid (ico4: 2,562)."""
    if grid not in ICO_ORDERS:
        raise ParcellationError(
            f"Invalid grid '{grid}': allowed are {', '.join(ICO_ORDERS)}."
        )
    return 10 * 4 ** ICO_ORDERS[grid] + 2


def grid_on_subject(fsaverage_sphere: np.ndarray, subject_sphere_reg: np.ndarray,
                    grid: str) -> np.ndarray:
    """Subject vertex numbers of the grid points of one hemisphere.

    Parameters
    ----------
    fsaverage_sphere : ndarray, shape (n_fsaverage, 3)
        fsaverage (or fsaverage5/6) sphere coordinates (mm); at least the grid's vertex count.
    subject_sphere_reg : ndarray, shape (n_subject, 3)
        The subject's ``?h.sphere.reg`` coordinates (mm), in the same space.
    grid : str
        ``ico3`` ... ``ico6``.

    Returns
    -------
    vertices : ndarray of int, shape (n_grid,)
        Subject vertex nearest to each fsaverage grid vertex.
    """
    n = n_ico_vertices(grid)
    if len(fsaverage_sphere) < n:
        raise ParcellationError(
            f"The fsaverage sphere has {len(fsaverage_sphere)} vertices, fewer than the "
            f"{n} of the {grid} grid; use a denser fsaverage (fsaverage6 or fsaverage)."
        )
    target = _unit(np.asarray(fsaverage_sphere[:n], float))
    source = _unit(np.asarray(subject_sphere_reg, float))
    _, nearest = cKDTree(source).query(target)
    return nearest.astype(int)


def _unit(rr: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rr, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ParcellationError("a sphere surface has vertices at its centre (corrupt file?)")
    return rr / norms
