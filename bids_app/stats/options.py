"""Settings of the group statistics (DESIGN 5), each default written once.

The ``[stats]`` section of the configuration is made of these fields (:mod:`bids_app.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_app.options import AT_LEAST_1, OPEN_SHARE, Range, option


@dataclass(frozen=True)
class GroupStatsOptions:
    """Spearman correlations, Ward clusters, bootstrap intervals and paired t-tests."""

    alpha: float = option(0.05, "Family-wise significance level.", bounds=OPEN_SHARE)
    correction: str = option(
        "bonferroni-windows",
        "Multiple-comparison correction: Bonferroni over the time windows (paper) or none.",
        allowed=("bonferroni-windows", "none"))
    n_clusters: int = option(17, "Number of Ward clusters of parcels (at most the number of "
                             "parcels).", bounds=AT_LEAST_1)
    cluster_rho: str = option(
        "pooled", "Cluster correlation: 'pooled' correlates cluster-averaged MEG and fMRI "
        "values; 'mean-parcel-rho' averages the parcels' rho (no p-value of its own).",
        allowed=("pooled", "mean-parcel-rho"))
    n_bootstrap: int = option(10_000, "Bootstrap resamples.", bounds=AT_LEAST_1)
    bootstrap_fraction: float = option(
        0.8, "Share of observations drawn (without replacement) in each resample.",
        bounds=Range(0, 1, low_open=True))
    ci_levels: list[float] = option(
        lambda: [0.99, 0.999], "Percentile-interval levels of the bootstrap (distinct).",
        bounds=OPEN_SHARE, factory=True)
    min_observations: int = option(
        5, "Fewest (subject, run) observations the group level accepts (a rank correlation "
        "needs at least 3).", bounds=Range(3))
