"""An independent check of poolbench's speedups: plain executors, warm serial tasks, timing code of its own.

    python evidence/independent.py RESULTS.json [RESULTS.json ...] [--seconds 20] > independent.jsonl

Shares no timing or reference code with the suite (nothing from bench/ or common/): it imports only
the task functions (workloads/, examples/) and reads the task sizes suite runs used, so both measure
the same work. Per point it alternates blocks, serial then pool then serial ..., each serial block
``k`` tasks in a row in this thread after one untimed task, each pool block a ``map`` of ``k × W``
tasks after an untimed ``map`` of W (one task a worker): both sides warm, as the first task after the
other side's block runs cold on either (``python evidence/cold_pool.py``: each worker's first task
after a serial block took 1.2× the rest for ``hash_alloc``, and leaving it in the block read that
pool's speedup 3-4 % low); the points take turns, ``--slices`` times, so that a slow phase of the host
that lasts seconds reaches all of them alike; the speedup is the pool's tasks per second over
serial's, each summed over all of its blocks; the interval a bootstrap over block pairs. The
allocator is set as the suite's default policy sets it (its own ctypes call to glibc's ``mallopt``:
64 MiB mmap threshold and top pad, 1 GiB trim threshold, transparent huge pages off with its own
``prctl``, and the heap given back once with ``malloc_trim(0)``) in this process and every worker, and
BLAS is capped at one thread everywhere. Unlike the suite it gives its heap back only once, at start:
a plain program's heap, with no history of other cases.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import random
import statistics
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from containers import records_roundtrip  # noqa: E402

from workloads import cpu_bound  # noqa: E402

TASKS = {
    "cpu_python": cpu_bound.count_primes,
    "numpy_ufunc": cpu_bound.ufunc_chain,
    "hash_alloc": cpu_bound.hash_fresh_buffer,
    "zlib": cpu_bound.zlib_roundtrip,
    "containers": records_roundtrip,
}
#: (workload, executor, workers): the points checked.
POINTS = (
    ("cpu_python", "process", 2),
    ("numpy_ufunc", "thread", 2),
    ("numpy_ufunc", "process", 2),
    ("hash_alloc", "thread", 2),
    ("hash_alloc", "process", 2),
    ("zlib", "thread", 2),
    ("containers", "thread", 1),
    ("containers", "process", 1),
    ("containers", "thread", 2),
)
K = 6  # tasks per worker per block (the suite's default k)
_LIMIT = None


def allocator_and_blas() -> None:
    """This process's allocator as the suite's neutral policy sets it (glibc's knobs, transparent huge pages
    off, the heap given back once), and one BLAS thread."""
    global _LIMIT
    libc = ctypes.CDLL("libc.so.6")
    libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: no side's arrays get more huge pages than another's
    for param, value in ((-3, 64 << 20), (-1, 1 << 30), (-2, 64 << 20)):  # mmap threshold, trim, top pad
        libc.mallopt(param, value)
    libc.malloc_trim(0)  # a fork worker's heap is its parent's, copy-on-write: its own pages from here
    import numpy  # noqa: F401, PLC0415  (loads BLAS, so that the limit reaches it)

    _LIMIT = threadpool_limits(1)


def pool_of(executor: str, workers: int) -> Executor:
    if executor == "thread":
        return ThreadPoolExecutor(workers)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=allocator_and_blas)


class Point:
    """One (workload, executor, workers) point: its warm pool and the block times measured so far."""

    def __init__(self, func, param, executor: str, workers: int) -> None:
        self.func, self.param, self.workers = func, param, workers
        self.pool = pool_of(executor, workers)
        list(self.pool.map(func, [param] * (2 * workers)))  # every worker started and warm
        self.serial: list[float] = []
        self.parallel: list[float] = []

    def measure(self, seconds: float) -> None:
        """Alternate serial and pool blocks for ``seconds``."""
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            self.func(self.param)  # untimed: the first task after a pool block runs cold
            started = time.perf_counter()
            for _ in range(K):
                self.func(self.param)
            self.serial.append(time.perf_counter() - started)
            list(self.pool.map(self.func, [self.param] * self.workers))  # untimed: one task a worker, cold
            started = time.perf_counter()
            list(self.pool.map(self.func, [self.param] * (K * self.workers)))
            self.parallel.append(time.perf_counter() - started)

    def ratio(self, rows: list[int]) -> float:
        pool_rate = K * self.workers * len(rows) / sum(self.parallel[i] for i in rows)
        return pool_rate / (K * len(rows) / sum(self.serial[i] for i in rows))

    def result(self) -> dict:
        everything = list(range(len(self.serial)))
        rng = random.Random(f"{self.workers}{self.param}")
        draws = sorted(self.ratio([rng.choice(everything) for _ in everything]) for _ in range(2000))
        return {
            "speedup": self.ratio(everything),
            "low": draws[50],
            "high": draws[1949],
            "blocks": len(self.serial),
            "serial_task_ms": statistics.median(self.serial) / K * 1e3,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="suite runs' results .json files: the task sizes to use")
    parser.add_argument("--seconds", type=float, default=20.0, help="time per point in all (default 20)")
    parser.add_argument("--slices", type=int, default=5, help="turns the points take, round robin (default 5)")
    args = parser.parse_args()
    sizes: dict = {}
    for path in args.results:
        sizes.update(json.loads(Path(path).read_text())["machine_info"]["poolbench"]["sizes"])
    allocator_and_blas()
    points = {(w, e, n): Point(TASKS[w], sizes[w]["param"], e, n) for w, e, n in POINTS if w in sizes}
    try:
        # round robin, so that a host phase of seconds reaches every point alike, not one
        for _ in range(args.slices):
            for point in points.values():
                point.measure(args.seconds / args.slices)
    finally:
        for point in points.values():
            point.pool.shutdown()
    for (workload, executor, workers), point in points.items():
        row = {"workload": workload, "executor": executor, "workers": workers, "param": point.param}
        print(json.dumps({**row, **point.result()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
