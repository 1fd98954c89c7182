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

from bids_app.meg.epochs import EpochResult, make_epochs, sensor_picks
from bids_app.meg.errors import MEGInputError
from bids_app.meg.maxwell import MaxwellResult, is_sss_processed, parse_origin, tsss
from bids_app.meg.power import (TABLE_COLUMNS, RunPower, band_time_course, event_related_power,
                                peak_window_maps)

__all__ = [
    "TABLE_COLUMNS",
    "band_time_course",
    "peak_window_maps",
    "EpochResult",
    "MEGInputError",
    "MaxwellResult",
    "RunPower",
    "event_related_power",
    "is_sss_processed",
    "make_epochs",
    "parse_origin",
    "sensor_picks",
    "tsss",
]
