"""The fast event-related DICS against MNE's own composition.

References: :func:`mne.time_frequency.csd_array_morlet` (+ ``.mean()``) for the CSDs and
:func:`mne.beamformer.apply_dics_csd` for the source power, on a Vectorview-like sensor array
with a spherical head and a few dipole positions, so the test runs without external data.
"""

from __future__ import annotations

import mne
import numpy as np
import pytest

from bids_app.meg.dics import (
    band_frequencies,
    capped_n_cycles,
    check_bands,
    dics_filters,
    event_related_csd,
    normalize_run,
    parcel_average,
    baseline_reference,
    relative_change,
    segmentation,
    source_power,
    to_csd_object,
)
from bids_app.meg.errors import SamplingRateError

SFREQ = 200.0


@pytest.fixture(scope="module")
def setup():
    """Gradiometer info, a forward model of 40 dipoles in a sphere, and epochs of noise."""
    from bids_app.simulate.meg import template_head, vectorview_like_info

    info = vectorview_like_info(SFREQ, template_head())
    info = mne.pick_info(info, mne.pick_types(info, meg="grad"))
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=0.09, info=info,
                                   verbose="error")
    rng = np.random.default_rng(0)
    rr = rng.uniform(-0.04, 0.04, (40, 3)) + [0.0, 0.0, 0.05]
    nn = np.tile([0.0, 0.0, 1.0], (40, 1))
    src = mne.setup_volume_source_space(pos={"rr": rr, "nn": nn}, sphere=sphere,
                                        verbose="error")
    fwd = mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False,
                                    verbose="error")
    times = np.arange(-0.6, 1.4, 1.0 / SFREQ)
    X = rng.standard_normal((9, len(info["ch_names"]), len(times))) * 1e-11
    return info, fwd, times, X


WINDOWS = np.array([[-0.2, 0.0], [0.1, 0.3], [100 / 3000 + 0.1, 100 / 3000 + 0.3]])


@pytest.mark.parametrize("real", [True, False])
def test_csd_equals_mne_csd_array_morlet(setup, real):
    """Per group and window, our CSD equals csd_array_morlet(...).mean().

    Tolerance 1e-7 relative: MNE crops the data to the window plus half the longest wavelet
    with an exclusive end, which drops one sample of the wavelet's Gaussian tail (weight
    exp(-12.5) ~ 4e-6) for the last sample of windows whose end falls on a sample; we transform
    the whole epoch. The difference measured is ~1e-8; without that edge it is ~1e-16.
    """
    info, _fwd, times, X = setup
    freqs = band_frequencies(15.0, 21.0, 2.0)
    cycles = capped_n_cycles(freqs, 7.0, SFREQ, len(times))
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, -1])
    csd, pooled = event_related_csd(X, SFREQ, times, freqs=freqs, n_cycles=cycles,
                                    groups=groups, windows_s=WINDOWS, real=real)
    assert csd.shape == (3, len(WINDOWS), X.shape[1], X.shape[1])
    for g in range(3):
        for w, (tmin, tmax) in enumerate(WINDOWS):
            ref = mne.time_frequency.csd_array_morlet(
                X[groups == g], SFREQ, freqs, t0=times[0], tmin=tmin, tmax=tmax,
                n_cycles=cycles, verbose="error").mean().get_data()
            ref = ref.real if real else ref
            np.testing.assert_allclose(csd[g, w], ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    # Hermitian (symmetric when real) and positive semi-definite
    np.testing.assert_allclose(pooled, pooled.conj().T, atol=1e-20)
    assert np.linalg.eigvalsh(pooled).min() > -1e-12 * np.abs(pooled).max()


def test_source_power_equals_apply_dics_csd(setup):
    """Batched projection equals apply_dics_csd on the same CSDs (bar: 1e-6; measured ~1e-14)."""
    info, fwd, times, X = setup
    freqs = band_frequencies(8.0, 13.0, 1.0)
    cycles = capped_n_cycles(freqs, 7.0, SFREQ, len(times))
    groups = np.repeat([0, 1, 2], 3)
    csd, pooled = event_related_csd(X, SFREQ, times, freqs=freqs, n_cycles=cycles,
                                    groups=groups, windows_s=WINDOWS, real=False)
    filters = dics_filters(info, fwd, pooled.real, freqs, reg=0.05, pick_ori="max-power",
                           reduce_rank=True)
    fast = source_power(filters, csd, batch=2)
    assert fast.shape == (3, len(WINDOWS), 40)
    for g in range(3):
        for w in range(len(WINDOWS)):
            stc, _ = mne.beamformer.apply_dics_csd(
                to_csd_object(csd[g, w], info["ch_names"], freqs), filters, verbose="error")
            ref = stc.data[:, 0]
            np.testing.assert_allclose(fast[g, w], ref, rtol=1e-6)
    # the real part of the CSD is all the real filters use
    np.testing.assert_allclose(source_power(filters, csd.real), fast, rtol=1e-12)


def test_segments_cover_windows_exactly():
    times = np.arange(-0.5, 1.5, 1 / 600.0)
    starts = 0.1 + np.arange(22) / 30.0
    windows = np.column_stack([starts, starts + 0.2])
    seg = segmentation(times, windows)
    for row, (a, b) in zip(seg.membership, seg.windows):
        covered = seg.segments[row.astype(bool)]
        assert covered[0, 0] == a and covered[-1, 1] == b
        assert np.all(covered[1:, 0] == covered[:-1, 1])  # contiguous, no overlap
    assert seg.segments[-1, 1] - seg.segments[0, 0] == seg.windows[-1, 1] - seg.windows[0, 0]


def test_capped_cycles_fit_the_epoch():
    freqs = np.array([4.0, 8.0, 40.0])
    cycles = capped_n_cycles(freqs, 7.0, 600.0, 1321)
    assert cycles[-1] == 7.0 and cycles[0] < 7.0
    wavelets = mne.time_frequency.morlet(600.0, freqs, cycles)
    assert max(len(w) for w in wavelets) <= 1321


def test_band_too_high_for_sampling_rate_is_refused():
    with pytest.raises(SamplingRateError, match="highgamma band .* change \\[meg\\] bands"):
        check_bands({"theta": (4, 7), "highgamma": (54, 90)}, sfreq=150.0, lowpass=50.0)
    check_bands({"highgamma": (54, 90)}, sfreq=250.0, lowpass=125.0)


def test_relative_change_parcel_average_and_normalisation():
    power = np.array([[[2.0, 4.0, 6.0]]])
    base = np.array([[[1.0, 2.0, 3.0]]])
    np.testing.assert_allclose(relative_change(power, base), 1.0)
    values = np.arange(12.0).reshape(1, 1, 12)
    parcel = np.array([0, 0, 1, 1, 1, -1, 2, 2, 2, 2, -1, -1])
    out = parcel_average(values, parcel, 4)
    np.testing.assert_allclose(out[0, 0, :3], [0.5, 3.0, 7.5])
    assert np.isnan(out[0, 0, 3])  # parcel without sources
    rng = np.random.default_rng(1)
    run = rng.normal(2.0, 3.0, (15, 22, 5))
    norm = normalize_run(run)
    np.testing.assert_allclose(norm.mean(axis=0), 0.0, atol=1e-12)
    expected = (run - run.mean(axis=0)) / run.std(axis=(0, 1))
    np.testing.assert_allclose(norm, expected)


def test_baseline_of_the_block_or_of_the_run():
    """``baseline_scope="run"`` compares every block with the mean of the blocks' baselines."""
    rng = np.random.default_rng(2)
    power = rng.uniform(1.0, 2.0, (4, 1 + 3, 6))            # blocks, baseline + windows, points
    own = relative_change(power[:, 1:], baseline_reference(power[:, :1], "block"))
    np.testing.assert_allclose(own, power[:, 1:] / power[:, :1] - 1)
    pooled = relative_change(power[:, 1:], baseline_reference(power[:, :1], "run"))
    np.testing.assert_allclose(pooled, power[:, 1:] / power[:, 0].mean(axis=0) - 1)
    with pytest.raises(ValueError, match="'block' or 'run'"):
        baseline_reference(power[:, :1], "subject")


def test_reduced_basis_gives_the_same_power(setup):
    """Rank-deficient data (as after SSS): CSDs in the data's basis give the same power."""
    info, fwd, times, X = setup
    rng = np.random.default_rng(3)
    mixing = rng.standard_normal((X.shape[1], 30))
    low_rank = np.einsum("cr,ert->ect", mixing, X[:, :30])
    freqs = band_frequencies(8.0, 13.0, 1.0)
    cycles = capped_n_cycles(freqs, 7.0, SFREQ, len(times))
    groups = np.repeat([0, 1, 2], 3)
    kwargs = dict(freqs=freqs, n_cycles=cycles, groups=groups, windows_s=WINDOWS)
    full, pooled = event_related_csd(low_rank, SFREQ, times, **kwargs)
    reduced, pooled_r, basis = event_related_csd(low_rank, SFREQ, times, return_basis=True,
                                                 **kwargs)
    assert basis.shape == (X.shape[1], 30)
    np.testing.assert_allclose(pooled_r, pooled, atol=1e-10 * np.abs(pooled).max())
    filters = dics_filters(info, fwd, pooled, freqs, reg=0.05, pick_ori="max-power",
                           reduce_rank=True)
    np.testing.assert_allclose(source_power(filters, reduced, basis=basis),
                               source_power(filters, full), rtol=1e-8)


def test_normal_orientation_accepts_a_free_orientation_forward(setup):
    """``pick_ori="normal"`` (a documented configuration value) works with the free-orientation
    forward model the pipeline computes: the filter equals MNE's on the surface-oriented model
    and keeps one orientation per source. It used to stop the run with MNE's ValueError."""
    info, _fwd, times, X = setup
    rng = np.random.default_rng(4)
    # dipoles with tangential normals; the spherical model's silent radial direction
    # needs reduce_rank, as in the pipeline's sphere fallback
    rr = rng.uniform(-0.03, 0.03, (20, 3)) + [0.0, 0.0, 0.05]
    src = mne.setup_volume_source_space(pos={"rr": rr, "nn": np.tile([1.0, 0, 0], (20, 1))},
                                        sphere=(0.0, 0.0, 0.04, 0.09), verbose="error")
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=0.09, info=info,
                                   verbose="error")
    free = mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False,
                                     verbose="error")
    assert not free["surf_ori"]
    freqs = band_frequencies(8.0, 13.0, 1.0)
    _, pooled = event_related_csd(X, SFREQ, times, freqs=freqs,
                                  n_cycles=capped_n_cycles(freqs, 7.0, SFREQ, len(times)),
                                  groups=np.repeat([0, 1, 2], 3), windows_s=WINDOWS)
    filters = dics_filters(info, free, pooled, freqs, reg=0.05, pick_ori="normal",
                           reduce_rank=True)
    ref = mne.beamformer.make_dics(
        info, mne.convert_forward_solution(free, surf_ori=True, verbose="error"),
        to_csd_object(pooled, info["ch_names"], freqs), reg=0.05, pick_ori="normal",
        real_filter=True, rank="info", reduce_rank=True, verbose="error")
    assert filters["weights"].shape == ref["weights"].shape
    assert filters["weights"].shape[1:] == (20, X.shape[1])  # one orientation per source
    np.testing.assert_allclose(filters["weights"], ref["weights"], rtol=1e-10)


def test_the_filters_keep_the_whole_subspace_of_sss_data(mne_testing):
    """On SSS-processed data (a real recording), the filters see the data's whole subspace:
    their whitener and weights leave no part of the data's span out. With MNE's ``rank="info"``
    and no noise CSD, the identity whitener was cut to about 70 arbitrary sensor axes and kept
    about a third of the span (issue 25)."""
    raw = mne.io.read_raw_fif(mne_testing / "SSS" / "sample_audvis_trunc_raw_sss.fif",
                              verbose="error").load_data().pick("grad")
    info = raw.info
    data = raw.get_data()[:, : int(12 * info["sfreq"])]
    epochs = data[:, : (data.shape[1] // 300) * 300].reshape(len(info["ch_names"]), -1, 300)
    epochs = epochs.transpose(1, 0, 2)
    times = np.arange(300) / info["sfreq"] - 0.5
    freqs = band_frequencies(8.0, 13.0, 1.0)
    cycles = capped_n_cycles(freqs, 7.0, info["sfreq"], len(times))
    groups = np.arange(len(epochs)) % 2
    _, pooled, basis = event_related_csd(epochs, info["sfreq"], times, freqs=freqs,
                                         n_cycles=cycles, groups=groups,
                                         windows_s=np.array([[-0.2, 0.0], [0.0, 0.2]]),
                                         return_basis=True)
    assert basis.shape[1] < len(info["ch_names"]) - 50     # SSS: far fewer than 204 dimensions
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.04), head_radius=0.09, info=info,
                                   verbose="error")
    rng = np.random.default_rng(5)
    src = mne.setup_volume_source_space(
        pos={"rr": rng.uniform(-0.03, 0.03, (10, 3)) + [0.0, 0.0, 0.05],
             "nn": np.tile([1.0, 0.0, 0.0], (10, 1))}, sphere=sphere, verbose="error")
    fwd = mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False,
                                    verbose="error")
    filters = dics_filters(info, fwd, pooled, freqs, reg=0.2, pick_ori="max-power",
                           reduce_rank=True)
    whitener = np.real(filters["whitener"])
    kept = np.linalg.pinv(whitener) @ whitener @ basis
    np.testing.assert_allclose(np.linalg.norm(kept) ** 2 / basis.shape[1], 1.0, atol=1e-6)
