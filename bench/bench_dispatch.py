"""Dispatch cost: many empty tasks through ``map`` at chunksize 1, 16 and 256.

Cost per task = round time / tasks. Only ProcessPoolExecutor.map uses ``chunksize``; it batches
tasks into one pickled message per chunk, which is why it matters for processes alone.

At chunksize 1 the case also times, after its rounds, a ``map`` of one empty task per worker,
``LATENCY_ROUNDS`` times (extra_info ``latency_samples_s``): what one ``map`` call costs however few
its tasks, the fixed part of a batch that the per-task figure of a long batch spreads thin. With
the CPU time the rounds took (``cpu_time_s``), it is the report's overhead model of a batch
(scripts/costs.py ``overhead_model``), checked there against the scaling cases.
"""

from __future__ import annotations

import time

import workloads
from bench import stopping
from bench.harness import case_pool, run_batches

CASE = "dispatch"
#: maps of one empty task per worker timed after the rounds (the latency of one map call)
LATENCY_ROUNDS = 7


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
            rounds=suite.settings["dispatch_rounds"],
            warmup_rounds=suite.settings["warmup_rounds"],
        )
        if case.chunksize == 1:
            benchmark.extra_info["latency_samples_s"] = map_latency(pool, work.func, case.workers)
    benchmark.extra_info["task_param"] = "int"


def map_latency(pool, func, workers: int) -> list[float]:
    """Wall time of ``map`` over one empty task per worker, LATENCY_ROUNDS times, every answer checked."""
    args = list(range(workers))
    out = []
    for _ in range(LATENCY_ROUNDS):
        stopping.checkpoint()
        start = time.perf_counter()
        answers = list(pool.map(func, args))
        out.append(round(time.perf_counter() - start, 9))
        if answers != args:
            raise AssertionError(f"latency map returned {answers!r:.200}, expected {args!r}")
    return out
