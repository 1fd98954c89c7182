"""Settings of the parcellation and the analysis grids, each default written once.

The ``[anatomy]`` section of the configuration is made of these fields with the atlas choice
and the head model's (:mod:`bids_app.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bids_app.options import AT_LEAST_1, option


@dataclass(frozen=True)
class ParcellationOptions:
    """How the atlas labels become the analysis parcels and where each modality is sampled."""

    n_included_per_hemi: int = option(
        70, "Parcels analysed per hemisphere: the labels left after excluding artefact-prone "
        "regions are split (MNE's PCA split) until this many remain (about 188 parcels in all "
        "with the excluded ones for Destrieux, as in the paper).", bounds=AT_LEAST_1)
    exclude_regions: list[str] = option(
        list, "Label-name patterns excluded from the analysis (fnmatch). Empty: the default "
        "list for the atlas (anterior frontal, deep medial, inferior temporal, medial wall).",
        factory=True)
    meg_grid: str = option(
        "ico4", "Source grid on fsaverage carried to each subject through sphere.reg "
        "(ico4 = 2 x 2562 points).", allowed=("ico3", "ico4", "ico5"))
    fmri_grid: str = option(
        "ico5", "Surface grid on which BOLD is sampled and averaged within parcels "
        "(ico5 = fsaverage5).", allowed=("ico4", "ico5", "ico6"))
