"""Threads of the numerical libraries inside a node.

Nipype's MultiProc plugin runs several nodes at once, one worker process each, and gives each
node the number of cores it declares (``n_procs``, 1 unless set). The numerical libraries do not
know this: OpenBLAS/MKL and OpenMP start one thread per core in *every* process, and ITK (ANTs)
does the same. Two nodes on two cores then run four or more threads that spin against each other.
Measured on the simulated study (one subject, two runs, ``--nprocs 2``, 2 cores): the
participant level took 313 s with the libraries' defaults and 188 s with the limits below; tSSS
went from 66 to 24 s per run, the DICS power from 52 to 13 s, with the same results
(``docs/architecture.md``).

Every interface that does numerical work therefore runs it inside :func:`limit_threads` with its
``num_threads`` input, which the workflows set to the node's ``n_procs`` (``--omp-nthreads``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from nipype.interfaces.base import traits

#: Environment variable read by ITK (and so ANTs) when it creates its thread pool.
ITK_THREADS = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"


def num_threads_trait():
    """The ``num_threads`` input of a numerical interface (set it to the node's ``n_procs``).

    Not part of the node's hash: a run resumed with another ``--omp-nthreads`` reuses the cache.
    """
    return traits.Int(1, usedefault=True, nohash=True,
                      desc="threads of the numerical libraries (BLAS, OpenMP, ITK)")


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with at most ``n`` threads in BLAS/OpenMP (threadpoolctl) and ITK.

    SimpleITK reads the ITK variable only the first time it needs a thread count in a process,
    so a SimpleITK already loaded (by an earlier node in the same worker process) gets the limit
    through its own global default (``ProcessObject.SetGlobalDefaultNumberOfThreads``). The
    previous limits, the previous value of the ITK variable and SimpleITK's previous default
    are restored on exit.
    """
    from threadpoolctl import threadpool_limits

    n = max(int(n), 1)
    previous = os.environ.get(ITK_THREADS)
    os.environ[ITK_THREADS] = str(n)
    sitk = sys.modules.get("SimpleITK")
    previous_sitk = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() if sitk else None
    try:
        if sitk:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
        with threadpool_limits(limits=n):
            yield
    finally:
        if previous is None:
            os.environ.pop(ITK_THREADS, None)
        else:
            os.environ[ITK_THREADS] = previous
        if sitk:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous_sitk)
