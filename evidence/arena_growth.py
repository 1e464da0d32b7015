"""Where do a two-thread pool's steady-state page faults come from under ``--malloc neutral``?

    python evidence/arena_growth.py [--cases 4]

Since schema 11 the allocator block's fault target (docs/guide.md, under its block) misses for
threads. This mimics the suite's cases with a plain ``ThreadPoolExecutor(2)``: per case, the heap
given back (``malloc_trim(0)``, as the suite does before every case), a new pool, a warm-up of one
``ufunc_chain`` task a worker, then three timed rounds of 12 tasks, each after a warm batch of two;
it prints how many warm-up tasks each thread ran and the process's minor faults in each timed round.
The allocator is the suite's (bench/allocator.py ``apply("neutral")``: huge pages off); faults are
counted with ``getrusage``, no timing. The size is the suite's calibration on this machine.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from bench import allocator  # noqa: E402  (the repository, whatever the working directory)
from workloads import cpu_bound  # noqa: E402

SIZE = 1261345
ran = collections.Counter()


def task(n: int) -> float:
    ran[threading.get_ident()] += 1
    return cpu_bound.ufunc_chain(n)


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=4)
    args = parser.parse_args()
    allocator.apply("neutral")
    for case in range(args.cases):
        allocator.fresh_heap()
        with ThreadPoolExecutor(2) as pool:
            ran.clear()
            list(pool.map(task, [SIZE] * 2))
            warm = sorted(ran.values())
            rounds = []
            for _ in range(3):
                list(pool.map(task, [SIZE] * 2))
                before = faults()
                list(pool.map(task, [SIZE] * 12))
                rounds.append(faults() - before)
        print(f"case {case}: warm-up tasks per thread {warm}, faults in each timed round {rounds}", flush=True)


if __name__ == "__main__":
    main()
