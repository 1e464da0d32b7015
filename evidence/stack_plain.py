"""The plain program run between the diagnosis's suite runs (docs/guide.md, "Against the physical limits").

The suite's thread-pool pass with nothing of the suite's: per pass a new ``ThreadPoolExecutor(1)``, one
untimed task, then three times: one untimed task through the pool, six timed, and a probe in the main
thread pinned to the CPU the round ran on (one untimed task, one timed). Appends per round: time, pass,
round, CPU, the probe's CPU per task, the round's median CPU per task, and their ratio.

    python evidence/stack_plain.py OUT.txt PARAM PASSES
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workloads.cpu_bound import count_primes


def cpu_of() -> int:
    with open("/proc/thread-self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


def task(n: int) -> tuple[float, int]:
    started = time.thread_time()
    count_primes(n)
    return time.thread_time() - started, cpu_of()


def main() -> None:
    out, n, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    allowed = sorted(os.sched_getaffinity(0))
    with open(out, "a") as log:
        for p in range(passes):
            with ThreadPoolExecutor(1) as pool:
                list(pool.map(task, [n]))
                for r in range(3):
                    list(pool.map(task, [n]))
                    res = list(pool.map(task, [n] * 6))
                    cpus = [c for _, c in res]
                    where = max(set(cpus), key=cpus.count)
                    os.sched_setaffinity(0, {where})
                    task(n)
                    probe, _ = task(n)
                    os.sched_setaffinity(0, allowed)
                    worker = sorted(x for x, _ in res)[3]
                    log.write(f"{time.time():.3f} {p} {r} {where} {probe:.6f} {worker:.6f} {worker / probe:.3f}\n")


if __name__ == "__main__":
    main()
