"""Strong scaling: a batch of fixed total work on a warm pool, at each worker count.

Speedup = serial time / pool time for the same batch in the same run (scripts.plot, scripts.report).
"""

from __future__ import annotations

from bench.executors import warm_pool
from bench.harness import run_workload

CASE = "scaling"


def test_scaling(benchmark, case, suite):
    benchmark.group = f"scaling {case.workload}"
    with warm_pool(
        case.executor,
        case.workers,
        case.start_method,
        suite.blas_threads,
        suite.mmap_threshold,
        scheduler=suite.dask_scheduler,
    ) as pool:
        run_workload(benchmark, suite, case, pool)
