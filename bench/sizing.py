"""Task sizes for this run, chosen once before the first case (bench/plan.py says the rules).

Calibration runs each task in the suite's own thread, as the serial case does: with the allocator
policy already applied (bench/conftest.py applies it first) and BLAS capped as for serial. A
CPU-bound task is timed by the process's CPU clock, not the wall clock: under a CPU quota
(``cpus: 0.5``) or beside a busy neighbour a task's wall time stretches while its work does not,
so the same host gives the same sizes in every container of the matrix and on a busy day. An I/O
task is timed by the wall clock (its time is the wait).

**Calibration is kept.** A host's speed moves between runs: measured on a 2-vCPU AMD EPYC guest,
each vCPU switches between two speeds 1.5× apart every 0.1-0.5 s, so three calibrations in a row
picked three sizes for five of eight workloads (cpu_python 25000, 22272, 25000; zlib 262144, 220160,
441344), and the runs' speedups then compared different work. So a calibration is remembered in
pytest's cache (``.pytest_cache``, keyed by the machine, Python build, NumPy, the allocator policy,
BLAS threads, profile and each task function's code), and the next run on the same machine keeps a
workload's size while one warm task there still takes within :data:`KEEP_BAND` of the target; only a
workload outside it is calibrated anew. ``--sizes fresh`` calibrates everything anew (and
remembers that); ``-p no:cacheprovider`` keeps nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
import types
from collections.abc import Callable
from typing import Any

from bench import plan, stopping
from bench.config import SuiteConfig, as_saved, sized_workloads
from bench.executors import blas_limit_here
from bench.timeouts import CaseTimeout, case_deadline
from common.plan import TARGET_TASK_S
from workloads import get


def clock_for(kind: str) -> Callable[[], float]:
    """The clock a task of ``kind`` is sized by: CPU time for CPU-bound kinds, wall time for I/O."""
    return time.perf_counter if kind == "io" else time.process_time


#: How far from the target a kept size's warm task may run before the workload is calibrated anew:
#: an octave either way. Narrower, the host's own speed states (1.5× apart, module doc) would
#: recalibrate on a phase alone; an octave keeps a pool's dispatch cost within twice its planned
#: share of a task (bench/plan.py: at most 1.4 % at half the default target).
KEEP_BAND = (0.5, 2.0)


def size_workloads(
    suite: SuiteConfig, clock: Callable[[], float] | None = None, remembered: dict[str, Any] | None = None
) -> dict[str, plan.Sizing]:
    """Every workload this run times in batches, with its task parameter and one serial task's time.

    ``calibrated``: workloads whose Size names a scale keep their ``remembered`` size (this
    machine's last calibration, :func:`remembered_key`) while it fits :data:`KEEP_BAND`, else are
    calibrated (plan.calibrate); ``fresh``: calibrated whatever was remembered; the others (waits,
    fixed files) keep the registry's size; ``fixed``: every size as the registry has it; ``from``:
    the sizes ``--sizes-from`` read. ``clock``: one clock for every workload (a test's scripted
    clock); default :func:`clock_for` its kind. ``remembered`` is updated with what was calibrated.
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
            elif suite.sizes_mode not in ("calibrated", "fresh") or size.scale is None:  # the registry's
                out[name] = plan.Sizing(size.param, "fixed", None, target, 0)
            else:
                clock = clock_for(work.kind) if fixed_clock is None else fixed_clock
                kept = None
                if remembered is not None and suite.sizes_mode == "calibrated":
                    kept = _kept(suite, name, remembered.get(name), clock, target)
                out[name] = kept or _calibrated(suite, name, size, clock, target)
                if remembered is not None and out[name].method in ("calibrated", "kept"):
                    remembered[name] = {"param": out[name].param, "code": code_digest(name)}
    return out


def code_digest(name: str) -> str:
    """A digest of a workload's task function's code: a changed function is calibrated anew.

    Built from the code's own fields, not ``marshal.dumps``, whose output depends on reference
    counts (it marks objects referenced more than once) and so changed from one run to the next.
    """
    func = get(name).func
    code = getattr(func, "__code__", None)
    raw = _fingerprint(code) if code is not None else repr(func)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _fingerprint(value: Any) -> str:
    """A text that is the same for equal code in any process: bytecode, names and constants, nested code too."""
    if isinstance(value, types.CodeType):
        fields = (value.co_code.hex(), value.co_names, value.co_varnames, value.co_freevars, value.co_cellvars)
        return f"code({fields!r}, {[_fingerprint(c) for c in value.co_consts]})"
    if isinstance(value, frozenset | set):  # iteration order follows hashes, which change between processes
        return f"frozenset({sorted(_fingerprint(v) for v in value)})"
    if isinstance(value, tuple):
        return f"({', '.join(_fingerprint(v) for v in value)})"
    return repr(value)


def remembered_key(suite: SuiteConfig, numpy_version: str | None) -> str:
    """Where this machine's calibration is remembered in pytest's cache: what a size depends on besides the code."""
    parts = (
        platform.node(),
        platform.machine(),
        _cpu_model(),
        platform.python_implementation(),
        platform.python_version(),
        numpy_version or "-",
        suite.profile,
        suite.malloc,
        str(suite.blas_threads),
    )
    return "poolbench/sizes/" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def _kept(suite: SuiteConfig, name: str, entry: Any, clock: Callable[[], float], target: float) -> plan.Sizing | None:
    """The remembered size of ``name`` if it is for this code and a warm task there still fits KEEP_BAND."""
    if not isinstance(entry, dict) or entry.get("code") != code_digest(name) or "param" not in entry:
        return None
    param = as_saved(entry["param"])
    try:
        with case_deadline(suite.case_timeout):
            took = plan.task_seconds(get(name).func, param, clock)
    except Exception:  # the task misbehaves now (a timeout too): calibrate, which says what happened
        return None
    if not KEEP_BAND[0] <= took / target <= KEEP_BAND[1]:
        return None
    return plan.Sizing(param, "kept", took, target, 1, _clock_name(clock))


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
