"""High-pass filter: SPM's discrete-cosine basis, checked against nilearn and least squares."""

import numpy as np
import pandas as pd
import pytest
try:
    from nilearn.signal import create_cosine_drift
except ImportError:  # nilearn < 0.12 (the floor is 0.11) has it with the GLM design matrices
    from nilearn.glm.first_level.design_matrix import create_cosine_drift

from bids_app.fmri.errors import RepetitionTimeError
from bids_app.fmri.highpass import dct_drift_basis, highpass_filter, n_dct_regressors


def test_regressor_count_follows_spm():
    # spm_filter's own unit test: 64 scans, RT 2.4 s, cut-off 128 s -> X0 has 2 columns
    # (n = fix(2*64*2.4/128 + 1) = 3 regressors with the constant)
    assert n_dct_regressors(64, 2.4, 128.0) == 3
    assert dct_drift_basis(64, 2.4, 128.0).shape == (64, 3)
    # the paper: 250 volumes at TR 3 s, 510 s -> fix(2*750/510 + 1) = fix(3.94) = 3
    assert n_dct_regressors(250, 3.0, 510.0) == 3


def test_basis_is_orthonormal_and_equals_nilearn():
    n_volumes, tr, period = 200, 2.0, 100.0
    basis = dct_drift_basis(n_volumes, tr, period)
    # orthonormal columns (spm_dctmtx): X.T X = I to rounding
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-12)
    np.testing.assert_allclose(basis[:, 0], 1 / np.sqrt(n_volumes))
    # nilearn: cosines first (same sqrt(2/N) normalisation), constant last
    reference = create_cosine_drift(1.0 / period, np.arange(n_volumes) * tr)
    assert reference.shape[1] == basis.shape[1]
    np.testing.assert_allclose(basis[:, 1:], reference[:, :-1], atol=1e-12)


def _block_signal(n_volumes, tr):
    t = np.arange(n_volumes) * tr
    return np.where((t % 51.0) < 30.0, 1.0, 0.0)  # 30-s blocks, 21-s rests


def test_filter_removes_slow_drift_and_keeps_blocks_and_mean():
    n_volumes, tr, period = 255, 3.0, 510.0
    n = np.arange(n_volumes)
    # a slow drift spanning the basis' first cosine (period 2*N*TR = 1530 s) plus a ramp
    drift = 40.0 * np.cos(np.pi * (2 * n + 1) / (2 * n_volumes)) + 0.05 * n
    blocks = 2.0 * _block_signal(n_volumes, tr)
    data = 100.0 + blocks + drift
    filtered = highpass_filter(data, tr=tr, period_s=period)

    # independent least-squares reference: fit nilearn's cosines + constant, remove cosines only
    design = create_cosine_drift(1.0 / period, n * tr)
    beta, *_ = np.linalg.lstsq(design, data, rcond=None)
    expected = data - design[:, :-1] @ beta[:-1]
    np.testing.assert_allclose(filtered, expected, rtol=0, atol=1e-9)
    # the mean is kept exactly (the cosines sum to zero) ...
    assert filtered.mean() == pytest.approx(data.mean(), abs=1e-9)
    # ... the slow cosine is gone (the ramp's projection removed) and the blocks stay
    assert np.corrcoef(filtered, blocks)[0, 1] > 0.97
    assert np.corrcoef(data, blocks)[0, 1] < 0.2


def test_short_run_is_returned_unchanged_and_dataframes_keep_labels():
    # 80 volumes x 3 s = 240 s < 510/2: no cosine in the basis
    data = pd.DataFrame(
        np.random.default_rng(0).normal(size=(80, 2)), columns=["lh_a", "rh_b"]
    )
    filtered = highpass_filter(data, tr=3.0, period_s=510.0)
    assert isinstance(filtered, pd.DataFrame)
    assert list(filtered.columns) == ["lh_a", "rh_b"]
    np.testing.assert_array_equal(filtered.to_numpy(), data.to_numpy())


def test_filter_works_on_every_column_at_once():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(120, 3, 4))
    filtered = highpass_filter(data, tr=2.0, period_s=60.0)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(
                filtered[:, i, j], highpass_filter(data[:, i, j], tr=2.0, period_s=60.0)
            )


def test_invalid_tr_is_refused():
    with pytest.raises(RepetitionTimeError, match="positive"):
        highpass_filter(np.zeros(10), tr=0.0, period_s=128.0)
