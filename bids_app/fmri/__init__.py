"""Pure code: fMRI preprocessing steps and parcel block estimates (DESIGN 4.2).

Functions here take and return arrays and nibabel images; they know nothing of nipype, BIDS file
names or the app configuration. The order of a run:

1. :func:`validate_repetition_time`, :func:`drop_dummy_volumes`;
2. :func:`realign` (SimpleITK, rigid, to the first kept volume), :func:`mean_volume`;
3. :func:`coregister` (ANTs, rigid, mutual information) or :func:`register_dat_to_affine`
   (FreeSurfer ``bbregister``);
4. :func:`sample_bold_on_surface` then :func:`parcel_time_series` -- or, with fMRIPrep outputs,
   :func:`fsaverage_parcel_time_series`;
5. :func:`block_estimates` (high-pass, block values, normalisation), :func:`average_blocks`.

ANTsPy is imported only when a registration runs.
"""

import lazy_loader

# the names below are imported on first use (lazy_loader, as MNE-Python does), so that
# importing the package's options (its ``options`` module) does not load the science
# libraries
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "block_estimates": [
            "BLOCK_ESTIMATE_COLUMNS", "average_blocks", "block_estimates", "block_values",
            "block_volume_table", "design_volume_counts", "normalize_block_values",
        ],
        "coregister": ["CoregistrationResult", "coregister", "normalized_mutual_information"],
        "errors": [
            "BoldImageError", "EventTimingError", "FMRIInputError", "RegistrationError",
            "RepetitionTimeError", "SurfaceSamplingError",
        ],
        "fsaverage": ["fsaverage_parcel_time_series"],
        "geometry": [
            "freesurfer_tkr_vox2ras", "parse_register_dat", "register_dat_to_affine",
            "tkr_to_scanner",
        ],
        "highpass": ["dct_drift_basis", "highpass_filter"],
        "realign": ["RealignResult", "framewise_displacement", "mean_volume", "realign"],
        "surface": ["SurfaceSamples", "parcel_time_series", "sample_bold_on_surface"],
        "validation": ["drop_dummy_volumes", "validate_bold", "validate_repetition_time"],
    },
)
