"""How fast is the main thread's n-th NumPy task after a pool round? (the suite times the 2nd: its probe)

    python evidence/probe_position.py [--seconds 30] [--executor thread|process]

A plain ``ThreadPoolExecutor(2)`` or ``ProcessPoolExecutor(2)`` (fork) runs a warm batch of 2 and a round
of 12 ``ufunc_chain`` tasks; then the main thread runs 8 tasks in a row, each timed alone with its own
clock; repeated for ``--seconds``, every other time with the main thread held on one CPU (alternating
CPUs, as the suite's probe is). It prints the median time at each position after the round. The suite's
serial probe is one untimed task and one timed (common/reference.py): position 2 here; the independent
method's serial block is positions 2-7. The allocator and BLAS are set as the independent method sets
them (evidence/independent.py); nothing from bench/ times anything here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import independent  # noqa: E402  (evidence/independent.py: its allocator and BLAS set-up)

from workloads import cpu_bound  # noqa: E402

SIZE = 1261345  # numpy_ufunc's calibrated size in the default runs here
POSITIONS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--executor", choices=("thread", "process"), default="thread")
    parser.add_argument("--size", type=int, default=SIZE)
    args = parser.parse_args()
    independent.allocator_and_blas()
    task, n = cpu_bound.ufunc_chain, args.size
    if args.executor == "thread":
        pool = ThreadPoolExecutor(2)
    else:
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
    cpus = sorted(os.sched_getaffinity(0))
    list(pool.map(task, [n] * 4))
    rows: dict[bool, list[list[float]]] = {True: [], False: []}
    turn, held = 0, False
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        held = not held
        list(pool.map(task, [n] * 2))
        list(pool.map(task, [n] * 12))
        if held:
            os.sched_setaffinity(0, {cpus[turn % len(cpus)]})
            turn += 1
        times = []
        for _ in range(POSITIONS):
            started = time.perf_counter()
            task(n)
            times.append(time.perf_counter() - started)
        if held:
            os.sched_setaffinity(0, cpus)
        rows[held].append(times)
    pool.shutdown()
    for held, runs in rows.items():
        med = [statistics.median(r[i] for r in runs) * 1e3 for i in range(POSITIONS)]
        later = statistics.mean(med[2:])
        print(
            f"{args.executor} {'held on one CPU' if held else 'free':15} {len(runs)} rounds; median ms by position: "
            + " ".join(f"{m:.2f}" for m in med)
            + f"; position 2 / positions 3-{POSITIONS}: {med[1] / later:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
