"""The clocks a calibration could read, right after the session caps BLAS (bench/calibration.py's module doc).

    python evidence/calibration_clock.py [PROCESSES] [PARAM]     (default 8 fresh processes, count_primes(29730))

Each fresh process caps BLAS as the suite does at session start (bench/executors.py
``blas_limit_here("serial", 1)``, which restarts OpenBLAS's helper thread) and times
``count_primes(PARAM)`` four times in a row by three clocks: the process's CPU (``time.process_time``,
every thread), this thread's CPU (``time.thread_time``) and the wall clock. A line per process:
process / thread / wall milliseconds of each task.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(param: int) -> str:
    sys.path.insert(0, str(ROOT))
    from bench.executors import blas_limit_here  # noqa: PLC0415  (in the fresh process only)
    from workloads.cpu_bound import count_primes  # noqa: PLC0415

    cells = []
    with blas_limit_here("serial", 1):
        for _ in range(4):
            p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
            count_primes(param)
            p, t, w = time.process_time() - p0, time.thread_time() - t0, time.perf_counter() - w0
            cells.append(f"{p * 1e3:.1f}/{t * 1e3:.1f}/{w * 1e3:.1f}")
    return " ".join(cells)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(one(int(argv[1])))
        return 0
    processes = int(argv[0]) if argv else 8
    param = argv[1] if len(argv) > 1 else "29730"
    print("count_primes, four tasks in a row after the BLAS cap: process CPU / thread CPU / wall, ms")
    for _ in range(processes):
        out = subprocess.run([sys.executable, __file__, "--one", param], capture_output=True, text=True, check=True)
        print(out.stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
