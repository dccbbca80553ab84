"""Worker processes: the pool that runs replications and experiment cells in parallel.

Workers are forked from the parent process, so every module the parent has imported is
theirs without importing it again. What the workers would otherwise import lazily on
first use, each on its own (scipy's Student-t quantile, :mod:`sim.stats.estimators`), is
imported here once, before the fork. Which process computes what never changes a number:
results are combined in a fixed order (see :mod:`sim.runner`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from sim.stats.estimators import load_t_quantiles


def pool_size(requested: int, jobs: int) -> int:
    """Processes for ``jobs`` jobs: ``requested`` (0: one per core), at most one per job."""
    n = requested or (os.cpu_count() or 1)
    return max(1, min(n, jobs))


@contextmanager
def worker_pool(processes: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``processes`` forked workers, shut down on exit; None for one process
    (the caller then runs its jobs itself)."""
    if processes <= 1:
        yield None
        return
    load_t_quantiles()  # imported once here rather than in every worker
    pool = ProcessPoolExecutor(processes, mp_context=mp.get_context("fork"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
