"""Memory: the process tree's resident and unique memory with every worker of the pool started.

Each round builds a pool, starts every worker with one task each (a worker that has run one of the
suite's tasks has imported NumPy, as a numeric application's worker would), then reads the tree's
memory between rounds, outside the timed region. The time recorded is that of the start itself.
"""

from __future__ import annotations

import psutil

from bench.executors import make_executor, terminate, warm_up
from bench.harness import case_info
from bench.measure import (
    PeakRss,
    WrongAnswer,
    throttling,
    tree_cpu_seconds,
    tree_rss_bytes,
    tree_size,
    tree_uss_bytes,
)

CASE = "memory"


def test_memory(benchmark, case, suite):
    me = psutil.Process()
    base_rss = tree_rss_bytes(me)
    base_uss = tree_uss_bytes(me)
    pools = []
    seen = {"rss": 0, "uss": 0, "processes": 0, "threads": 0, "workers": 0}

    def target():
        pool = make_executor(case.executor, case.workers, case.start_method, suite.blas_threads, suite.mmap_threshold)
        pools.append(pool)
        seen["workers"] = max(seen["workers"], len(warm_up(pool, case.workers)))

    def teardown():
        seen["rss"] = max(seen["rss"], tree_rss_bytes(me))
        seen["uss"] = max(seen["uss"], tree_uss_bytes(me) or 0)
        seen["processes"] = max(seen["processes"], tree_size(me))
        seen["threads"] = max(seen["threads"], me.num_threads())
        while pools:
            pools[-1].shutdown(wait=True)
            pools.pop()  # only once shut down: an interrupted shutdown leaves it to terminate()

    benchmark.group = f"memory {case.executor}"
    cpu_start = tree_cpu_seconds(me)
    try:
        with PeakRss() as rss, throttling(suite.cpu.cgroup) as throttled:
            benchmark.pedantic(target, teardown=teardown, rounds=suite.settings["memory_rounds"], warmup_rounds=0)
    except BaseException:
        while pools:
            terminate(pools.pop())
        raise
    cpu = tree_cpu_seconds(me) - cpu_start

    if case.executor == "process" and seen["workers"] != case.workers:
        raise WrongAnswer(f"{case.id}: {seen['workers']} of {case.workers} workers answered the warm-up")
    extra_workers = max(case.workers, 1)
    info = case_info(case, suite)
    info.update(
        tasks=case.workers,
        task_param="whoami",
        rss_peak_bytes=rss.peak,
        cpu_time_s=round(cpu, 6),
        **throttled,
        rss_base_bytes=base_rss,
        rss_tree_bytes=seen["rss"],
        uss_base_bytes=base_uss,
        uss_tree_bytes=seen["uss"] or None,
        rss_per_worker_bytes=(seen["rss"] - base_rss) // extra_workers,
        uss_per_worker_bytes=(seen["uss"] - base_uss) // extra_workers if seen["uss"] and base_uss else None,
        processes=seen["processes"],
        threads=seen["threads"],
        workers_started=seen["workers"],
    )
    benchmark.extra_info.update(info)
