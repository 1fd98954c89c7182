"""Focal planted sources: a few cortical points around a location (issue 25).

The parcel model of :mod:`bids_app.simulate.meg` gives every grid point of a planted parcel one
coherent course, the case the app's parcel averaging is ideal for. Real activity is not shaped
like the analysis parcels. In the focal model each planted effect has, per hemisphere, a
*site*:

* its centre is the cortical vertex nearest to the effect's location (``Effect.center_mm``,
  mirrored for the right hemisphere) or to the centroid of its regions in a *planting* atlas
  that need not be the atlas the app analyses with;
* its MEG sources are ``n_points`` points drawn uniformly inside the white-surface triangles
  within ``spread_mm`` of the centre, so they lie between the vertices of any grid the app
  uses, each with the normal of its triangle as its fixed orientation; their gain comes from a
  forward model computed at exactly these points (:func:`site_gain`);
* its BOLD response fills the cortical-ribbon voxels within ``radius_mm`` of the centre
  (:func:`site_voxels`); the rest of the parcel behaves as a parcel without an effect.

A site is a unit of its own in the simulation's block table (name ``site-<effect>-<hemi>``);
the truth lists the analysis parcels holding its points.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import mne
import numpy as np

__all__ = ["FocalSite", "place_site", "site_forward", "site_gain", "gain_along_normals",
           "site_voxels", "label_centroid"]


@dataclass
class FocalSite:
    """The focal sources of one effect in one hemisphere.

    Attributes
    ----------
    name : str
        Unit name in the simulation's block table (``site-<effect>-<hemi>``).
    effect, hemi : str
    centre_mm : ndarray, shape (3,)
        Centre vertex on the white surface (template surface RAS, mm).
    points_mm, normals : ndarray, shape (n_points, 3)
        Source positions (mm) and unit orientations.
    parcels : list of str
        Analysis parcels holding the points (parcel of the nearest MEG grid point), most
        points first.
    """

    name: str
    effect: str
    hemi: str
    centre_mm: np.ndarray
    points_mm: np.ndarray
    normals: np.ndarray
    parcels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "effect": self.effect, "hemi": self.hemi,
                "centre_mm": np.round(self.centre_mm, 2).tolist(),
                "points_mm": np.round(self.points_mm, 2).tolist(),
                "normals": np.round(self.normals, 4).tolist(), "parcels": self.parcels}


def place_site(white_rr: np.ndarray, tris: np.ndarray, centre: np.ndarray, *, n_points: int,
               spread_mm: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points drawn inside the triangles near ``centre``.

    Parameters
    ----------
    white_rr : ndarray, shape (n_vertices, 3)
        White-surface vertices (mm).
    tris : ndarray of int, shape (n_triangles, 3)
    centre : ndarray, shape (3,)
        Centre of the site (mm).
    n_points : int
        Number of sources.
    spread_mm : float
        Triangles whose centroid lies within this distance of the centre are candidates; the
        ``n_points`` nearest ones are used if fewer are within it.

    Returns
    -------
    points, normals : ndarray, shape (n_points, 3)
        Uniform random points of distinct triangles (barycentric coordinates) and the unit
        normals of those triangles.
    """
    corners = white_rr[tris]                                      # (n_tri, 3, 3)
    distance = np.linalg.norm(corners.mean(axis=1) - centre, axis=1)
    candidates = np.flatnonzero(distance <= spread_mm)
    if candidates.size < n_points:
        candidates = np.argsort(distance)[:n_points]
    chosen = rng.choice(candidates, size=n_points, replace=False)
    u, v = rng.uniform(size=(2, n_points))
    flip = u + v > 1                                              # fold into the triangle
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a, b, c = (corners[chosen, i] for i in range(3))
    points = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    normals = np.cross(b - a, c - a)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return points, normals


def label_centroid(white_rr: np.ndarray, vertex_labels: np.ndarray, names: list[str],
                   patterns: list[str]) -> np.ndarray:
    """Mean position (mm) of the vertices whose label name matches any of ``patterns``
    (fnmatch, case-insensitive).

    Raises
    ------
    ValueError
        No label matches.
    """
    wanted = [i for i, name in enumerate(names)
              if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns)]
    inside = np.isin(vertex_labels, wanted)
    if not inside.any():
        raise ValueError(f"no label matches {patterns} (labels: {', '.join(names[:8])}, ...)")
    return white_rr[inside].mean(axis=0)


def site_forward(info: mne.Info, trans, bem, points_mm: np.ndarray,
                 normals: np.ndarray) -> mne.Forward:
    """Free-orientation MNE forward model of sources at arbitrary positions (template surface
    RAS, mm), their normals kept in the discrete source space (rotated to the head frame).

    Raises
    ------
    ValueError
        A point lies outside the inner skull (MNE dropped it).
    """
    src = mne.setup_volume_source_space(pos={"rr": np.asarray(points_mm) / 1000.0,
                                             "nn": np.asarray(normals)}, verbose="error")
    meg = mne.pick_info(info, mne.pick_types(info, meg=True, ref_meg=False, exclude=[]))
    fwd = mne.make_forward_solution(meg, trans, src, bem, meg=True, eeg=False, n_jobs=1,
                                    verbose="error")
    if len(fwd["src"][0]["vertno"]) != len(points_mm):
        raise ValueError("a focal source lies outside the inner skull")
    return fwd


def site_gain(info: mne.Info, trans, bem, points_mm: np.ndarray,
              normals: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Gain (T or T/m per A m) of sources at arbitrary positions along their normals.

    Parameters
    ----------
    points_mm, normals : ndarray, shape (n_points, 3)
        Positions (template surface RAS, mm) and unit orientations (same frame).

    Returns
    -------
    gain : ndarray, shape (n_meg_channels, n_points)
        ``G_free @ n`` for each point of :func:`site_forward`, the normal rotated into the
        head frame as the forward model's columns are.
    ch_names : list of str
        The rows.
    """
    return gain_along_normals(site_forward(info, trans, bem, points_mm, normals))


def gain_along_normals(fwd: mne.Forward) -> tuple[np.ndarray, list[str]]:
    """Columns of a :func:`site_forward` model along each point's normal, and the rows."""
    used = fwd["src"][0]["vertno"]
    nn_head = fwd["src"][0]["nn"][used]                          # rotated with the positions
    free = fwd["sol"]["data"].reshape(len(fwd["sol"]["row_names"]), len(used), 3)
    gain = np.einsum("cpk,pk->cp", free, nn_head)
    return np.ascontiguousarray(gain, dtype=np.float64), list(fwd["sol"]["row_names"])


def site_voxels(voxel_xyz: np.ndarray, centre: np.ndarray, radius_mm: float) -> np.ndarray:
    """Boolean mask of the voxels (centres in mm, shape (n, 3)) within ``radius_mm`` of the
    site's centre."""
    return np.linalg.norm(np.asarray(voxel_xyz) - np.asarray(centre), axis=1) <= radius_mm


def place_sites(effect_set, anatomy, rng: np.random.Generator,
                plant_labels: dict | None = None) -> list[FocalSite]:
    """One site per effect and hemisphere (``effect_set.spatial_model == "focal"``).

    Parameters
    ----------
    effect_set : EffectSet
    anatomy : TemplateAnatomy
        Its white surfaces, analysis parcels (``vertex_parcel`` on every template vertex) and
        MEG grid.
    plant_labels : dict | None
        ``{hemi: AtlasLabels}`` of the planting atlas (``effect_set.plant_atlas``); sites are
        then centred at the centroid of each effect's ``regions[plant_atlas]`` labels.

    The centre is the vertex nearest to the target that lies in an analysed parcel (a site in
    an excluded region would be invisible to the app by design). Each effect's ``parcels``
    become the analysis parcels holding its sites.
    """
    from bids_app.simulate.effects import _mirror

    sites = []
    for effect in effect_set.effects:
        for hemi in effect.hemi:
            h = ("lh", "rh").index(hemi)
            white_rr, tris = anatomy.white[h]
            n = len(white_rr)
            if len(anatomy.vertex_parcel) != 2 * n:
                raise ValueError("focal sites need the parcel of every template vertex")
            if effect_set.plant_atlas:
                patterns = effect.regions.get(effect_set.plant_atlas)
                if not patterns:
                    raise ValueError(f"effect {effect.name}: no regions for the planting atlas "
                                     f"'{effect_set.plant_atlas}'")
                atlas = plant_labels[hemi]
                target = label_centroid(white_rr, atlas.vertex_label, atlas.names, patterns)
            else:
                target = np.asarray(_mirror(effect.center_mm, hemi), float)
            analysed = np.flatnonzero(anatomy.vertex_parcel[h * n:(h + 1) * n] >= 0)
            centre = white_rr[analysed[np.argmin(np.linalg.norm(white_rr[analysed] - target,
                                                                axis=1))]]
            points, normals = place_site(white_rr, tris, centre,
                                         n_points=effect_set.focal_points,
                                         spread_mm=effect_set.focal_spread_mm, rng=rng)
            sites.append(FocalSite(name=f"site-{effect.name}-{hemi}", effect=effect.name,
                                   hemi=hemi, centre_mm=centre, points_mm=points,
                                   normals=normals,
                                   parcels=holding_parcels(points, anatomy, h)))
    for effect in effect_set.effects:
        effect.parcels = list(dict.fromkeys(p for s in sites if s.effect == effect.name
                                            for p in s.parcels))
    return sites


def holding_parcels(points_mm: np.ndarray, anatomy, h: int) -> list[str]:
    """Analysis parcels of the MEG grid points nearest to ``points_mm`` (hemisphere ``h``),
    the parcel holding most points first; grid points outside every parcel are skipped."""
    src = anatomy.src[h]
    offset = 0 if h == 0 else len(anatomy.src[0]["vertno"])
    grid_mm = src["rr"][src["vertno"]] * 1000.0
    nearest = np.argmin(np.linalg.norm(grid_mm[None] - points_mm[:, None], axis=2), axis=1)
    parcels = anatomy.point_parcel[offset + nearest]
    parcels = parcels[parcels >= 0]
    values, counts = np.unique(parcels, return_counts=True)
    return [anatomy.parcel_names[v] for v in values[np.argsort(-counts, kind="stable")]]
