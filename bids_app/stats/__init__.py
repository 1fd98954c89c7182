"""Pure code: group statistics — Spearman fusion, Ward clustering, bootstrap, contrasts (DESIGN 5).

Functions here take and return arrays and pandas tables; they know nothing of nipype, files or the
app configuration. The entry point is :func:`run_group_statistics`.
"""

import lazy_loader

# the names below are imported on first use (lazy_loader, as MNE-Python does), so that
# importing the package's options (its ``options`` module) does not load the science
# libraries
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "bootstrap": [
            "bootstrap_spearman_array", "ci_column_prefix", "draw_resamples", "parcel_bootstrap",
        ],
        "clustering": ["ward_clusters"],
        "effects": ["find_effects", "find_effects_array"],
        "errors": ["GroupStatsError"],
        "group": ["run_group_statistics"],
        "spearman": ["spearman", "spearman_array", "spearman_pvalue"],
        "ttest": ["paired_ttest_array"],
    },
)
