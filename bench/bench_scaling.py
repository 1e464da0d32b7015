"""Strong scaling: a batch of fixed total work on a warm pool, at each worker count.

Speedup = serial time / pool time for the same batch in the same run (scripts.plot, scripts.report).
"""

from __future__ import annotations

from bench.harness import case_pool, run_workload

CASE = "scaling"


def test_scaling(benchmark, case, suite):
    benchmark.group = f"scaling {case.workload}"
    with case_pool(case, suite) as pool:
        run_workload(benchmark, suite, case, pool)
