"""The sampling plan: how long a task is, how many tasks a batch holds, which worker counts are swept.

Four rules, each chosen so an answer carries to the next machine and the next run (docs/guide.md,
"The sampling plan"):

The rules other than calibration live in common/plan.py, which the scripts read too (the cost
model of the guide's cost table).

* **Task size is calibrated to the host.** At start, each workload's task parameter is moved along
  a ladder of steps of 2^(1/8) (9 %) of work until one serial task takes the profile's target time
  (:data:`TARGET_TASK_S`; CPU time for CPU-bound work, so a quota or a neighbour does not shrink
  it), measured outside any timed round with the allocator policy and the serial BLAS limit in
  force (:func:`calibrate`; timeit's autorange is the model). The ladder is
  anchored at the registry's fixed size, so two calibrations on one machine usually land on the
  same step; ``--sizes-from RESULT`` reuses a run's sizes exactly, ``--sizes fixed`` keeps the
  registry's.
* **A batch is sized to the worker count** (``common.plan.batch_tasks``): ``W × ceil(k × min(W,
  C) / W)`` tasks, ``k`` per busy CPU (the profile's ``tasks_per_cpu``). Every W up to C gets k
  tasks per worker (throughput scaling, as CPython's ftscalingbench sizes work by thread count),
  so each worker count's ideal is W exactly, with no uneven last wave, at any C; past C the
  batch keeps k tasks per CPU and stays a whole number per worker. A round then costs about k
  task times at every W, whatever C: strong scaling's fixed batch made the one-worker round cost
  C times more on a big machine, and could not show a speedup above its own task count.
* **The sweep follows the machine** (``common.plan.sweep``): powers of two up to 4 × C, capped
  at ``SWEEP_CAP`` workers, plus C itself. On 2 CPUs: 1, 2, 4, 8.
* **The serial reference is a bracket of probes** (common/reference.py): serial tasks in the
  suite's thread before the first timed round and after each, each probe warm (an untimed task
  first) and in a row; a round's reference is the mean of the probes beside it, so drift hits both;
  speedup = the median over rounds of serial time per task × tasks / round time. The
  passes (the profile's ``passes``) repeat every scaling point on fresh pools, one pass after
  another, so what moves a whole pass lands in the interval (scripts/metrics.py resamples
  passes, then rounds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.plan import TARGET_TASK_S

#: A calibration stops once a measured task is within these factors of the target.
BAND = (0.87, 1.15)
#: Steps of the ladder per doubling of the work.
STEPS_PER_OCTAVE = 8
#: Most measurements per workload; the closest one is kept if none falls in :data:`BAND`.
MAX_TRIES = 6
#: Timed calls per measurement (after one untimed warm call); their median is the task time.
CALLS = 3


@dataclass(frozen=True)
class Sizing:
    """The task parameter a workload runs at in this run, and where it came from."""

    param: Any
    method: str  # "calibrated", "kept" (this machine's last calibration, bench/sizing.py), "fixed" or "from <file>"
    task_s: float | None = None  # one serial task, measured at start (None: not measured)
    target_s: float | None = None
    tries: int = 0  # measurements the calibration took
    clock: str | None = None  # what task_s was read from: "cpu" (process CPU time) or "wall"

    def as_dict(self) -> dict[str, Any]:
        return {
            "param": self.param,
            "method": self.method,
            "task_s": None if self.task_s is None else round(self.task_s, 6),
            "target_s": self.target_s,
            "tries": self.tries,
            "clock": self.clock,
        }


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
