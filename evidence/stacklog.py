"""``count_primes`` that writes each task's own CPU time, for the stack evidence (evidence/measure.sh, topic stack).

Each call appends one line to ``$STACKLOG_DIR/<pid>.txt``: which thread ran it (the suite's own
thread, a pool's thread, or a worker process's main thread) and the CPU time the calling thread
spent in ``count_primes`` (``time.thread_time``, around the call only). It is timing code of its
own, inside the task, sharing nothing with the suite's clocks: per run, the pool's threads' CPU per
task against the suite's thread's says whether the same code ran slower on one side, whatever the
suite's reference made of it. Without ``STACKLOG_DIR`` it writes nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

from workloads import Size, Workload
from workloads.cpu_bound import count_primes
from workloads.registry import primes_below


def stacklog_primes(limit: int) -> int:
    """Count the primes below ``limit`` by trial division; log the calling thread's CPU time for it."""
    started = time.thread_time()
    answer = count_primes(limit)
    spent = time.thread_time() - started
    folder = os.environ.get("STACKLOG_DIR")
    if folder:
        if threading.current_thread() is not threading.main_thread():
            side = "thread"
        else:
            side = "suite" if multiprocessing.parent_process() is None else "process"
        with open(os.path.join(folder, f"{os.getpid()}.txt"), "a", encoding="ascii") as f:
            f.write(f"{side} {spent:.7f}\n")
    return answer


def _check(limit: int, result: object) -> bool:
    return result == primes_below(limit)


WORKLOADS = [
    Workload(
        name="stacklog",
        func=stacklog_primes,
        kind="cpu-python",
        gil="holds",
        sizes={p: Size(n, tasks, 1.5) for p, (n, tasks) in {"quick": (8_000, 8), "default": (25_000, 16)}.items()}
        | {"full": Size(50_000, 32, 1.5)},
        check=_check,
        models="count_primes, each task's own CPU time written down (evidence only)",
    ),
]


def summary(folder: str) -> dict[str, object]:
    """One run's logs: the median CPU per task of each side, and each pool side's against the suite's thread."""
    import statistics  # noqa: PLC0415

    spent: dict[str, list[float]] = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="ascii") as f:
            for line in f:
                side, seconds = line.split()
                spent.setdefault(side, []).append(float(seconds))
    medians = {side: statistics.median(v) for side, v in spent.items()}
    suite = medians["suite"]
    return {
        "tasks": {side: len(v) for side, v in spent.items()},
        "suite_ms": round(suite * 1e3, 3),
        "ratio": {side: round(m / suite, 4) for side, m in medians.items() if side != "suite"},
    }


if __name__ == "__main__":  # python evidence/stacklog.py FOLDER MODE RUN: one JSON line for that run
    import json
    import sys

    folder, mode, run = sys.argv[1:4]
    print(json.dumps({"mode": mode, "run": int(run), **summary(folder)}))
