"""tSSS against MaxFilter, and the epoching/rejection rules with their error messages."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from bids_app.meg.epochs import make_epochs, sensor_picks
from bids_app.meg.errors import (
    CalibrationError,
    EventsOutsideError,
    MissingEOGError,
    NoSensorsError,
)
from bids_app.meg.maxwell import is_sss_processed, parse_origin, tsss
from bids_app.meg.options import EpochOptions, MaxwellOptions
from bids_app.options import as_dict


# --------------------------------------------------------------------------------------------------
# tSSS
# --------------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_tsss_matches_maxfilter(mne_testing):
    """MaxFilter reference: ``-origin 0 13 -6 -frame device -regularize in -cal sss_cal_3053.dat
    -ctc ct_sparse.fif -st 1``. Tolerance: MNE's own test of this file (per-channel SNR of the
    difference, minimum >= 1.2 and median >= 3.2)."""
    sss = mne_testing / "SSS"
    raw = mne.io.read_raw_fif(sss / "test_move_anon_erm_raw.fif", allow_maxshield="yes",
                              verbose="error")
    assert not is_sss_processed(raw.info)
    options = MaxwellOptions(st_duration_s=1.0, origin="0, 13, -6", find_bad_channels=False)
    result = tsss(raw, options, calibration=sss / "sss_cal_3053.dat",
                  cross_talk=sss / "ct_sparse.fif", coord_frame="meg", regularize="in")
    assert result.applied
    np.testing.assert_allclose(result.origin_mm, (0.0, 13.0, -6.0), atol=1e-3)
    reference = mne.io.read_raw_fif(sss / "test_move_anon_erm_st1FineCalCrossTalkRegIn_raw_sss.fif",
                                    verbose="error")
    mne.utils.assert_meg_snr(result.raw, reference, 1.2, 3.2)


@pytest.mark.shared_data
def test_sss_processed_recording_is_not_filtered_twice(mne_testing):
    raw = mne.io.read_raw_fif(mne_testing / "SSS" / "sample_audvis_trunc_raw_sss.fif",
                              verbose="error")
    assert is_sss_processed(raw.info)
    result = tsss(raw, MaxwellOptions())
    assert not result.applied and "already SSS" in result.reason
    assert result.raw is raw


@pytest.mark.shared_data
def test_maxwell_interface_reports_what_it_did(mne_testing, tmp_path):
    """The MaxwellFilter step tells the derivative's sidecar whether tSSS ran and with what:
    options, origin, bad channels (marked in the recording), and the system files as BIDS URIs;
    for an SSS-processed recording, that it was skipped and why."""
    import shutil

    from bids_app.interfaces.meg import MaxwellFilter

    sss = mne_testing / "SSS"
    meg_dir = tmp_path / "bids" / "sub-01" / "meg"
    meg_dir.mkdir(parents=True)
    for name in ("sss_cal_3053.dat", "ct_sparse.fif"):
        shutil.copy(sss / name, meg_dir / name)
    raw = mne.io.read_raw_fif(sss / "test_move_anon_erm_raw.fif", allow_maxshield="yes",
                              verbose="error")
    raw.info["dev_head_t"] = mne.transforms.Transform("meg", "head")  # head frame = device
    raw.info["bads"] = ["MEG2443"]
    raw.save(tmp_path / "recording_raw.fif", verbose="error")
    result = MaxwellFilter(in_file=str(tmp_path / "recording_raw.fif"),
                           calibration=str(meg_dir / "sss_cal_3053.dat"),
                           cross_talk=str(meg_dir / "ct_sparse.fif"),
                           options=as_dict(MaxwellOptions(st_duration_s=1.0, origin="0,13,-6",
                                                          find_bad_channels=False)),
                           ).run(cwd=str(tmp_path))
    assert result.outputs.settings == {
        "maxfilter": True, "maxfilter_applied": True, "st_duration_s": 1.0,
        "st_correlation": 0.98, "origin": "0,13,-6", "origin_mm": [0.0, 13.0, -6.0],
        "find_bad_channels": False, "bad_channels": ["MEG2443"],
        "calibration": "bids:raw:sub-01/meg/sss_cal_3053.dat",
        "cross_talk": "bids:raw:sub-01/meg/ct_sparse.fif"}
    skipped = MaxwellFilter(in_file=str(sss / "sample_audvis_trunc_raw_sss.fif"),
                            options=as_dict(MaxwellOptions())).run(cwd=str(tmp_path))
    assert skipped.outputs.settings == {"maxfilter": True, "maxfilter_applied": False,
                                        "maxfilter_note": "already SSS-processed (proc_history)"}


@pytest.mark.shared_data
def test_calibration_of_another_system_is_refused(mne_testing, tmp_path):
    sss = mne_testing / "SSS"
    raw = mne.io.read_raw_fif(sss / "test_move_anon_erm_raw.fif", allow_maxshield="yes",
                              verbose="error")
    cal = mne.preprocessing.read_fine_calibration(sss / "sss_cal_3053.dat")
    cal["ch_names"] = [name.replace("MEG", "MEG9") for name in cal["ch_names"]]
    other = tmp_path / "sss_cal_other.dat"
    mne.preprocessing.write_fine_calibration(other, cal)
    with pytest.raises(CalibrationError, match="does not belong to this MEG system"):
        tsss(raw, MaxwellOptions(find_bad_channels=False), calibration=other)


def test_origin_parsing():
    assert parse_origin("auto") == "auto"
    assert parse_origin("0,13,-6") == pytest.approx((0.0, 0.013, -0.006))
    with pytest.raises(ValueError, match="'origin': allowed are 'auto' or 'x,y,z'"):
        parse_origin("0,13")


# --------------------------------------------------------------------------------------------------
# Epochs and EOG rejection
# --------------------------------------------------------------------------------------------------
SFREQ = 250.0


def _raw(with_eog=True, with_grad=True, duration=60.0):
    """Noise on a Vectorview-like array; one EOG blink of 400 µV at 20.3 s."""
    from bids_app.simulate.meg import template_head, vectorview_like_info

    info = vectorview_like_info(SFREQ, template_head())
    keep = mne.pick_types(info, meg="grad" if with_grad else "mag", eog=with_eog)
    info = mne.pick_info(info, keep)
    rng = np.random.default_rng(0)
    n = int(duration * SFREQ)
    data = rng.standard_normal((len(keep), n)) * 1e-12
    eog = mne.pick_types(info, meg=False, eog=True)
    data[eog] = rng.standard_normal((len(eog), n)) * 5e-6
    if len(eog):
        blink = int(20.3 * SFREQ)
        data[eog[0], blink:blink + 50] += 400e-6
    return mne.io.RawArray(data, info, verbose="error")


def _trials(onsets):
    return pd.DataFrame({"onset": onsets, "condition": ["a"] * 5 + ["b"] * (len(onsets) - 5),
                         "block": [1] * 5 + [2] * (len(onsets) - 5)})


def test_eog_rejection_is_counted_per_block():
    trials = _trials([5.0, 8.0, 11.0, 14.0, 17.0, 20.0, 23.0, 26.0, 29.0, 32.0])
    result = make_epochs(_raw(), trials, EpochOptions(tmin_s=-0.2, tmax_s=1.0, tfr_padding_s=0.5,
                                                      eog_reject_uv=150.0))
    counts = result.counts.set_index("block")
    # the blink at 20.3 s falls in the epoch of the picture at 20 s (block 2) only
    assert counts.loc[1, "n_rejected"] == 0 and counts.loc[2, "n_rejected"] == 1
    assert counts.loc[2, "n_kept"] == 4
    assert len(result.epochs) == 9
    assert set(result.epochs.get_channel_types()) == {"grad"}
    assert result.epochs.tmin == pytest.approx(-0.7) and result.epochs.tmax == pytest.approx(1.5)
    assert list(result.epochs.metadata["block"]) == [1] * 5 + [2] * 4


def test_missing_eog_warns_or_fails_as_configured(caplog):
    trials = _trials([5.0, 8.0, 11.0, 14.0, 17.0, 20.0])
    raw = _raw(with_eog=False)
    with pytest.raises(MissingEOGError, match="no EOG channel.*missing_eog = 'warn'"):
        make_epochs(raw, trials, EpochOptions(missing_eog="error"))
    result = make_epochs(raw, trials, EpochOptions(missing_eog="warn"))
    assert len(result.epochs) == 6 and result.eog_channels == []
    assert "No EOG channel" in caplog.text


def test_events_outside_the_recording_are_named():
    trials = _trials([5.0, 8.0, 11.0, 14.0, 17.0, 59.8])
    with pytest.raises(EventsOutsideError, match="1 of 6 stimuli \\(first at 59.800 s\\)"):
        make_epochs(_raw(), trials, EpochOptions())


def test_recording_without_gradiometers_is_refused():
    raw = _raw(with_grad=False)
    with pytest.raises(NoSensorsError, match="no usable gradiometers.*ch_type"):
        sensor_picks(raw.info, "grad")
    with pytest.raises(NoSensorsError):
        make_epochs(raw, _trials([5.0, 8.0, 11.0, 14.0, 17.0, 20.0]), EpochOptions())
