"""Pure code: MEG preprocessing, head models and event-related DICS power (DESIGN 4.3).

Functions here take and return arrays and MNE objects; they know nothing of nipype, BIDS file
names or the app configuration.

* :mod:`~bids_app.meg.maxwell` — tSSS with MNE's Maxwell filter, skipped for SSS-processed data;
* :mod:`~bids_app.meg.epochs` — epochs around the pictures, EOG rejection counted per block;
* :mod:`~bids_app.meg.dics` — the fast event-related DICS kernels (CSD by shared segments,
  batched projection through MNE's DICS filters);
* :mod:`~bids_app.meg.power` — one run's table of parcel power changes;
* :mod:`~bids_app.meg.headmodel` — grid source space, BEM, forward model.
"""

import lazy_loader

# the names below are imported on first use (lazy_loader, as MNE-Python does), so that
# importing the package's options (its ``options`` module) does not load the science
# libraries
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "epochs": ["EpochResult", "make_epochs", "sensor_picks"],
        "errors": ["MEGInputError"],
        "maxwell": ["MaxwellResult", "is_sss_processed", "parse_origin", "tsss"],
        "power": [
            "TABLE_COLUMNS", "RunPower", "band_time_course", "event_related_power",
            "peak_window_maps",
        ],
    },
)
