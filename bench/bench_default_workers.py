"""The default-workers trap: ``max_workers=None`` against ``max_workers=recommended_workers``.

Both executors' defaults count the CPUs the OS shows: in a container limited to 2 CPUs on a
64-CPU host, ``ProcessPoolExecutor()`` starts 64 processes and ``ThreadPoolExecutor()`` 32 threads.
This case runs the same batch as the scaling case both ways and records what the default chose.
"""

from __future__ import annotations

from bench.executors import warm_pool
from bench.harness import run_workload

CASE = "default_workers"


def test_default_workers(benchmark, case, suite):
    benchmark.group = f"default_workers {case.workload}"
    requested = None if case.sizing == "default" else case.workers
    with warm_pool(case.executor, requested, case.variant, suite.blas_threads, suite.malloc) as pool:
        chosen = pool._max_workers
        run_workload(benchmark, suite, case, pool)
    assert chosen == case.workers, f"{case.id}: the executor chose {chosen} workers, expected {case.workers}"
    benchmark.extra_info.update(sizing=case.sizing, max_workers_requested=requested)
