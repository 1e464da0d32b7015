"""One crashing task under one executor, in a process of its own; reports what the pool's owner saw.

    python -m bench.crash_probe EXECUTOR START_METHOD CRASH      (START_METHOD "-" for threads)

If this process survives the crash it prints one JSON line: the exception the caller got
(``BrokenProcessPool`` for a process pool), the time until it got it, and whether a new pool works
afterwards. If it does not survive (a crash in a thread is a crash of the whole process) it prints
nothing and the parent reads its exit status. The suite runs this in a child process so that
measuring crash isolation never takes the suite itself down.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool

from bench.backend import backend
from bench.executors import make_executor
from workloads import faults

#: How long the caller waits for the crashing task before calling it a hang.
WAIT_S = 60


def probe(executor: str, variant: str | None, crash: str) -> dict:
    pool = make_executor(executor, 1, variant, blas_threads=None)
    started = time.perf_counter()
    try:
        pool.submit(faults.CRASHES[crash], 3).result(timeout=WAIT_S)
        outcome = "returned"
    except BrokenProcessPool:
        outcome = "BrokenProcessPool"
    except TimeoutError:
        outcome = "timeout"
    except Exception as exc:  # whatever the caller would see is the finding
        outcome = type(exc).__name__
    detect_s = time.perf_counter() - started
    pool.shutdown(wait=True, cancel_futures=True)
    again = make_executor(executor, 1, variant, blas_threads=None)
    try:
        recovered = again.submit(os.getpid).result(timeout=WAIT_S) > 0
    finally:
        again.shutdown(wait=True)
    found = {"outcome": outcome, "parent_survived": True, "detect_s": round(detect_s, 6), "recovered": recovered}
    found.update(backend(executor).crash_info())  # what the executor adds (dask: its allowed failures)
    return found


def main(argv: list[str]) -> int:
    executor, method, crash = argv
    print(json.dumps(probe(executor, None if method == "-" else method, crash)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
