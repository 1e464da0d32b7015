"""What moves a whole run here: the same serial task timed in fresh processes, and in one process over time.

    .venv/bin/python evidence/host_phases.py

Eight fresh processes each time 15 calls of ``count_primes`` (cpu_python's task, at the size the
default profile calibrates to here) by the CPU clock and report their median; then one process
times eight such blocks 0.3 s apart. If a run's shift came from the process (its memory layout,
hash seeds: what pyperf runs 20 processes for), the first spread would be the larger; if it came
from the host (other tenants, frequency, a shared core), the second. Prints both spreads as the
standard deviation of the log medians. Not a benchmark case: a probe of the machine, run by hand.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 16_685  # cpu_python's calibrated size in the default profile here (about 20 ms of CPU)
CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[3])
from bench import allocator
from workloads.cpu_bound import count_primes
allocator.apply("neutral")
count_primes(int(sys.argv[4]))
blocks = []
for _ in range(int(sys.argv[1])):
    times = []
    for _ in range(15):
        started = time.process_time()
        count_primes(int(sys.argv[4]))
        times.append(time.process_time() - started)
    blocks.append(statistics.median(times))
    time.sleep(float(sys.argv[2]))
print(json.dumps(blocks))
"""


def blocks(count: int, pause: float) -> list[float]:
    args = [sys.executable, "-c", CHILD, str(count), str(pause), str(ROOT), str(LIMIT)]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def spread(values: list[float]) -> float:
    return statistics.stdev(math.log(v) for v in values)


def main() -> None:
    processes = [blocks(1, 0.0)[0] for _ in range(8)]
    one = blocks(8, 0.3)
    for what, values in (("8 fresh processes", processes), ("1 process, 8 blocks 0.3 s apart", one)):
        medians = ", ".join(f"{v * 1e3:.1f}" for v in values)
        print(f"{what}: medians {medians} ms; spread {spread(values):.1%}")


if __name__ == "__main__":
    main()
