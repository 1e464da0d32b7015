"""A pytest plugin that injects faults into a real `pytest bench` run, for the suite's own tests.

Loaded with ``-p tests.fault_plugin``; ``POOLBENCH_TEST_FAULT`` says what to break, as
``KIND:WORKLOAD`` (several separated by commas):

* ``wrong:NAME`` — the workload's check rejects every answer (a fast wrong answer);
* ``hang:NAME`` — the workload's tasks never return;
* ``hog:NAME`` — the workload's tasks allocate 1 GiB each (to run over a memory limit).
"""

from __future__ import annotations

import functools
import os

import workloads
from workloads import faults


def pytest_configure(config) -> None:
    for fault in filter(None, os.environ.get("POOLBENCH_TEST_FAULT", "").split(",")):
        kind, _, name = fault.partition(":")
        record = workloads.get(name)
        # Records are frozen on purpose; only a test may reach past that.
        if kind == "wrong":
            object.__setattr__(record, "check", lambda param, result: False)
        elif kind == "hang":
            object.__setattr__(record, "func", faults.hang_forever)
        elif kind == "hog":
            object.__setattr__(record, "func", functools.partial(faults.hog, 1024))
        else:
            raise ValueError(f"POOLBENCH_TEST_FAULT: unknown fault {fault!r}")
