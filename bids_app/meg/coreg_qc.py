"""Quality of the MEG-MRI coregistration: digitised head points against the MRI scalp (issue 24).

A head->MRI transform that is right puts the digitised head-shape points on the scalp of the
MRI: a few millimetres away (digitiser error, hair, skin pressed by the pen). A transform off by
a centimetre lifts the points off the scalp on one side and sinks them on the other. The
distance of each point to the scalp is what MNE's coregistration tools show
(:func:`mne.dig_mri_distances`); the report gives its median and maximum. The median alone
separates a centimetre's error poorly where the MRI scalp and the digitised head differ anyway
(a template head: 2 mm for the best fit, 4-6 mm with 10 mm added), so the warning comes from
:func:`residual_translation`, the translation that would still move the points onto the scalp
(0.4 mm for the best fit, 9-10 mm with 10 mm added in any direction), from
:data:`RESIDUAL_TRANSLATION_WARN_MM`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "RESIDUAL_TRANSLATION_WARN_MM",
    "HeadPoints",
    "head_point_distances",
    "head_points",
    "residual_translation",
    "surface_samples",
]

#: Residual translation (mm) from which the participant report warns that the head-MRI
#: transform is off: half a centimetre, ten times the residual of a good fit and half of what
#: a 10-mm error leaves (tests/test_qc_measures.py).
RESIDUAL_TRANSLATION_WARN_MM = 5.0


@dataclass(frozen=True)
class HeadPoints:
    """Digitised points of a recording, head frame (m).

    Attributes
    ----------
    extra : ndarray, shape (n, 3)
        Head-shape points (``FIFFV_POINT_EXTRA``) and EEG electrodes.
    hpi : ndarray, shape (m, 3)
        HPI coil positions.
    fiducials : dict
        ``lpa``, ``nasion``, ``rpa`` (each shape (3,)), when digitised.
    """

    extra: np.ndarray
    hpi: np.ndarray
    fiducials: dict


def head_points(info: mne.Info) -> HeadPoints:
    """The digitised points of ``info`` in the head frame (m)."""
    from mne.io.constants import FIFF

    kinds = {FIFF.FIFFV_POINT_CARDINAL: "cardinal", FIFF.FIFFV_POINT_HPI: "hpi",
             FIFF.FIFFV_POINT_EXTRA: "extra", FIFF.FIFFV_POINT_EEG: "extra"}
    names = {FIFF.FIFFV_POINT_LPA: "lpa", FIFF.FIFFV_POINT_NASION: "nasion",
             FIFF.FIFFV_POINT_RPA: "rpa"}
    out = {"extra": [], "hpi": []}
    fiducials = {}
    for d in info.get("dig") or []:
        if d["coord_frame"] != FIFF.FIFFV_COORD_HEAD:
            continue
        kind = kinds.get(d["kind"])
        if kind == "cardinal" and d["ident"] in names:
            fiducials[names[d["ident"]]] = np.asarray(d["r"], float)
        elif kind in out:
            out[kind].append(d["r"])
    return HeadPoints(np.asarray(out["extra"], float).reshape(-1, 3),
                      np.asarray(out["hpi"], float).reshape(-1, 3), fiducials)


def head_point_distances(points_head: np.ndarray, head_to_mri: np.ndarray,
                         scalp_rr: np.ndarray, scalp_tris: np.ndarray, *,
                         subdivisions: int = 4) -> np.ndarray:
    """Distance (mm) of each head point to the scalp.

    Parameters
    ----------
    points_head : ndarray, shape (n_points, 3)
        Digitised points, head frame (m).
    head_to_mri : ndarray, shape (4, 4)
        The head -> MRI (surface RAS) transform to check (m), ``trans["trans"]``.
    scalp_rr : ndarray, shape (n_vertices, 3)
        Scalp vertices, MRI surface RAS (m), e.g. ``mne.read_bem_surfaces(...-head.fif)[0]["rr"]``.
    scalp_tris : ndarray of int, shape (n_triangles, 3)
        Its triangles.
    subdivisions : int
        Each triangle is sampled on a barycentric grid of this many steps per edge, so the
        distance to the nearest sample is within a fraction of a millimetre of the distance to
        the surface even on MNE's low-resolution scalp (2,000 vertices 6-8 mm apart), where
        the nearest *vertex* (:func:`mne.dig_mri_distances`) would add up to 4 mm.

    Returns
    -------
    distances : ndarray, shape (n_points,)
        Millimetres.
    """
    points = mne.transforms.apply_trans(np.asarray(head_to_mri, float),
                                        np.asarray(points_head, float).reshape(-1, 3))
    distances, _ = cKDTree(surface_samples(scalp_rr, scalp_tris, subdivisions)).query(points)
    return 1000.0 * distances


def surface_samples(rr: np.ndarray, tris: np.ndarray, subdivisions: int) -> np.ndarray:
    """Points on a triangle mesh: each triangle's barycentric grid with ``subdivisions`` steps
    per edge (vertices included; shared edges repeat, which does not matter to a nearest-point
    query).

    Returns
    -------
    points : ndarray, shape (n_triangles * n_grid, 3)
    """
    n = max(int(subdivisions), 1)
    weights = np.array([(i, j, n - i - j) for i in range(n + 1) for j in range(n + 1 - i)],
                       float) / n                                   # (n_grid, 3)
    corners = np.asarray(rr, float)[np.asarray(tris, int)]          # (n_tris, 3, 3)
    return np.einsum("gk,tkc->tgc", weights, corners).reshape(-1, 3)


def residual_translation(points_head: np.ndarray, head_to_mri: np.ndarray,
                         scalp_rr: np.ndarray, scalp_tris: np.ndarray, *,
                         n_iterations: int = 30, keep: float = 0.8,
                         subdivisions: int = 4) -> np.ndarray:
    """The translation that would still move the head points onto the scalp (mm).

    A translation-only iterative closest point fit, started at ``head_to_mri``: each step moves
    the points by the mean offset to their nearest scalp samples, over the ``keep`` share of
    points closest to the scalp (points on the nose or on hair, where a scalp from an MRI and
    a digitiser disagree anyway, do not pull). A right transform leaves little to move (a
    millimetre or two: digitiser error, skin under the pen); a transform off by a centimetre is
    found a centimetre away, in whatever direction it is off.

    Parameters
    ----------
    points_head, head_to_mri, scalp_rr, scalp_tris, subdivisions
        As :func:`head_point_distances`.
    n_iterations : int
        ICP steps (translation only converges in a few).
    keep : float
        Share of points (closest first) that enter each step, in (0, 1].

    Returns
    -------
    shift : ndarray, shape (3,)
        MRI surface RAS (mm) to add to the transform's translation.
    """
    points = mne.transforms.apply_trans(np.asarray(head_to_mri, float),
                                        np.asarray(points_head, float).reshape(-1, 3))
    samples = surface_samples(scalp_rr, scalp_tris, subdivisions)
    tree = cKDTree(samples)
    shift = np.zeros(3)
    n_keep = max(3, int(round(keep * len(points))))
    for _ in range(n_iterations):
        distances, nearest = tree.query(points + shift)
        closest = np.argsort(distances)[:n_keep]
        step = (samples[nearest[closest]] - (points + shift)[closest]).mean(axis=0)
        shift += step
        if np.linalg.norm(step) < 1e-5:
            break
    return 1000.0 * shift
