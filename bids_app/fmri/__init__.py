"""Pure code: fMRI preprocessing steps and parcel block estimates (DESIGN 4.2).

Functions here take and return arrays and nibabel images; they know nothing of nipype, BIDS file
names or the app configuration. The order of a run:

1. :func:`validate_repetition_time`, :func:`drop_dummy_volumes`;
2. :func:`realign` (ANTs, rigid, to the first kept volume), :func:`mean_volume`;
3. :func:`coregister` (ANTs, rigid, mutual information) or :func:`register_dat_to_affine`
   (FreeSurfer ``bbregister``);
4. :func:`sample_bold_on_surface` then :func:`parcel_time_series` -- or, with fMRIPrep outputs,
   :func:`fsaverage_parcel_time_series`;
5. :func:`block_estimates` (high-pass, block values, normalisation), :func:`average_blocks`.

ANTsPy is imported only when a registration runs.
"""

from .block_estimates import (
    BLOCK_ESTIMATE_COLUMNS,
    average_blocks,
    block_estimates,
    block_values,
    block_volume_table,
    design_volume_counts,
    normalize_block_values,
)
from .coregister import CoregistrationResult, coregister, normalized_mutual_information
from .errors import (
    BoldImageError,
    EventTimingError,
    FMRIInputError,
    RegistrationError,
    RepetitionTimeError,
    SurfaceSamplingError,
)
from .fsaverage import fsaverage_parcel_time_series
from .geometry import (
    freesurfer_tkr_vox2ras,
    parse_register_dat,
    register_dat_to_affine,
    tkr_to_scanner,
)
from .highpass import dct_drift_basis, highpass_filter
from .realign import RealignResult, framewise_displacement, mean_volume, realign
from .surface import SurfaceSamples, parcel_time_series, sample_bold_on_surface
from .validation import drop_dummy_volumes, validate_bold, validate_repetition_time

__all__ = [
    "BLOCK_ESTIMATE_COLUMNS",
    "BoldImageError",
    "CoregistrationResult",
    "EventTimingError",
    "FMRIInputError",
    "RealignResult",
    "RegistrationError",
    "RepetitionTimeError",
    "SurfaceSamples",
    "SurfaceSamplingError",
    "average_blocks",
    "block_estimates",
    "block_values",
    "block_volume_table",
    "coregister",
    "dct_drift_basis",
    "design_volume_counts",
    "drop_dummy_volumes",
    "framewise_displacement",
    "freesurfer_tkr_vox2ras",
    "fsaverage_parcel_time_series",
    "highpass_filter",
    "mean_volume",
    "normalize_block_values",
    "normalized_mutual_information",
    "parcel_time_series",
    "parse_register_dat",
    "realign",
    "register_dat_to_affine",
    "sample_bold_on_surface",
    "tkr_to_scanner",
    "validate_bold",
    "validate_repetition_time",
]
