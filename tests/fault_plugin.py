"""A pytest plugin that injects faults into a real `pytest bench` run, for the suite's own tests.

Loaded with ``-p tests.fault_plugin``; ``POOLBENCH_TEST_FAULT`` says what to break:

* ``wrong:NAME`` — workload NAME's check rejects every answer (a fast wrong answer).
"""

from __future__ import annotations

import os

import workloads


def pytest_configure(config) -> None:
    fault = os.environ.get("POOLBENCH_TEST_FAULT", "")
    kind, _, name = fault.partition(":")
    if kind == "wrong":
        # Records are frozen on purpose; only a test may reach past that.
        object.__setattr__(workloads.get(name), "check", lambda param, result: False)
