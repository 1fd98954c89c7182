"""The app's own numerics and names against the field libraries doing the same job (issue 22).

Project rule: where nilearn, scipy, nibabel, mne, mne-bids, pybids or templateflow does the job
exactly, the app calls it; it keeps code of its own only where a benchmark
(``benchmarks/bench_field_libraries.py``) or a test here shows why. Each test compares the two
ways on realistic and edge-case inputs (ties, NaN, constant columns, small n) with a stated
tolerance. Where the app calls the library now, its former code is kept *here* as the
reference; where it keeps its own code, the test shows the difference that is the reason.
Decisions and figures: ``docs/architecture.md``, "Field libraries and the app's own code".
"""

import warnings

import numpy as np
import pytest
from scipy import ndimage, special, stats
from scipy.spatial.transform import Rotation

from bids_app.fmri.coregister import resample_to_grid
from bids_app.fmri.highpass import dct_drift_basis, highpass_filter, n_dct_regressors
from bids_app.io.derivatives import (bids_name, dseg_table_path, participant_path,
                                     surface_dseg_path)
from bids_app.stats import paired_ttest_array, spearman_array, spearman_pvalue

try:
    from nilearn.signal import create_cosine_drift
except ImportError:  # nilearn < 0.12 (the floor is 0.11) has it with the GLM design matrices
    from nilearn.glm.first_level.design_matrix import create_cosine_drift


# --------------------------------------------------------------------------------------------------
# Paired t-test: the app calls scipy.stats.ttest_rel; its former formula is the reference
# --------------------------------------------------------------------------------------------------
def _former_paired_ttest(a, b):
    """The app's vectorised paired t-test before issue 22."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = d.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=0) / np.sqrt(d.var(axis=0, ddof=1) / n)
    return t, 2 * special.stdtr(n - 1, -np.abs(t))


def _ttest_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 34, 6, 22))  # the group level: units x bands x windows
    yield "group level", a, a + rng.normal(0.2, 1.0, size=a.shape)
    small = rng.normal(size=(3, 50))
    yield "n = 3", small, small + rng.normal(size=small.shape)
    yield "n = 2", small[:2], small[:2] + rng.normal(size=(2, 50))
    tied = np.round(rng.normal(size=(12, 40)))
    yield "integer ties", tied, np.round(tied + rng.normal(size=tied.shape))
    edge = rng.normal(size=(10, 4))
    other = edge + rng.normal(size=edge.shape)
    other[:, 0] = edge[:, 0]          # every difference zero -> t NaN
    other[:, 1] = edge[:, 1] - 1.5    # constant non-zero difference -> t infinite, p 0
    other[3, 2] = np.nan              # a missing value -> NaN
    yield "zero, constant and NaN differences", edge, other


@pytest.mark.parametrize(("label", "a", "b"), list(_ttest_cases()), ids=lambda v: str(v)[:20])
def test_paired_ttest_is_scipy_and_equals_the_former_formula(label, a, b):
    """t and p equal the former formula to 1e-13 relative (observed: t 9e-16 absolute where
    |t| < 20, 4e-16 relative for the 4.5e16 of a constant difference; p 5e-16), NaN and inf
    in the same places; the tolerance allows for scipy's different order of operations."""
    t, p = paired_ttest_array(a, b)
    ref_t, ref_p = _former_paired_ttest(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scipy_result = stats.ttest_rel(a, b, axis=0)
    np.testing.assert_array_equal(t, scipy_result.statistic)
    np.testing.assert_array_equal(np.isnan(t), np.isnan(ref_t))
    np.testing.assert_array_equal(np.isinf(t), np.isinf(ref_t))
    finite = np.isfinite(ref_t)
    np.testing.assert_allclose(t[finite], ref_t[finite], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(p[~np.isnan(ref_p)], ref_p[~np.isnan(ref_p)], rtol=1e-12,
                               atol=1e-13)


def test_paired_ttest_is_quiet_on_constant_differences():
    """A constant difference is a valid outcome (t infinite, p 0), not a warning to the user."""
    a = np.arange(10.0)[:, None] * np.ones((1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t, p = paired_ttest_array(a, a - 1.0)
    assert np.all(np.isinf(t)) and np.all(p == 0)


# --------------------------------------------------------------------------------------------------
# Spearman over columns: the app keeps its kernel (see bids_app/stats/spearman.py)
# --------------------------------------------------------------------------------------------------
def _spearman_cases():
    rng = np.random.default_rng(1)
    meg = rng.normal(size=(20, 30, 3, 6, 4))
    fmri = rng.normal(size=(20, 30, 3, 1, 1))
    yield "group level, broadcast fMRI", meg + 0.3 * fmri, fmri
    yield "n = 3", meg[:3], fmri[:3]
    yield "200 observations", rng.normal(size=(200, 500)), rng.normal(size=(200, 500))
    x = np.round(rng.normal(size=(15, 300)))
    yield "ties in both", x, np.round(2 * (x + rng.normal(size=x.shape)))
    y = rng.normal(size=(8, 6))
    x = rng.normal(size=(8, 6))
    x[:, 0] = 1.0                    # constant column -> NaN
    x[:, 1] = np.arange(8)           # perfectly monotone -> rho 1, p 0
    y[:, 1] = np.arange(8) ** 3
    yield "constant and monotone columns", x, y


def _pearsonr_of_ranks(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        result = stats.pearsonr(stats.rankdata(x, axis=0), stats.rankdata(y, axis=0), axis=0)
    return result.statistic, result.pvalue


@pytest.mark.parametrize(("label", "x", "y"), list(_spearman_cases()), ids=lambda v: str(v)[:20])
def test_spearman_equals_spearmanr_and_pearsonr_of_ranks(label, x, y):
    """rho and p equal ``spearmanr`` column by column (1e-12; observed 3e-16 for rho and p)
    and ``pearsonr`` of the ranks (1e-12; observed 6e-16 for rho, 2e-15 for p, 3e-14
    relative: pearsonr takes p from the beta distribution, spearmanr and the app from
    Student's t). NaN for a constant column in all three."""
    rho = spearman_array(x, y)
    p = spearman_pvalue(rho, x.shape[0])
    xb, yb = np.broadcast_arrays(x, y)
    flat_x, flat_y = xb.reshape(x.shape[0], -1), yb.reshape(x.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        ref = [stats.spearmanr(flat_x[:, j], flat_y[:, j]) for j in range(flat_x.shape[1])]
    ref_rho = np.array([r.statistic for r in ref]).reshape(rho.shape)
    ref_p = np.array([r.pvalue for r in ref]).reshape(rho.shape)
    np.testing.assert_allclose(rho, ref_rho, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, ref_p, rtol=1e-12, atol=1e-12)
    lib_rho, lib_p = _pearsonr_of_ranks(x, y)
    np.testing.assert_allclose(rho, lib_rho, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, lib_p, rtol=1e-12, atol=1e-12)


def test_spearman_nan_propagates_like_the_libraries():
    """A NaN observation makes its column NaN in the app's kernel and in pearsonr of ranks
    (the checked :func:`bids_app.stats.spearman` refuses NaN before)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    x[4, 1] = np.nan
    rho = spearman_array(x, y)
    lib_rho, _ = _pearsonr_of_ranks(x, y)
    np.testing.assert_array_equal(np.isnan(rho), [False, True, False])
    np.testing.assert_array_equal(np.isnan(lib_rho), np.isnan(rho))


# --------------------------------------------------------------------------------------------------
# High-pass: the app keeps its SPM basis (see bids_app/fmri/highpass.py)
# --------------------------------------------------------------------------------------------------
def test_nilearn_cosine_count_differs_from_spm_at_exact_boundaries():
    """SPM's count ``fix(2 N TR / period + 1)`` and nilearn's ``floor(2 N high_pass dt)``
    (``high_pass = 1 / period``, ``dt`` from the frame times) are the same number in exact
    arithmetic, but where ``2 N TR / period`` is an integer nilearn's rounding can land one
    below. Over TR in 0.5-3 s, cut-offs 60-510 s and 2-699 volumes (31,410 cases) 3 differ; at
    TR 0.72 s (HCP), 60 s and 625 volumes SPM removes 15 cosines and nilearn 14."""
    assert n_dct_regressors(625, 0.72, 60.0) - 1 == 15          # 2 * 625 * 0.72 / 60 = 15
    assert create_cosine_drift(1 / 60.0, np.arange(625) * 0.72).shape[1] - 1 == 14
    differ = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for tr in (0.5, 0.72, 0.8, 1.0, 1.5, 2.0, 2.2, 2.5, 3.0):
            for period in (60.0, 100.0, 128.0, 200.0, 510.0):
                for n in range(2, 700):
                    ours = min(n_dct_regressors(n, tr, period), n) - 1
                    theirs = create_cosine_drift(1 / period, np.arange(n) * tr).shape[1] - 1
                    if ours != theirs:
                        differ.append((tr, period, n, ours, theirs))
    assert differ == [(0.72, 60.0, 625, 15, 14), (0.8, 100.0, 375, 6, 5),
                      (0.8, 200.0, 375, 3, 2)]


@pytest.mark.parametrize(("n_volumes", "tr", "period"),
                         [(250, 3.0, 510.0), (267, 3.0, 510.0), (400, 0.8, 128.0),
                          (60, 2.0, 100.0)])
def test_highpass_equals_nilearn_clean_where_the_counts_agree(n_volumes, tr, period):
    """Where the cosine counts agree the filtered series equal nilearn's
    ``signal.clean(filter="cosine", detrend=False, standardize=False)`` to 1e-12 relative to
    the data (observed 2e-15); both keep the mean. The basis columns agree to 1e-12 (observed
    5e-15 over the 31,410 cases above)."""
    from nilearn.signal import clean

    rng = np.random.default_rng(3)
    data = 100 + rng.normal(size=(n_volumes, 7)) + np.linspace(0, 8, n_volumes)[:, None]
    data[:, 0] = 50.0  # a constant column stays constant
    ours = highpass_filter(data, tr=tr, period_s=period)
    with warnings.catch_warnings():
        # nilearn 0.14 announces None in place of False; False works from the floor, 0.11, on
        warnings.simplefilter("ignore", FutureWarning)
        theirs = clean(data, detrend=False, standardize=False, filter="cosine",
                       high_pass=1 / period, t_r=tr)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(data).max())
    basis = dct_drift_basis(n_volumes, tr, period)
    reference = create_cosine_drift(1 / period, np.arange(n_volumes) * tr)
    np.testing.assert_allclose(basis[:, 1:], reference[:, :-1], atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Resampling: the app calls nibabel.processing.resample_from_to; map_coordinates is the reference
# --------------------------------------------------------------------------------------------------
def _former_resample(data, affine, grid_shape, grid_affine, grid_to_source, order):
    """The app's resampling before issue 22: map_coordinates on explicit coordinates."""
    vox_to_vox = np.linalg.inv(affine) @ grid_to_source @ grid_affine
    ijk = np.indices(grid_shape, dtype=float).reshape(3, -1)
    coords = vox_to_vox[:3, :3] @ ijk + vox_to_vox[:3, 3:4]
    limits = np.asarray(data.shape[:3], dtype=float)[:, None] - 1
    inside = np.all((coords >= 0) & (coords <= limits), axis=0).reshape(grid_shape)
    values = ndimage.map_coordinates(data, coords, order=order, mode="constant", cval=0.0)
    return values.reshape(grid_shape), inside


def _rigid(angles_deg, shift_mm):
    move = np.eye(4)
    move[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    move[:3, 3] = shift_mm
    return move


_LIA = np.array([[-1.0, 0, 0, 40], [0, 0, 1, -50], [0, -1, 0, 45], [0, 0, 0, 1]])


@pytest.mark.parametrize(("dtype", "order", "move", "atol"), [
    (np.float32, 1, _rigid([3, -2, 5], [2, -1, 3]), 1e-6),
    (np.float64, 1, _rigid([3, -2, 5], [2, -1, 3]), 1e-12),
    (np.float64, 3, _rigid([-4, 1, 2], [0.5, 0, -2]), 1e-12),
    (np.float64, 1, np.eye(4), 1e-12),
    (np.float64, 1, _rigid([0, 0, 30], [25, 0, 0]), 1e-12),  # most of the grid outside
])
def test_resample_is_nibabel_and_equals_map_coordinates(dtype, order, move, atol):
    """Values equal the former ``map_coordinates`` way to 1e-12 (float64; observed 3e-14) or
    1e-6 (float32 output, both round alike; observed 0 here, 4e-9 in the benchmark), zero
    outside the field of view, the same mask and dtype."""
    rng = np.random.default_rng(4)
    data = ndimage.gaussian_filter(rng.normal(size=(40, 36, 44)), 1.5).astype(dtype)
    data /= data.std()
    grid_affine = np.diag([1.5, 1.5, 1.75, 1.0])
    grid_affine[:3, 3] = [2, -48, 11]
    shape = (28, 30, 24)
    values, inside = resample_to_grid(data, _LIA, shape, grid_affine, grid_to_source=move,
                                      order=order)
    ref_values, ref_inside = _former_resample(data, _LIA, shape, grid_affine, move, order)
    assert values.dtype == ref_values.dtype == dtype
    np.testing.assert_array_equal(inside, ref_inside)
    assert 0 < inside.sum() < inside.size or np.array_equal(move, np.eye(4))
    np.testing.assert_allclose(values, ref_values, rtol=0, atol=atol)


# --------------------------------------------------------------------------------------------------
# BIDS file names: the app keeps bids_name (see bids_app/io/derivatives.py)
# --------------------------------------------------------------------------------------------------
#: Every kind of file name the app writes (DESIGN 6), as (entities, suffix, extension, name).
_APP_NAMES = [
    ({"sub": "01", "task": "naming", "run": "1", "atlas": "HCPMMP1", "desc": "blocks"},
     "bold", ".tsv", "sub-01_task-naming_run-1_atlas-HCPMMP1_desc-blocks_bold.tsv"),
    ({"sub": "01", "ses": "2", "task": "naming", "acq": "x", "run": "01", "atlas": "HCPMMP1",
      "desc": "dics"}, "meg", ".tsv.gz",
     "sub-01_ses-2_task-naming_acq-x_run-01_atlas-HCPMMP1_desc-dics_meg.tsv.gz"),
    ({"task": "naming", "atlas": "HCPMMP1", "desc": "observations"}, "meg", ".tsv.gz",
     "task-naming_atlas-HCPMMP1_desc-observations_meg.tsv.gz"),
    ({"task": "naming", "atlas": "HCPMMP1", "desc": "spearman"}, "stat", ".tsv",
     "task-naming_atlas-HCPMMP1_desc-spearman_stat.tsv"),
    ({"task": "naming", "atlas": "fallback", "desc": "ward"}, "clusters", ".tsv",
     "task-naming_atlas-fallback_desc-ward_clusters.tsv"),
    ({"atlas": "HCPMMP1"}, "dseg", ".tsv", "atlas-HCPMMP1_dseg.tsv"),
    ({"hemi": "L", "space": "fsaverage5", "atlas": "HCPMMP1"}, "dseg", ".label.gii",
     "hemi-L_space-fsaverage5_atlas-HCPMMP1_dseg.label.gii"),
]

_MNE_BIDS_KEYS = {"sub": "subject", "ses": "session", "task": "task", "acq": "acquisition",
                  "run": "run", "space": "space", "desc": "description"}


def test_app_names_are_the_contract():
    """bids_name gives the names of DESIGN 6 (and the helpers built on it agree)."""
    for entities, suffix, extension, name in _APP_NAMES:
        assert bids_name(entities, suffix, extension) == name
    assert dseg_table_path("out", "HCPMMP1").name == _APP_NAMES[-2][3]
    assert surface_dseg_path("out", "HCPMMP1", "lh").name == _APP_NAMES[-1][3]
    assert participant_path("out", _APP_NAMES[1][0], "meg", "meg", ".tsv.gz").as_posix() == (
        "out/sub-01/ses-2/meg/" + _APP_NAMES[1][3])


def test_mne_bids_cannot_build_the_app_names():
    """``mne_bids.BIDSPath`` has no ``atlas`` or ``hemi`` entity: it can build none of the
    seven names (they all carry ``atlas-``). If this test fails, mne-bids has learnt the
    derivative entities: compare again and switch."""
    from mne_bids import BIDSPath

    assert not {"atlas", "hemi"} & set(BIDSPath(subject="01").entities)
    built = []
    for entities, suffix, extension, _ in _APP_NAMES:
        kept = {_MNE_BIDS_KEYS[k]: v for k, v in entities.items() if k in _MNE_BIDS_KEYS}
        built.append(BIDSPath(**kept, suffix=suffix, extension=extension, check=False).basename)
    assert built[0] == "sub-01_task-naming_run-1_desc-blocks_bold.tsv"  # atlas- lost
    assert all(b != name for b, (*_, name) in zip(built, _APP_NAMES))


def test_pybids_default_patterns_cannot_build_the_app_names():
    """pybids' ``build_path`` with its BIDS and derivatives path patterns gives no name for
    six of the seven files and drops ``atlas-`` and ``desc-`` from the seventh; only a pattern
    written by us would give the names, which is what ``bids_name`` is."""
    import json
    from importlib import resources

    from bids.layout.writing import build_path

    keys = {"sub": "subject", "ses": "session", "acq": "acquisition"}
    config = resources.files("bids.layout") / "config"
    patterns = [p for name in ("bids.json", "derivatives.json")
                for p in json.loads((config / name).read_text()).get("default_path_patterns", [])]
    datatypes = {"bold": "func", "meg": "meg"}
    built = []
    for entities, suffix, extension, _ in _APP_NAMES:
        full = {keys.get(k, k): v for k, v in entities.items()}
        full.update(suffix=suffix, extension=extension)
        if "sub" in entities:
            full["datatype"] = datatypes[suffix]
        path = build_path(full, patterns)
        built.append(None if path is None else path.rsplit("/", 1)[-1])
    assert built[1] == "sub-01_ses-2_task-naming_acq-x_run-01_meg.tsv.gz"
    assert built.count(None) == 6
