"""Memory reserved for the heavy steps of a run, from the size of its data
(bids_app/workflows/resources.py)."""

from __future__ import annotations

import mne
import nibabel as nib
import numpy as np
import pytest

from bids_app.workflows.resources import (
    MEM_MODELS,
    bold_data_gb,
    estimate_mem_gb,
    meg_data_gb,
)
from skeleton import write_meg, write_nifti


def test_sizes_from_headers_equal_the_loaded_arrays(tmp_path):
    meg = write_meg(tmp_path / "sub-01_task-x_meg.fif", duration_s=30.0)
    loaded = mne.io.read_raw_fif(meg, preload=True, verbose="error").get_data()
    assert meg_data_gb(meg) == pytest.approx(loaded.astype(np.float64).nbytes / 1e9, rel=1e-12)
    bold = write_nifti(tmp_path / "sub-01_task-x_bold.nii.gz", shape=(5, 6, 7, 20))
    data = np.asarray(nib.load(bold).dataobj, dtype=np.float32)
    assert bold_data_gb(bold) == pytest.approx(data.nbytes / 1e9, rel=1e-12)


def test_unreadable_headers_fall_back_to_the_fixed_defaults(tmp_path):
    empty = tmp_path / "sub-01_task-x_meg.fif"
    empty.write_bytes(b"")
    assert meg_data_gb(empty) is None
    assert bold_data_gb(tmp_path / "missing_bold.nii.gz") is None
    for node, (_, _, default) in MEM_MODELS.items():
        assert estimate_mem_gb(node, None) == default


@pytest.mark.parametrize(("node", "data_gb", "peak_gb"), [
    # peaks measured for each node alone (module docstring): small and paper presets
    ("maxwell_filter", 0.211, 0.88), ("maxwell_filter", 1.188, 3.85),
    ("band_power", 0.211, 0.88), ("band_power", 1.188, 2.64),
    ("realign", 0.0809, 0.75), ("realign", 0.1894, 1.35),
])
def test_estimates_cover_the_measured_peaks_with_little_waste(node, data_gb, peak_gb):
    estimate = estimate_mem_gb(node, data_gb)
    assert peak_gb <= estimate <= 1.25 * peak_gb + 0.1


def test_a_longer_recording_reserves_more(tmp_path):
    short = meg_data_gb(write_meg(tmp_path / "a_meg.fif", duration_s=10.0))
    long = meg_data_gb(write_meg(tmp_path / "b_meg.fif", duration_s=40.0))
    assert long == pytest.approx(4 * short)
    assert estimate_mem_gb("maxwell_filter", long) > estimate_mem_gb("maxwell_filter", short)
