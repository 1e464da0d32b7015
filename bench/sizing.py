"""Task sizes for this run, chosen once before the first case (bench/plan.py says the rules).

Calibration runs each task in the suite's own thread, as the serial case does: with the allocator
policy already applied (bench/conftest.py applies it first) and BLAS capped as for serial. A
CPU-bound task is timed by the process's CPU clock, not the wall clock: under a CPU quota
(``cpus: 0.5``) or beside a busy neighbour a task's wall time stretches while its work does not,
so the same host gives the same sizes in every container of the matrix and on a busy day. An I/O
task is timed by the wall clock (its time is the wait).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench import plan, stopping
from bench.config import SuiteConfig, sized_workloads
from bench.executors import blas_limit_here
from bench.timeouts import CaseTimeout, case_deadline
from common.plan import TARGET_TASK_S
from workloads import get


def clock_for(kind: str) -> Callable[[], float]:
    """The clock a task of ``kind`` is sized by: CPU time for CPU-bound kinds, wall time for I/O."""
    return time.perf_counter if kind == "io" else time.process_time


def size_workloads(suite: SuiteConfig, clock: Callable[[], float] | None = None) -> dict[str, plan.Sizing]:
    """Every workload this run times in batches, with its task parameter and one serial task's time.

    ``calibrated``: workloads whose Size names a scale are calibrated (plan.calibrate), the others
    (waits, fixed files) keep their size; ``fixed``: every size as the registry has it; ``from``:
    the sizes ``--sizes-from`` read. Only calibration runs a task here. ``clock``: one
    clock for every workload (a test's scripted clock); default :func:`clock_for` its kind.
    """
    target = TARGET_TASK_S[suite.profile]
    fixed_clock = clock
    out: dict[str, plan.Sizing] = {}
    with blas_limit_here("serial", suite.blas_threads):
        for name in sized_workloads(suite):
            stopping.checkpoint()  # Ctrl-C during calibration ends the run before any case
            work = get(name)
            size = work.size(suite.profile)
            given = suite.sizes.get(name) if suite.sizes else None
            if given is not None:  # --sizes-from: as saved, nothing run here
                out[name] = given
            elif suite.sizes_mode != "calibrated" or size.scale is None:  # the registry's, nothing run here
                out[name] = plan.Sizing(size.param, "fixed", None, target, 0)
            else:
                clock = clock_for(work.kind) if fixed_clock is None else fixed_clock
                out[name] = _calibrated(suite, name, size, clock, target)
    return out


def _calibrated(suite: SuiteConfig, name: str, size: Any, clock: Callable[[], float], target: float) -> plan.Sizing:
    """One workload's calibration, bounded by --case-timeout; a task that hangs or raises keeps its size.

    Its cases then run at the registry's size and fail there the way they always would (a timeout,
    the task's own error), with the reason recorded as the sizing's ``method``.
    """
    work = get(name)
    try:
        with case_deadline(suite.case_timeout):
            sized = plan.calibrate(work.func, size.param, size.scale, target, clock)
            return dataclasses.replace(sized, clock=_clock_name(clock))
    except CaseTimeout:
        why = f"fixed: calibration ran past --case-timeout {suite.case_timeout:g} s"
    except Exception as exc:  # the user's task raised: its cases will show the error
        why = f"fixed: calibration stopped, the task raised {type(exc).__name__}"
    return plan.Sizing(size.param, why, None, target, 0)


def _clock_name(clock: Callable[[], float]) -> str:
    return {time.process_time: "cpu", time.perf_counter: "wall"}.get(clock, "scripted")
