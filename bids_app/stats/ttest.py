"""Paired t-tests of MEG power between conditions (DESIGN 5.6)."""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["paired_ttest_array"]


def paired_ttest_array(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test along axis 0, vectorised; :func:`scipy.stats.ttest_rel` semantics.

    ``d = a - b``; ``t = mean(d) / sqrt(var(d, ddof=1) / n)``; two-sided
    ``p = 2 * stdtr(n - 1, -|t|)``.

    Parameters
    ----------
    a, b : ndarray, shape (n_obs, ...)
        Paired samples (e.g. cluster-averaged MEG power of two conditions).

    Returns
    -------
    t : ndarray, shape a.shape[1:]
        NaN where every difference is zero (as scipy).
    p : ndarray, shape a.shape[1:]
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    n = d.shape[0]
    dm = d.mean(axis=0)
    v = d.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = dm / np.sqrt(v / n)
    p = 2 * special.stdtr(n - 1, -np.abs(t))
    return t, p
