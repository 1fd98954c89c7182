"""High-pass filtering with SPM's discrete-cosine drift basis (DESIGN 4.2, step 3).

SPM (``spm_filter``) builds ``K = fix(2 * N * TR / period + 1)`` discrete-cosine regressors for a
series of ``N`` volumes, the first being the constant (``spm_dctmtx``)::

    C[:, 0] = 1 / sqrt(N)
    C[:, k] = sqrt(2 / N) * cos(pi * (2 n + 1) * k / (2 N)),   n = 0 .. N - 1, k = 1 .. K - 1

and removes columns 1 .. K - 1 only, ``y - X0 @ (X0.T @ y)``. The columns are orthonormal, so this
is the least-squares fit of the drifts. The constant is *not* removed: the filtered series keeps
its mean (the block values are differences and do not depend on it; its standard deviation does
not either). A drift basis of a run shorter than half the cut-off period has no cosine and the
data are returned unchanged.

Why the app keeps this code rather than calling nilearn (issue 22): nilearn's
``create_cosine_drift`` and ``signal.clean(filter="cosine")`` build the same cosines (columns
equal to 5e-15, filtered series to 2e-15 of the data) but count them as
``floor(2 N high_pass dt)`` with ``high_pass = 1 / period`` and ``dt`` from the frame times,
which rounds one below SPM's ``fix(2 N TR / period + 1) - 1`` where ``2 N TR / period`` is an
integer: 3 of 31,410 (TR, cut-off, N) cases tested, e.g. TR 0.72 s, 60 s, 625 volumes, where SPM
removes 15 cosines and nilearn 14 (``tests/test_field_libraries.py``). ``clean`` was also
6.6-8.3x slower on a 250-volume x 400-parcel run (0.9-1.0 against 0.11-0.15 ms,
``benchmarks/bench_field_libraries.py``). The tests check this basis against nilearn's wherever
the counts agree.

For the paper's runs (TR 3 s, cut-off 510 s) a 250-volume run gets ``K = fix(2 * 750 / 510 + 1)
= 3``: two cosines removed, periods 1500 s and 750 s.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .errors import BoldImageError
from .validation import validate_repetition_time

logger = logging.getLogger(__name__)

__all__ = ["dct_drift_basis", "highpass_filter", "n_dct_regressors"]


def n_dct_regressors(n_volumes: int, tr: float, period_s: float) -> int:
    """Number of SPM drift regressors, constant included: ``fix(2 N TR / period + 1)``."""
    return int(np.fix(2.0 * n_volumes * tr / period_s + 1.0))


def dct_drift_basis(n_volumes: int, tr: float, period_s: float) -> np.ndarray:
    """SPM's discrete-cosine basis (``spm_dctmtx``) for a high-pass cut-off.

    Parameters
    ----------
    n_volumes : int
        Number of volumes ``N``.
    tr : float
        Repetition time (s).
    period_s : float
        Cut-off period (s); drifts slower than ``1 / period_s`` Hz are modelled.

    Returns
    -------
    basis : ndarray, shape (n_volumes, K)
        Orthonormal columns; column 0 is the constant ``1 / sqrt(N)``, columns 1 .. K - 1 the
        cosines of increasing frequency ``k / (2 N TR)`` Hz.
    """
    if n_volumes < 1:
        raise BoldImageError(f"a drift basis needs at least 1 volume, got {n_volumes}")
    if not period_s > 0:
        raise ValueError(f"highpass period must be > 0 s, got {period_s}")
    n_regressors = min(n_dct_regressors(n_volumes, tr, period_s), n_volumes)
    n = np.arange(n_volumes)[:, None]
    k = np.arange(n_regressors)[None, :]
    basis = np.sqrt(2.0 / n_volumes) * np.cos(np.pi * (2 * n + 1) * k / (2 * n_volumes))
    basis[:, 0] = 1.0 / np.sqrt(n_volumes)
    return basis


def highpass_filter(
    time_series: np.ndarray | pd.DataFrame, *, tr: float, period_s: float
) -> np.ndarray | pd.DataFrame:
    """Remove slow drifts from time series, keeping their mean (as SPM's ``spm_filter``).

    Parameters
    ----------
    time_series : ndarray, shape (n_volumes, ...) | DataFrame, shape (n_volumes, n_columns)
        Time runs along the first axis (e.g. parcel time series, volumes x parcels).
    tr : float
        Repetition time (s).
    period_s : float
        Cut-off period (s); 510 s in the paper (1/510 Hz).

    Returns
    -------
    filtered : same type and shape as ``time_series``
        Data minus their least-squares fit on the cosine regressors (the constant excluded).
    """
    tr = validate_repetition_time(tr)
    values = time_series.to_numpy(dtype=float) if isinstance(time_series, pd.DataFrame) else (
        np.asarray(time_series, dtype=float)
    )
    if values.ndim == 0:
        raise BoldImageError("time series must have a time axis, got a scalar")
    n_volumes = values.shape[0]
    drifts = dct_drift_basis(n_volumes, tr, period_s)[:, 1:]
    logger.debug(
        "High-pass %.0f s on %d volumes: %d cosine regressor(s) removed.",
        period_s,
        n_volumes,
        drifts.shape[1],
    )
    flat = values.reshape(n_volumes, -1)
    filtered = (flat - drifts @ (drifts.T @ flat)).reshape(values.shape)
    if isinstance(time_series, pd.DataFrame):
        return pd.DataFrame(filtered, index=time_series.index, columns=time_series.columns)
    return filtered
