"""Memory: the process tree's resident and unique memory with every worker of the pool started.

Each round builds a pool and starts every worker with one task each (``warm_up``: each task holds
its worker for at least ``WARMUP_HOLD_S``, 20 ms, so that the tasks land on different workers; a
worker that has run one of the suite's tasks has imported NumPy, as a numeric application's worker
would), then reads the tree's memory after the round, outside the timed region. The time recorded
is therefore pool creation plus that warm-up, holds included: a floor of 20 ms, not a start-up
time (the ``cold_start`` case measures that). Shutdown is outside the timed region and the meter.
"""

from __future__ import annotations

import psutil

from bench.backend import backend
from bench.executors import warm_up
from bench.harness import case_info, new_case_pool, run_pool_starts
from bench.measure import WrongAnswer
from bench.readings import tree_rss_bytes, tree_size, tree_uss_bytes

CASE = "memory"


def test_memory(benchmark, case, suite):
    me = psutil.Process()
    base_rss = tree_rss_bytes(me)
    base_uss = tree_uss_bytes(me)
    seen = {"rss": 0, "uss": 0, "processes": 0, "threads": 0}

    def inspect():
        seen["rss"] = max(seen["rss"], tree_rss_bytes(me))
        seen["uss"] = max(seen["uss"], tree_uss_bytes(me) or 0)
        seen["processes"] = max(seen["processes"], tree_size(me))
        seen["threads"] = max(seen["threads"], me.num_threads())

    benchmark.group = f"memory {case.executor}"
    answers, meter = run_pool_starts(
        benchmark,
        suite,
        make=lambda: new_case_pool(case, suite),
        first=lambda pool: len(warm_up(pool, case.workers)),
        rounds=suite.settings["memory_rounds"],
        warmup_rounds=0,
        inspect=inspect,
    )
    started = max(answers, default=0)
    if backend(case.executor).own_processes and started != case.workers:
        raise WrongAnswer(f"{case.id}: {started} of {case.workers} workers answered the warm-up")
    extra_workers = max(case.workers, 1)
    info = case_info(case, suite)
    info.update(
        tasks=case.workers,
        task_param="whoami",
        **meter.as_info(),
        rss_base_bytes=base_rss,
        rss_tree_bytes=seen["rss"],
        uss_base_bytes=base_uss,
        uss_tree_bytes=seen["uss"] or None,
        rss_per_worker_bytes=(seen["rss"] - base_rss) // extra_workers,
        uss_per_worker_bytes=(seen["uss"] - base_uss) // extra_workers if seen["uss"] and base_uss else None,
        processes=seen["processes"],
        threads=seen["threads"],
        workers_started=started,
    )
    benchmark.extra_info.update(info)
