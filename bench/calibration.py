"""Task sizes for this run: the ladder, the calibration, and what is kept between runs.

At start, each workload's task parameter is moved along a ladder of steps of 2^(1/8) (9 %) of
work until one serial task takes the profile's target time (common/plan.py ``TARGET_TASK_S``),
measured outside any timed round (:func:`calibrate`; timeit's autorange is the model). The ladder
is anchored at the registry's fixed size, so two calibrations on one machine usually land on the
same step; ``--sizes-from RESULT`` reuses a run's sizes exactly, ``--sizes fixed`` keeps the
registry's. The plan's other rules (batch, sweep, passes) are in common/plan.py.

Calibration runs each task in the suite's own thread, as the serial case does: with the allocator
policy already applied (bench/conftest.py applies it first) and BLAS capped as for serial. A
CPU-bound task is timed by a CPU clock, not the wall clock: under a CPU quota
(``cpus: 0.5``) or beside a busy neighbour a task's wall time stretches while its work does not,
so the same host gives the same sizes in every container of the matrix and on a busy day. The
clock is the calling thread's (``time.thread_time``), where the task runs whole with BLAS at one
thread (the default), not the process's: capping BLAS at session start restarts OpenBLAS's helper
thread, which spins on a CPU for about 0.1 s, and the process's clock counted that spin into the
first workload measured. Measured here (``python evidence/calibration_clock.py``: ``count_primes``
right after the cap, eight fresh processes): its first three tasks read 33.3-39.7 ms of process CPU
against 17.4-19.7 ms of the thread's (the wall clock within 0.8 ms of that), so ``cpu_python``'s kept
size was checked at about twice the target, and a run whose check read past twice recalibrated it
(three runs in a row: 31498, 29730, 29730, so run 1's cases were other work).
With more BLAS threads a task's CPU is spread over them: then the process's clock. An I/O task is
timed by the wall clock (its time is the wait).

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
import math
import platform
import time
import types
from collections.abc import Callable
from typing import Any

from bench import stopping
from bench.config import SuiteConfig, as_saved, sized_workloads
from bench.executors import blas_limit_here
from bench.timeouts import CaseTimeout, case_deadline
from common.plan import TARGET_TASK_S, Sizing
from workloads import get

#: A calibration stops once a measured task is within these factors of the target.
BAND = (0.87, 1.15)
#: Steps of the ladder per doubling of the work.
STEPS_PER_OCTAVE = 8
#: Most measurements per workload; the closest one is kept if none falls in :data:`BAND`.
MAX_TRIES = 6
#: Timed calls per measurement (after one untimed warm call); their median is the task time.
CALLS = 3


def scaled(base: Any, scale: Any, step: int) -> Any:
    """The parameter ``step`` ladder steps from ``base``: the work times 2^(step / 8).

    ``scale`` says how the parameter relates to the work: a number ``e`` (work grows as
    ``param ** e``; whole numbers stay whole), or a function ``(base, factor) -> param``.
    """
    factor = 2.0 ** (step / STEPS_PER_OCTAVE)
    if callable(scale):
        return scale(base, factor)
    value = base * factor ** (1.0 / float(scale))
    return max(1, round(value)) if isinstance(base, int) else value


def task_seconds(func: Callable[[Any], Any], param: Any, clock: Callable[[], float] = time.perf_counter) -> float:
    """One task's time: one untimed warm call, then the median of :data:`CALLS` timed calls."""
    func(param)
    times = []
    for _ in range(CALLS):
        started = clock()
        func(param)
        times.append(clock() - started)
    return sorted(times)[len(times) // 2]


def calibrate(
    func: Callable[[Any], Any],
    base: Any,
    scale: Any,
    target_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> Sizing:
    """Walk the ladder from ``base`` until one task of ``func`` takes about ``target_s`` (module doc)."""
    step = 0
    tried: dict[int, float] = {}
    while len(tried) < MAX_TRIES:
        took = task_seconds(func, scaled(base, scale, step), clock)
        tried[step] = took
        ratio = took / target_s
        if BAND[0] <= ratio <= BAND[1] or took <= 0:
            break
        nxt = step + round(STEPS_PER_OCTAVE * math.log2(1.0 / ratio))
        nxt = max(-10 * STEPS_PER_OCTAVE, min(10 * STEPS_PER_OCTAVE, nxt))
        if nxt in tried:  # between two steps: take the closer
            break
        if scaled(base, scale, nxt) == scaled(base, scale, step):  # a whole-number parameter that cannot move
            break
        step = nxt
    best = min(tried, key=lambda s: abs(math.log(max(tried[s], 1e-12) / target_s)))
    return Sizing(scaled(base, scale, best), "calibrated", tried[best], target_s, len(tried))


def size_line(sizes: dict[str, Sizing], suite: Any) -> str | None:
    """The line a run says at start about its task sizes; None when it calibrated nothing and kept the rest."""
    if not sizes:
        return None
    if suite.sizes_mode == "from":
        return f"task sizes reused from {suite.sizes_from}: " + ", ".join(f"{n} {s.param!r}" for n, s in sizes.items())
    if suite.sizes_mode == "fixed":
        return "task sizes fixed (--sizes fixed): " + ", ".join(f"{n} {s.param!r}" for n, s in sizes.items())
    done = {n: s for n, s in sizes.items() if s.method == "calibrated"}
    kept = {n: s for n, s in sizes.items() if s.method == "kept"}
    stopped = {n: s for n, s in sizes.items() if s.method.startswith("fixed:")}
    if not done and not stopped and not kept:
        return None
    parts = [f"{n} {s.param!r} ({s.task_s * 1e3:.1f} ms)" for n, s in done.items() if s.task_s is not None]
    parts += [f"{n} {s.param!r} ({s.method})" for n, s in stopped.items()]
    line = f"task sizes calibrated to {TARGET_TASK_S[suite.profile] * 1e3:g} ms per serial task: " + ", ".join(parts)
    if not kept:
        return line
    held = ", ".join(f"{n} {s.param!r} ({s.task_s * 1e3:.1f} ms)" for n, s in kept.items() if s.task_s is not None)
    held = f"task sizes kept from this machine's last calibration (--sizes fresh calibrates anew): {held}"
    return f"{line}; {held}" if parts else held


def clock_for(kind: str, blas_threads: int = 1) -> Callable[[], float]:
    """The clock a task of ``kind`` is sized by (module doc): wall time for I/O; for CPU-bound kinds the
    calling thread's CPU time, or the process's when BLAS may spread a task over more threads."""
    if kind == "io":
        return time.perf_counter
    return time.thread_time if blas_threads == 1 else time.process_time


#: How far from the target a kept size's warm task may run before the workload is calibrated anew:
#: an octave either way. Narrower, the host's own speed states (1.5× apart, module doc) would
#: recalibrate on a phase alone; an octave keeps a pool's dispatch cost within twice its planned
#: share of a task (above: at most 1.4 % at half the default target).
KEEP_BAND = (0.5, 2.0)


def size_workloads(
    suite: SuiteConfig, clock: Callable[[], float] | None = None, remembered: dict[str, Any] | None = None
) -> dict[str, Sizing]:
    """Every workload this run times in batches, with its task parameter and one serial task's time.

    ``calibrated``: workloads whose Size names a scale keep their ``remembered`` size (this
    machine's last calibration, :func:`remembered_key`) while it fits :data:`KEEP_BAND`, else are
    calibrated (calibrate); ``fresh``: calibrated whatever was remembered; the others (waits,
    fixed files) keep the registry's size; ``fixed``: every size as the registry has it; ``from``:
    the sizes ``--sizes-from`` read. ``clock``: one clock for every workload (a test's scripted
    clock); default :func:`clock_for` its kind. ``remembered`` is updated with what was calibrated.
    """
    target = TARGET_TASK_S[suite.profile]
    fixed_clock = clock
    out: dict[str, Sizing] = {}
    with blas_limit_here("serial", suite.blas_threads):
        for name in sized_workloads(suite):
            stopping.checkpoint()  # Ctrl-C during calibration ends the run before any case
            work = get(name)
            size = work.size(suite.profile)
            given = suite.sizes.get(name) if suite.sizes else None
            if given is not None:  # --sizes-from: as saved, nothing run here
                out[name] = given
            elif suite.sizes_mode not in ("calibrated", "fresh") or size.scale is None:  # the registry's
                out[name] = Sizing(size.param, "fixed", None, target, 0)
            else:
                clock = clock_for(work.kind, suite.blas_threads) if fixed_clock is None else fixed_clock
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


def _kept(suite: SuiteConfig, name: str, entry: Any, clock: Callable[[], float], target: float) -> Sizing | None:
    """The remembered size of ``name`` if it is for this code and a warm task there still fits KEEP_BAND."""
    if not isinstance(entry, dict) or entry.get("code") != code_digest(name) or "param" not in entry:
        return None
    param = as_saved(entry["param"])
    try:
        with case_deadline(suite.case_timeout):
            took = task_seconds(get(name).func, param, clock)
    except Exception:  # the task misbehaves now (a timeout too): calibrate, which says what happened
        return None
    if not KEEP_BAND[0] <= took / target <= KEEP_BAND[1]:
        return None
    return Sizing(param, "kept", took, target, 1, _clock_name(clock))


def _calibrated(suite: SuiteConfig, name: str, size: Any, clock: Callable[[], float], target: float) -> Sizing:
    """One workload's calibration, bounded by --case-timeout; a task that hangs or raises keeps its size.

    Its cases then run at the registry's size and fail there the way they always would (a timeout,
    the task's own error), with the reason recorded as the sizing's ``method``.
    """
    work = get(name)
    try:
        with case_deadline(suite.case_timeout):
            sized = calibrate(work.func, size.param, size.scale, target, clock)
            return dataclasses.replace(sized, clock=_clock_name(clock))
    except CaseTimeout:
        why = f"fixed: calibration ran past --case-timeout {suite.case_timeout:g} s"
    except Exception as exc:  # the user's task raised: its cases will show the error
        why = f"fixed: calibration stopped, the task raised {type(exc).__name__}"
    return Sizing(size.param, why, None, target, 0)


def _clock_name(clock: Callable[[], float]) -> str:
    return {time.thread_time: "cpu", time.process_time: "cpu", time.perf_counter: "wall"}.get(clock, "scripted")
