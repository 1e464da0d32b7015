"""The sampling plan's rules, shared by the suite (which applies them) and the scripts (which model their cost).

docs/guide.md, "The sampling plan", states them for users:

* **Task size is calibrated to the host** (bench/calibration.py): one serial task takes the
  profile's :data:`TARGET_TASK_S`, CPU time for CPU-bound work, so a quota or a neighbour does not
  shrink it.
* **A batch is sized to the worker count** (:func:`batch_tasks`): ``k × W`` tasks up to W = C and
  ``W × max(1, floor(k × C / W))`` past it, ``k`` per busy CPU (the profile's ``tasks_per_cpu``).
  Every W up to C gets k tasks per worker (throughput scaling, as CPython's ftscalingbench sizes
  work by thread count), so each worker count's ideal is W exactly, with no uneven last wave, at any
  C; past C the batch holds at most k tasks per CPU and a whole number per worker (at least one). A
  round then costs at most about k task times at every W, whatever C: strong scaling's fixed batch
  made the one-worker round cost C times more on a big machine, and could not show a speedup above
  its own task count. Past C the batch rounds down, not up: at 4 × C, k = 6 would need 1.5 tasks a
  worker, and rounding up timed 16 tasks on 2 CPUs at W = 8 where W ≤ C timed 6 per CPU, the main
  job's costliest points (docs/guide.md, "The sampling plan", 2).
* **The sweep follows the machine** (:func:`sweep`): powers of two up to 4 × C, capped at
  :data:`SWEEP_CAP` workers, plus C itself. On 2 CPUs: 1, 2, 4, 8.
* **The serial reference is measured as the pool's tasks are** (common/reference.py): warm probes
  bracket every round, and every scaling point is measured once per pass (the profile's
  ``passes``), each on a fresh pool, so what moves a whole pass lands in the interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from common.reference import PROBE_TASKS, PROBE_WARM_TASKS, probes_per_pass

#: One serial task's target time per profile (seconds): long enough that a process pool's empty-task
#: dispatch at chunksize 1 (the dispatch case; docs/guide.md's plan block gives it as measured) is
#: about 1 % of a task in the default profile; quick trades twice that share for speed.
TARGET_TASK_S = {"quick": 0.010, "default": 0.020, "full": 0.040}
#: Most workers the default sweep reaches, whatever the CPU count (memory: a process worker costs
#: 10 to 30 MiB of its own; 256 of them fit a 64-CPU server many times over).
SWEEP_CAP = 256

#: What each profile changes besides the target task time. Every round of a scaling case is a
#: batch of ``tasks_per_cpu`` tasks per busy CPU (:func:`batch_tasks`), about that many task times
#: long at every worker count, and every round is timed: the pool is warmed first by one untimed
#: task per worker (a fresh worker's first task pays its imports and page faults), not by a whole
#: batch. ``rounds``: the timed rounds of a scaling (and default-workers) case per pass;
#: ``dispatch_rounds``, ``payload_rounds``, ``cold_rounds``, ``memory_rounds``: those of the other case
#: types; ``warmup_rounds``: the untimed first rounds of the dispatch and payload cases.
#: ``passes``: how many times every scaling point is measured, each time on a fresh pool, one pass
#: after the other; its intervals are built from the passes (common/reference.py), so every profile
#: has at least two: a single pass cannot see what moves a whole pass (its pool's placement on the
#: CPUs, a host phase), and its rounds alone gave intervals that a rerun missed. quick spends its
#: time on two passes of one round each (docs/guide.md's profiles block gives what that costs).
#: ``tasks_per_cpu`` stays 6 in default: at 4 a one-worker process pool's cost per round weighed half as
#: much again (docs/guide.md, "The sampling plan", 2); ``--tasks-per-cpu`` sets it for a run.
PROFILE_SETTINGS = MappingProxyType(
    {
        "quick": {
            "rounds": 1, "warmup_rounds": 1, "passes": 2, "tasks_per_cpu": 4,
            "cold_rounds": 3, "memory_rounds": 1, "payload_rounds": 3, "dispatch_rounds": 3,
        },
        "default": {
            "rounds": 3, "warmup_rounds": 1, "passes": 3, "tasks_per_cpu": 6,
            "cold_rounds": 7, "memory_rounds": 2, "payload_rounds": 5, "dispatch_rounds": 3,
        },
        "full": {
            "rounds": 6, "warmup_rounds": 1, "passes": 3, "tasks_per_cpu": 8,
            "cold_rounds": 15, "memory_rounds": 3, "payload_rounds": 10, "dispatch_rounds": 6,
        },
    }
)  # fmt: skip


def sweep(cpus: int, cap: int = SWEEP_CAP) -> tuple[int, ...]:
    """The default ``--workers``: powers of two up to ``min(4 × cpus, cap)``, and ``cpus`` itself."""
    cpus = max(int(cpus), 1)
    top = min(4 * cpus, cap)
    powers = [2**i for i in range(int(math.log2(top)) + 1)]
    return tuple(sorted({*powers, min(cpus, cap)}))


def batch_tasks(workers: int, cpus: int, per_cpu: int) -> int:
    """Tasks in one batch at ``workers`` workers on ``cpus`` effective CPUs (module doc)."""
    workers, cpus = max(int(workers), 1), max(int(cpus), 1)
    if workers <= cpus:
        return workers * per_cpu
    return workers * max(1, per_cpu * cpus // workers)


def main_job_seconds(
    cpus: int,
    *,
    task_s: dict[str, float],
    pools: int,
    rounds: int,
    passes: int,
    per_cpu: int,
    case_overhead_s: float,
    start_per_worker_s: float,
    other_s: float,
    memory_case_s: tuple[float, float] = (0.0, 0.0),
    memory_pools: int = 0,
    round_warm: bool = True,
) -> float:
    """The main job's cost on ``cpus`` CPUs under these rules (the guide's cost table).

    Per scaling case of a pool: a warm-up batch of one task per worker, ``rounds`` timed rounds of
    about ``k`` task times each (the batch rule: k tasks per busy CPU; for I/O, waits of ceil(N / W)
    tasks), each after a warm batch of one task per CPU it can use (one task time; ``round_warm``, schema 9),
    serial probes around them (one before the first round and one after each, each of its
    warm and timed tasks: common/reference.py), the pool's start (``start_per_worker_s`` per worker) and a
    fixed per-case cost; per workload a serial case of k tasks per round with the same probes; all of it ``passes``
    times. Memory cases start every swept pool size: ``memory_case_s`` = (a, b) costs a + b × W
    each, for ``memory_pools`` pools and a serial one. ``other_s``: the other case types and the
    session's own start and save, taken as measured (they run at fixed sizes). ``task_s``: each
    workload's serial task time; a negative value marks an I/O workload whose task time is a wait.
    """
    total = 0.0
    for signed in task_s.values():
        io, t = signed < 0, abs(signed)
        probes_s = probes_per_pass(rounds) * (PROBE_WARM_TASKS + PROBE_TASKS) * t
        for w in sweep(cpus):
            n = batch_tasks(w, cpus, per_cpu)
            round_s = math.ceil(n / w) * t if io else n * t / min(w, cpus)
            warm_s = t if io else w * t / min(w, cpus)
            case_s = warm_s + rounds * (round_s + (t if round_warm else 0.0)) + probes_s
            total += pools * (case_s + w * start_per_worker_s + case_overhead_s)
        total += (1 + rounds * per_cpu) * t + probes_s + case_overhead_s
    a, b = memory_case_s
    memory = a + sum(memory_pools * (a + b * w) for w in sweep(cpus))
    return passes * total + memory + other_s


@dataclass(frozen=True)
class Sizing:
    """The task parameter a workload runs at in this run, and where it came from."""

    param: Any
    method: str  # "calibrated", "kept" (this machine's last calibration), "fixed" or "from <file>"
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
