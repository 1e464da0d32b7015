"""Throughput scaling: k tasks per busy CPU on a warm pool, at each worker count (common/plan.py).

Every round is bracketed by warm serial probes in the suite's thread; the speedup is the pool's
throughput over theirs, per pass (common/reference.py), the same figure in the terminal, the report
and the gate.
"""

from __future__ import annotations

from bench.harness import case_pool, run_workload

CASE = "scaling"


def test_scaling(benchmark, case, suite):
    benchmark.group = f"scaling {case.workload}"
    with case_pool(case, suite) as pool:
        run_workload(benchmark, suite, case, pool)
