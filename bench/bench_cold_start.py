"""Cold start: from creating a pool to the first result, per executor and start method.

The first task is ``os.getpid`` (a builtin, so no module of ours is imported in the worker) and the
pool has no initializer: this is the start-up a user's own pool pays. Shutting the pool down is
outside the timed region, and so outside the CPU time, throttling and peak RSS recorded (which
cover the timed rounds only, not the warm-up round).
"""

from __future__ import annotations

import os

from bench.backend import in_process
from bench.executors import make_executor
from bench.harness import case_info, run_pool_starts
from bench.measure import WrongAnswer

CASE = "cold_start"


def test_cold_start(benchmark, case, suite):
    benchmark.group = "cold_start"
    answers, meter = run_pool_starts(
        benchmark,
        suite,
        make=lambda: make_executor(case.executor, case.workers, case.variant, blas_threads=None),
        first=lambda pool: pool.submit(os.getpid).result(),
        rounds=suite.settings["cold_rounds"],
        warmup_rounds=1,
    )
    parent = os.getpid()
    for pid in answers:
        in_parent = pid == parent
        if in_parent != in_process(case.executor):
            raise WrongAnswer(f"{case.id}: first task ran in pid {pid}, parent is {parent}")
    info = case_info(case, suite)
    info.update(tasks=1, task_param="os.getpid", **meter.as_info())
    benchmark.extra_info.update(info)
