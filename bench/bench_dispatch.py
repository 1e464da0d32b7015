"""Dispatch cost: many empty tasks through ``map`` at chunksize 1, 16 and 256.

Cost per task = round time / tasks. Only ProcessPoolExecutor.map uses ``chunksize``; it batches
tasks into one pickled message per chunk, which is why it matters for processes alone.
"""

from __future__ import annotations

import workloads
from bench.harness import case_pool, run_batches

CASE = "dispatch"


def test_dispatch(benchmark, case, suite):
    work = workloads.get(case.workload)
    tasks = work.size(suite.profile).tasks
    args = list(range(tasks))
    benchmark.group = f"dispatch {case.executor}"
    with case_pool(case, suite) as pool:
        run_batches(
            benchmark,
            suite,
            case,
            pool,
            func=work.func,
            args=args,
            check=lambda i, result: result == args[i],
            rounds=suite.settings["rounds"],
            warmup_rounds=suite.settings["warmup_rounds"],
        )
    benchmark.extra_info["task_param"] = "int"
