"""Ward clustering of the parcels' correlation patterns (DESIGN 5.3)."""

from __future__ import annotations

import logging

import numpy as np
from scipy.cluster import hierarchy

from bids_app.stats.errors import GroupStatsError

LOGGER = logging.getLogger(__name__)

__all__ = ["ward_clusters"]


def ward_clusters(rho: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ward linkage, optimal leaf order and a cut into ``n_clusters`` clusters.

    Mirrors MATLAB ``linkage(rho, 'ward')`` / ``optimalleaforder`` / ``cluster(..., 'maxclust')``
    via :func:`scipy.cluster.hierarchy.linkage` (``method="ward"``, Euclidean),
    :func:`~scipy.cluster.hierarchy.optimal_leaf_ordering` and
    :func:`~scipy.cluster.hierarchy.fcluster` (``criterion="maxclust"``). The hemisphere is not
    used. NaN correlations (a constant variable) are set to 0 for the clustering.

    Parameters
    ----------
    rho : ndarray, shape (n_parcels, n_features)
        Each parcel's Spearman rho over the condition x band x window features.
    n_clusters : int
        K, 1 <= K <= n_parcels. ``fcluster`` may return fewer clusters when merge heights tie.

    Returns
    -------
    labels : ndarray of int, shape (n_parcels,)
        Cluster number of each parcel, 1..K.
    leaf_position : ndarray of int, shape (n_parcels,)
        Position of each parcel in the optimal leaf order, 0-based.
    linkage : ndarray, shape (n_parcels - 1, 4)
        The (optimally ordered) linkage matrix.
    """
    rho = np.asarray(rho, dtype=float)
    if rho.ndim != 2:
        raise GroupStatsError(f"rho must be 2-D (n_parcels, n_features), got shape {rho.shape}")
    n_parcels = rho.shape[0]
    if n_parcels < 2:
        raise GroupStatsError(f"Ward clustering needs at least 2 parcels, got {n_parcels}")
    if not 1 <= n_clusters <= n_parcels:
        raise GroupStatsError(f"n_clusters must be between 1 and the number of parcels "
                              f"({n_parcels}), got {n_clusters}")
    if np.isnan(rho).any():
        LOGGER.warning("%d correlation(s) are NaN (constant values); set to 0 for clustering",
                       int(np.isnan(rho).sum()))
        rho = np.nan_to_num(rho, nan=0.0)
    linkage = hierarchy.linkage(rho, method="ward", metric="euclidean")
    linkage = hierarchy.optimal_leaf_ordering(linkage, rho)
    labels = hierarchy.fcluster(linkage, n_clusters, criterion="maxclust").astype(int)
    order = hierarchy.leaves_list(linkage)
    position = np.empty(n_parcels, dtype=int)
    position[order] = np.arange(n_parcels)
    LOGGER.info("Ward clustering: %d parcels into %d clusters", n_parcels, labels.max())
    return labels, position, linkage
