"""Thread limits of the numerical libraries inside an interface (bids_app/interfaces/threads.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from bids_app.interfaces.threads import ITK_THREADS, limit_threads


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_limits_apply_inside_and_are_restored(monkeypatch):
    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # BLAS loaded
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this numpy")
    monkeypatch.setenv(ITK_THREADS, "7")
    before = _blas_threads()
    with limit_threads(1):
        assert _blas_threads() == {1}
        assert os.environ[ITK_THREADS] == "1"
    assert _blas_threads() == before
    assert os.environ[ITK_THREADS] == "7"


def test_unset_itk_variable_is_unset_again_even_after_an_error(monkeypatch):
    monkeypatch.delenv(ITK_THREADS, raising=False)
    with pytest.raises(RuntimeError), limit_threads(0):  # 0 is read as 1
        assert os.environ[ITK_THREADS] == "1"
        raise RuntimeError("node failed")
    assert ITK_THREADS not in os.environ


def test_simpleitk_already_loaded_gets_the_limit_and_its_default_back():
    # SimpleITK reads the ITK variable once per process; a worker process that already ran a
    # SimpleITK node must still keep to the next node's budget
    sitk = pytest.importorskip("SimpleITK")
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    with limit_threads(1):
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
