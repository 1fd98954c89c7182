"""Pure code: group statistics — Spearman fusion, Ward clustering, bootstrap, contrasts (DESIGN 5).

Functions here take and return arrays and pandas tables; they know nothing of nipype, files or the
app configuration. The entry point is :func:`run_group_statistics`.
"""

from bids_app.stats.bootstrap import (bootstrap_spearman_array, ci_column_prefix, draw_resamples,
                                      parcel_bootstrap)
from bids_app.stats.clustering import ward_clusters
from bids_app.stats.effects import find_effects, find_effects_array
from bids_app.stats.errors import GroupStatsError
from bids_app.stats.group import run_group_statistics
from bids_app.stats.spearman import spearman, spearman_array, spearman_pvalue
from bids_app.stats.ttest import paired_ttest_array

__all__ = [
    "GroupStatsError",
    "bootstrap_spearman_array",
    "ci_column_prefix",
    "draw_resamples",
    "find_effects",
    "find_effects_array",
    "paired_ttest_array",
    "parcel_bootstrap",
    "run_group_statistics",
    "spearman",
    "spearman_array",
    "spearman_pvalue",
    "ward_clusters",
]
