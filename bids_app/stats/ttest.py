"""Paired t-tests of MEG power between conditions (DESIGN 5.6).

A thin wrapper of :func:`scipy.stats.ttest_rel` (issue 22: the field library does the job
exactly). The app's former vectorised formula gave the same t and p to 9e-16
(``tests/test_field_libraries.py``) and was 1.4-1.5x faster on the group level's arrays (2.2
against 3.1-3.3 ms for the three condition pairs, ``benchmarks/bench_field_libraries.py``), a
millisecond per group run, so scipy's function is used.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

__all__ = ["paired_ttest_array"]


def paired_ttest_array(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test along axis 0: :func:`scipy.stats.ttest_rel` with ``axis=0``.

    ``d = a - b``; ``t = mean(d) / sqrt(var(d, ddof=1) / n)``; two-sided p from Student's t
    with ``n - 1`` degrees of freedom.

    Parameters
    ----------
    a, b : ndarray, shape (n_obs, ...)
        Paired samples (e.g. cluster-averaged MEG power of two conditions).

    Returns
    -------
    t : ndarray, shape a.shape[1:]
        NaN where every difference is zero, or where a difference is NaN.
    p : ndarray, shape a.shape[1:]
    """
    with warnings.catch_warnings():
        # a constant non-zero difference gives t = +-inf and p = 0, as the formula does; scipy
        # adds a "precision loss" RuntimeWarning that says nothing more to the user
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel(np.asarray(a, float), np.asarray(b, float), axis=0)
    return np.asarray(result.statistic), np.asarray(result.pvalue)
