"""A workload that can be made slower on purpose, for the gate's evidence (evidence/measure.sh, topic gate).

``POOLBENCH_SLOWDOWN=1.3`` makes every task do 1.3× the work, in the serial baseline and in every
pool alike: what a change that made the code itself slower looks like. Speedups do not move; the
gate's work index (same machine) must catch it. The slowed run takes the base run's task size
(``--sizes-from``), as a gate's current side must: calibrated afresh, it would be sized back down
to the target time and the slowdown would vanish.
"""

from __future__ import annotations

import os

from workloads import Size, Workload
from workloads.cpu_bound import count_primes
from workloads.registry import primes_below

#: Repetitions of the inner task at a slowdown of 1: ten, so that 1.3 is exactly 13.
REPEATS = 10


def _repeats() -> int:
    return round(REPEATS * float(os.environ.get("POOLBENCH_SLOWDOWN", "1")))


def slowable_primes(limit: int) -> int:
    """Count the primes below ``limit`` by trial division, ``10 × POOLBENCH_SLOWDOWN`` times; their sum."""
    return sum(count_primes(limit) for _ in range(_repeats()))


def check_slowable(limit: int, result: object) -> bool:
    """The same count from a sieve, times the repetitions this process was told to do."""
    return result == primes_below(limit) * _repeats()


WORKLOADS = [
    Workload(
        name="slowable",
        func=slowable_primes,
        kind="cpu-python",
        gil="holds",
        sizes={"quick": Size(1_200, 8, 1.5), "default": Size(4_000, 16, 1.5), "full": Size(6_000, 32, 1.5)},
        check=check_slowable,
        models="pure-Python work that POOLBENCH_SLOWDOWN makes slower on purpose (the gate's evidence)",
    ),
]
