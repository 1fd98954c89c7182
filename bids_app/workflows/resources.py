"""Memory each heavy step of a run needs, estimated from the size of the run's data.

Nipype's MultiProc starts a node only when its ``mem_gb`` fits in the memory left, so the
estimates decide how many runs are processed side by side (``--mem-gb``, else the machine's
memory). Fixed numbers are wrong both ways: a run of the paper's size (801 s of 600-Hz MEG)
needs 3.9 GB for tSSS, a one-hour recording at 1 kHz about ten times the small demo's run. As in
fMRIPrep, the workflow reads the headers (no data) and scales.

The factors are peak resident memory measured for each node alone (2026-11-30, one thread), on
the simulated small preset (342 s at 250 Hz, 114 BOLD volumes) and paper preset (801 s at
600 Hz, 267 volumes), fitted as ``base + factor * data`` with a margin:

============  ======================  ============================  ====================
node          data (in memory)         measured peak (small, paper)  estimate
============  ======================  ============================  ====================
tSSS          MEG float64: 0.21, 1.19  0.88, 3.85 GB                 0.5 + 3.1 x data
DICS power    MEG float64: 0.21, 1.19  0.88, 2.64 GB                 0.6 + 2.0 x data
realignment   BOLD float32: 0.08, 0.19 0.75, 1.35 GB                 0.4 + 5.6 x data
============  ======================  ============================  ====================

When a header cannot be read, the fixed defaults below are used (the run's own step then
reports the problem with the file).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

LOGGER = logging.getLogger("bids_app")

#: (base GB, GB per GB of data, default GB when the header cannot be read)
MEM_MODELS = {
    "maxwell_filter": (0.5, 3.1, 3.0),
    "band_power": (0.6, 2.0, 4.0),
    "realign": (0.4, 5.6, 2.0),
}


def meg_data_gb(path: str | Path) -> float | None:
    """Size of a raw MEG recording in memory (float64, all channels), from its header."""
    import mne

    try:
        if str(path).endswith(".fif"):
            raw = mne.io.read_raw_fif(path, preload=False, allow_maxshield="yes",
                                      verbose="error")
        else:
            raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as err:  # noqa: BLE001 - any unreadable header: fall back to the default
        LOGGER.debug("No memory estimate for %s (%s)", path, err)
        return None
    return float(len(raw.ch_names) * raw.n_times * 8 / 1e9)


def bold_data_gb(path: str | Path) -> float | None:
    """Size of a BOLD run in memory (float32), from its header."""
    import nibabel as nib

    try:
        shape = nib.load(str(path)).shape
    except Exception as err:  # noqa: BLE001 - any unreadable header: fall back to the default
        LOGGER.debug("No memory estimate for %s (%s)", path, err)
        return None
    return math.prod(int(n) for n in shape) * 4 / 1e9


def estimate_mem_gb(node: str, data_gb: float | None) -> float:
    """Memory (GB) to reserve for ``node`` on a run whose data take ``data_gb`` in memory."""
    base, per_gb, default = MEM_MODELS[node]
    if data_gb is None:
        return default
    return base + per_gb * data_gb
