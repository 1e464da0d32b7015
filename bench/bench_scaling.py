"""Strong scaling: a batch of fixed total work on a warm pool, at each worker count.

Speedup = serial time / pool time for the same batch in the same run (scripts.plot, scripts.report).
"""

from __future__ import annotations

import workloads
from bench.executors import warm_pool
from bench.harness import run_batches

CASE = "scaling"


def test_scaling(benchmark, case, suite):
    work = workloads.get(case.workload)
    size = work.size(suite.profile)
    benchmark.group = f"scaling {case.workload}"
    with warm_pool(case.executor, case.workers, case.start_method, suite.blas_threads, suite.mmap_threshold) as pool:
        info = run_batches(
            benchmark,
            suite,
            case,
            pool,
            func=work.func,
            args=[size.param] * size.tasks,
            check=lambda _, result: work.check(size.param, result),
            rounds=suite.settings["rounds"],
            warmup_rounds=suite.settings["warmup_rounds"],
        )
    info["task_param"] = size.param
    benchmark.extra_info["task_param"] = size.param
