"""Does the first task after the other side's block run cold? Per-task times inside pool blocks, pool cold or warmed.

    python evidence/cold_pool.py [--seconds 30]

The independent method (evidence/independent.py) alternates a serial block and a pool block per
point. Its serial blocks always began with an untimed task (the first task after a pool round runs
cold: issue #30); this asks the same of the pool side. For a few workloads at W = 2 it alternates
two forms of the pool block after the same warm serial block of 6 tasks: ``cold`` (the 6 × W tasks
straight away) and ``warm`` (an untimed ``map`` of one task a worker first), and prints each form's
speedup (throughput of all blocks) and the median time of the pool's tasks by the order they
started. Own timing code; the task functions, the allocator and BLAS set-up and the pools are
evidence/independent.py's, at the task sizes given below (the suite's calibration on this machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

import independent as ind

from workloads import cpu_bound

K = 6
#: (workload, task, size, executor): sizes as the suite calibrated them in evidence/limits' runs.
POINTS = (
    ("hash_alloc", cpu_bound.hash_fresh_buffer, 4194304, "thread"),
    ("hash_alloc", cpu_bound.hash_fresh_buffer, 4194304, "process"),
    ("numpy_ufunc", cpu_bound.ufunc_chain, 1261345, "thread"),
    ("numpy_ufunc", cpu_bound.ufunc_chain, 1261345, "process"),
    ("cpu_python", cpu_bound.count_primes, 29730, "process"),
    ("zlib", cpu_bound.zlib_roundtrip, 524288, "thread"),
)


def timed(job: tuple) -> tuple[float, float]:
    """Run one task; its start and its duration, by this worker's clock."""
    func, param = job
    started = time.perf_counter()
    func(param)
    return started, time.perf_counter() - started


def point(spec: tuple, workers: int, seconds: float) -> None:
    """Both forms of one (workload, task, size, executor) point, in turn for ``seconds``; prints a line each."""
    workload, func, param, executor = spec
    pool = ind.pool_of(executor, workers)
    list(pool.map(func, [param] * (2 * workers)))
    blocks: dict[str, list[float]] = {"cold": [], "warm": []}
    serial: dict[str, list[float]] = {"cold": [], "warm": []}
    by_order: dict[str, list[list[float]]] = {"cold": [], "warm": []}
    ends, turn = time.perf_counter() + seconds, 0
    while time.perf_counter() < ends:
        form = ("cold", "warm")[turn % 2]
        turn += 1
        func(param)  # untimed, as in the independent method
        started = time.perf_counter()
        for _ in range(K):
            func(param)
        serial[form].append(time.perf_counter() - started)
        if form == "warm":
            list(pool.map(func, [param] * workers))
        started = time.perf_counter()
        tasks = sorted(pool.map(timed, [(func, param)] * (K * workers)))
        blocks[form].append(time.perf_counter() - started)
        by_order[form].append([took for _, took in tasks])
    pool.shutdown()
    for form in ("cold", "warm"):
        speedup = workers * sum(serial[form]) / sum(blocks[form])  # K·W·n / Σpool over K·n / Σserial
        order = " ".join(f"{statistics.median(col) * 1e3:.1f}" for col in zip(*by_order[form], strict=True))
        print(
            f"{workload:12} {executor:8} W={workers} {form}: speedup {speedup:.3f}, serial task "
            f"{statistics.median(serial[form]) / K * 1e3:.2f} ms; pool tasks by start (ms): {order}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="time per point, both forms (default 30)")
    args = parser.parse_args()
    ind.allocator_and_blas()
    for spec in POINTS:
        point(spec, 2, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
