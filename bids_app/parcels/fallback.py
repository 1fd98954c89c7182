"""A data-driven parcellation of fsaverage5, always available offline.

When no atlas file can be found (no FreeSurfer, no TemplateFlow or nilearn cache), the app can
still run with this parcellation, chosen explicitly (``--atlas fallback``) or with a warning.
It follows the spirit of DESIGN 4.1 with only the packaged template:

* **regions** are defined on the fsaverage white surface (fsaverage's surface coordinates are
  MNI305 millimetres): ``medialwall`` (vertices outside FreeSurfer's flat cortex patch),
  ``anteriorfrontal`` (y > 45 mm, or y > 10 mm and z < -10 mm: frontal pole and orbitofrontal
  cortex), ``inferiortemporal`` (-80 < y < 10 mm and z < -20 mm) and ``deepmedial`` (|x| < 22
  mm, z < 5 mm and y > -60 mm: subcallosal, ventral cingulate and parahippocampal cortex);
* the remaining cortex of each hemisphere is cut into ``n_parcels`` compact parcels of similar
  area by k-means on the unit sphere (fsaverage5 vertices are nearly uniform there), started from
  a farthest-point sampling and re-seeding clusters smaller than 40 % of the mean, so the result
  is deterministic;
* each parcel is named by the lobe of its centroid (``occipital``: y < -70 mm; ``parietal``:
  y < -20 mm and z > 25 mm; ``temporal``: z < 5 mm and y < 5 mm; ``central``: -20 <= y < 5 mm;
  ``frontal``: otherwise) and numbered from front to back: ``frontal_03-lh``.

The four regions are single labels that the packaged exclusion list (``fallback-exclude.txt``)
excludes, so that ``n_parcels`` parcels per hemisphere are analysed.
"""

from __future__ import annotations

import numpy as np

from bids_app.parcels.parcellation import AtlasLabels

EXCLUDED_REGIONS = ("medialwall", "anteriorfrontal", "inferiortemporal", "deepmedial")


def excluded_region(white: np.ndarray, cortex: np.ndarray) -> np.ndarray:
    """Region index per vertex: 0..3 for :data:`EXCLUDED_REGIONS`, -1 for analysed cortex."""
    x, y, z = white.T
    region = np.full(len(white), -1)
    region[((np.abs(x) < 22) & (z < 5) & (y > -60))] = 3
    region[(y > -80) & (y < 10) & (z < -20)] = 2
    region[(y > 45) | ((y > 10) & (z < -10))] = 1
    region[~cortex] = 0
    return region


def _farthest_points(points: np.ndarray, n: int) -> np.ndarray:
    chosen = [int(np.argmax(points[:, 1]))]  # start at the most anterior point
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def spherical_kmeans(points: np.ndarray, n: int, *, iterations: int = 100,
                     min_share: float = 0.4) -> np.ndarray:
    """Cluster unit vectors into ``n`` compact groups of similar size (deterministic).

    Lloyd iterations on the sphere, started from a farthest-point sampling. A cluster smaller
    than ``min_share`` of the mean size is re-seeded inside the largest cluster (at its member
    farthest from its centre) and the iterations continue, at most ``n`` times.

    Returns
    -------
    labels : ndarray of int, shape (n_points,)
    """
    centers = points[_farthest_points(points, n)].copy()
    labels = np.full(len(points), -1)
    for _reseed in range(n + 1):
        for _ in range(iterations):
            new = np.argmax(points @ centers.T, axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for k in range(n):
                members = points[labels == k]
                if len(members):
                    mean = members.mean(axis=0)
                    centers[k] = mean / np.linalg.norm(mean)
        sizes = np.bincount(labels, minlength=n)
        small = int(np.argmin(sizes))
        if sizes[small] >= min_share * len(points) / n:
            break
        big = int(np.argmax(sizes))
        members = np.flatnonzero(labels == big)
        far = members[np.argmin(points[members] @ centers[big])]
        centers[small] = points[far]
    return labels


def lobe(centroid: np.ndarray) -> str:
    """Lobe name of a parcel centroid (fsaverage/MNI305 mm), see the module docstring."""
    _, y, z = centroid
    if y < -70:
        return "occipital"
    if y < -20 and z > 25:
        return "parietal"
    if z < 5 and y < 5:
        return "temporal"
    if y < 5:
        return "central"
    return "frontal"


def fallback_labels(hemi: str, white: np.ndarray, sphere: np.ndarray, cortex: np.ndarray,
                    n_parcels: int) -> AtlasLabels:
    """The fallback parcellation of one fsaverage5 hemisphere.

    Parameters
    ----------
    white, sphere : ndarray, shape (10242, 3)
        fsaverage5 white-surface and sphere coordinates (mm).
    cortex : ndarray of bool, shape (10242,)
        Cortex (True) versus medial wall.
    n_parcels : int
        Parcels of the analysed cortex.
    """
    region = excluded_region(white, cortex)
    names: list[str] = list(EXCLUDED_REGIONS)
    vertex_label = region.copy()
    analysed = np.flatnonzero(region < 0)
    unit = sphere[analysed] / np.linalg.norm(sphere[analysed], axis=1, keepdims=True)
    clusters = spherical_kmeans(unit, n_parcels)
    centroids = np.array([white[analysed[clusters == k]].mean(axis=0) for k in range(n_parcels)])
    lobes = [lobe(c) for c in centroids]
    order = sorted(range(n_parcels), key=lambda k: (lobes[k], -centroids[k, 1], centroids[k, 2]))
    counters: dict[str, int] = {}
    for k in order:
        counters[lobes[k]] = counters.get(lobes[k], 0) + 1
        vertex_label[analysed[clusters == k]] = len(names)
        names.append(f"{lobes[k]}_{counters[lobes[k]]:02d}")
    return AtlasLabels(hemi=hemi, vertex_label=vertex_label, names=names)

