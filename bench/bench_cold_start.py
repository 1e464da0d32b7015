"""Cold start: from creating a pool to the first result, per executor and start method.

The first task is ``os.getpid`` (a builtin, so no module of ours is imported in the worker) and the
pool has no initializer: this is the start-up a user's own pool pays. Shutting the pool down is
outside the timed region.
"""

from __future__ import annotations

import os

from bench.executors import make_executor, terminate
from bench.harness import case_info
from bench.measure import PeakRss, WrongAnswer, throttling, tree_cpu_seconds

CASE = "cold_start"


def test_cold_start(benchmark, case, suite):
    pools = []
    answers = []

    def target():
        pool = make_executor(case.executor, case.workers, case.start_method, blas_threads=None)
        pools.append(pool)
        answers.append(pool.submit(os.getpid).result())

    def teardown():
        while pools:
            pools[-1].shutdown(wait=True)
            pools.pop()  # only once shut down: an interrupted shutdown leaves it to terminate()

    benchmark.group = "cold_start"
    cpu_start = tree_cpu_seconds()
    try:
        with PeakRss() as rss, throttling(suite.cpu.cgroup) as throttled:
            benchmark.pedantic(target, teardown=teardown, rounds=suite.settings["cold_rounds"], warmup_rounds=1)
        teardown()
    except BaseException:
        while pools:
            terminate(pools.pop())
        raise
    cpu = tree_cpu_seconds() - cpu_start

    parent = os.getpid()
    for pid in answers:
        in_parent = pid == parent
        if in_parent != (case.executor != "process"):
            raise WrongAnswer(f"{case.id}: first task ran in pid {pid}, parent is {parent}")
    info = case_info(case, suite)
    info.update(
        tasks=1,
        task_param="os.getpid",
        rss_peak_bytes=rss.peak,
        cpu_time_s=round(cpu, 6),  # all rounds, warm-up and shutdowns included
        **throttled,
    )
    benchmark.extra_info.update(info)
