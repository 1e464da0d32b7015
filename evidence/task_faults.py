"""Page faults of each task, in the thread that ran it: a plain call, the suite's stack-moving call, and the
stack-moving call as it was before it cut its padding (one by-value argument of up to 2 KiB).

    python evidence/task_faults.py [--size 1500000] [--tasks 12]

For each way of calling ``ufunc_chain``, a plain ``ThreadPoolExecutor(2)`` and (where dask is installed)
a ``LocalCluster`` of two single-threaded workers as the suite starts it (bench/cluster.py
``DaskExecutor``) run two tasks, two more, then ``--tasks`` in a batch; each task reads its own thread's
minor faults (``getrusage(RUSAGE_THREAD)``) before and after the call and returns the difference. It
prints, per worker thread, the faults of its tasks in the order it ran them. The allocator is the
suite's (bench/allocator.py ``apply("neutral")``: huge pages off); no timing.

The old call is rebuilt here (``_OldCall``): one ctypes structure argument of 24 + shift/2 bytes, as
workloads/stack.py had it until its padding was cut into pieces of at most 432 bytes. ctypes copies a
by-value structure argument into a new object for the callback, and takes a copy above 512 bytes from
``malloc``: in the task's thread, held while the task runs.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import resource
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from bench import allocator  # noqa: E402  (the repository, whatever the working directory)
from workloads import cpu_bound, stack  # noqa: E402


def _old_trampoline(_pad: Any, slot: list[Any]) -> int:
    slot[2] = slot[0](slot[1])
    return 0


_old_calls: dict[int, tuple[Any, Any]] = {}
_old_turn = itertools.count()


def old_call(func: Any, arg: Any) -> Any:
    """The stack-moving call before its padding was cut: one structure argument per offset."""
    if not _old_calls:
        for i in range(stack.OFFSETS):
            shift = i * (stack.SPAN_BYTES // stack.OFFSETS)
            size = 24 + shift // 2
            pad = type(f"OldPad{size}", (ctypes.Structure,), {"_fields_": [("b", ctypes.c_char * size)]})
            proto = ctypes.PYFUNCTYPE(ctypes.c_int, pad, ctypes.py_object)
            _old_calls[shift] = (proto(_old_trampoline), pad())
    call, pad = _old_calls[stack.offset_bytes(next(_old_turn))]
    slot = [func, arg, None]
    call(pad, slot)
    return slot[2]


CALLS = {
    "plain": cpu_bound.ufunc_chain,
    "stack-moved": stack.Rotated(cpu_bound.ufunc_chain),
    "stack-moved, old padding": lambda n: old_call(cpu_bound.ufunc_chain, n),
}


def traced(how: str, n: int) -> tuple[str, int]:
    """Run one task; its thread's name and the minor faults it took (this thread only)."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    CALLS[how](n)
    took = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    return f"{os.getpid()}/{threading.get_ident() % 100000}", took


def batches(pool: Any, how: str, n: int, tasks: int) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for count in (2, 2, tasks):
        for where, took in pool.map(traced, [how] * count, [n] * count):
            seen.setdefault(where, []).append(took)
    return seen


def one(how: str, executor: str, size: int, tasks: int) -> None:
    """One way of calling on one executor, in this (new) process: a new thread's arena each time."""
    import task_faults  # noqa: PLC0415  (this file by its module name: dask workers import ``traced`` from it)

    allocator.apply("neutral")
    allocator.huge_pages(True)
    if executor == "threads":
        with ThreadPoolExecutor(2) as pool:
            seen = batches(pool, how, size, tasks)
    else:
        from bench.cluster import DaskExecutor  # noqa: PLC0415

        pool = DaskExecutor(2, blas_threads=1, malloc="neutral")
        try:
            seen = task_faults.batches(pool, how, size, tasks)
        finally:
            pool.shutdown()
    for where, faults in seen.items():
        print(f"{executor:7} {how:26} {where:14} {faults}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_500_000, help="ufunc_chain's elements (default 1500000)")
    parser.add_argument("--tasks", type=int, default=12, help="tasks in the last batch (default 12)")
    parser.add_argument("--one", nargs=2, metavar=("CALL", "EXECUTOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, *sys.path[1:2], os.environ.get("PYTHONPATH")]))
    if args.one:
        one(args.one[0], args.one[1], args.size, args.tasks)
        return
    try:
        import distributed  # noqa: F401, PLC0415

        executors = ["threads", "dask"]
    except ImportError:
        executors = ["threads"]
    print(f"ufunc_chain at {args.size} elements; faults of each task in its own thread, in the order it ran them")
    for executor in executors:
        for how in CALLS:
            extra = ["--size", str(args.size), "--tasks", str(args.tasks)]
            subprocess.run([sys.executable, __file__, "--one", how, executor, *extra], check=True)


if __name__ == "__main__":
    main()
