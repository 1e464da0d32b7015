"""What moves a figure on this host: the same serial task timed in fresh processes, in one process over
time, and on each CPU at once.

    .venv/bin/python evidence/host_phases.py [--json OUT] [--seconds 30]

Three probes of the machine, none of the suite's timing code (a plain loop and ``time``):

* **Fresh processes.** Eight fresh processes each time 15 calls of ``count_primes`` (cpu_python's
  task) by the CPU clock and report their median; then one process times eight such blocks 0.3 s
  apart. If a run's shift came from the process (its memory layout, hash seeds: what pyperf runs 20
  processes for), the first spread would be the larger; if it came from the host (other tenants,
  frequency, a shared core), the second. Spread: the standard deviation of the log medians.
* **Each CPU at once.** One process pinned to each CPU of this process's affinity set (at most 8)
  runs the task back to back for ``--seconds``, all at once, each task timed by the wall clock.
  Per CPU: the slowest tenth of its tasks over the fastest tenth (two speed levels show as a ratio
  well above 1), and the same of its seconds (each second's median task; what a figure made of a few
  seconds of rounds inherits); across CPUs, their throughput over the whole time, fastest over slowest.

Prints a summary; ``--json OUT`` also writes every measurement (the evidence topic ``phases``,
docs/guide.md's generated block).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: cpu_python's parameter, about 20 ms of CPU on the 2-vCPU host these docs were measured on (the
#: default profile's target); the measured task time is recorded beside it.
PARAM = 16_685
BLOCK = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[3])
from workloads.cpu_bound import count_primes
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
PINNED = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from workloads.cpu_bound import count_primes
os.sched_setaffinity(0, {int(sys.argv[2])})
param, seconds, start_at = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
count_primes(param)
while time.time() < start_at:
    time.sleep(0.001)
tasks, t0 = [], time.perf_counter()
while time.perf_counter() - t0 < seconds:
    started = time.perf_counter()
    count_primes(param)
    tasks.append((started - t0, time.perf_counter() - started))
print(json.dumps(tasks))
"""


def blocks(count: int, pause: float) -> list[float]:
    args = [sys.executable, "-c", BLOCK, str(count), str(pause), str(ROOT), str(PARAM)]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def pinned(cpus: list[int], seconds: float) -> dict[int, list[tuple[float, float]]]:
    """Each CPU's tasks (start, duration), one process per CPU, all started at the same moment."""
    start_at = time.time() + 2.0  # every process imported and warm before the first timed task
    procs = {
        cpu: subprocess.Popen(
            [sys.executable, "-c", PINNED, str(ROOT), str(cpu), str(PARAM), str(seconds), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for cpu in cpus
    }
    out = {}
    for cpu, proc in procs.items():
        text, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"host_phases: the process pinned to CPU {cpu} failed (exit {proc.returncode})")
        out[cpu] = [tuple(t) for t in json.loads(text)]
    return out


def spread(values: list[float]) -> float:
    return statistics.stdev(math.log(v) for v in values)


def levels(durations: list[float]) -> float:
    """The slowest tenth of the tasks over the fastest tenth (each tenth's median)."""
    ordered = sorted(durations)
    tenth = max(1, len(ordered) // 10)
    return statistics.median(ordered[-tenth:]) / statistics.median(ordered[:tenth])


def by_second(tasks: list[tuple[float, float]]) -> list[float]:
    """The median task time of each whole second of the run."""
    seconds: dict[int, list[float]] = {}
    for at, d in tasks:
        seconds.setdefault(int(at), []).append(d)
    last = int(max(at for at, _ in tasks))
    return [statistics.median(v) for s, v in sorted(seconds.items()) if s < last]  # the last second is partial


def measure(seconds: float) -> dict:
    cpus = sorted(os.sched_getaffinity(0))[:8]
    processes = [blocks(1, 0.0)[0] for _ in range(8)]
    one = blocks(8, 0.3)
    per_cpu = pinned(cpus, seconds)
    rates = {cpu: len(tasks) / sum(d for _, d in tasks) for cpu, tasks in per_cpu.items()}
    return {
        "python": platform.python_version(),
        "cpus": cpus,
        "param": PARAM,
        "seconds": seconds,
        "fresh_processes_s": processes,
        "one_process_blocks_s": one,
        "fresh_spread": spread(processes),
        "blocks_spread": spread(one),
        "per_cpu": {
            str(cpu): {
                "tasks": len(tasks),
                "median_s": statistics.median(d for _, d in tasks),
                "levels": levels([d for _, d in tasks]),
                "seconds_levels": max(by_second(tasks)) / min(by_second(tasks)),
                "seconds_spread": spread(by_second(tasks)),
                "durations_s": [round(d, 6) for _, d in tasks],
                "starts_s": [round(t, 4) for t, _ in tasks],
            }
            for cpu, tasks in per_cpu.items()
        },
        "cpu_rate_ratio": max(rates.values()) / min(rates.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each CPU runs tasks (default 30)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds {args.seconds:g}: give a positive number of seconds")
    data = measure(args.seconds)
    for what, key in (
        ("8 fresh processes", "fresh_processes_s"),
        ("1 process, 8 blocks 0.3 s apart", "one_process_blocks_s"),
    ):
        medians = ", ".join(f"{v * 1e3:.1f}" for v in data[key])
        spread_key = "fresh_spread" if key.startswith("fresh") else "blocks_spread"
        print(f"{what}: medians {medians} ms; spread {data[spread_key]:.1%}")
    for cpu, d in data["per_cpu"].items():
        print(
            f"CPU {cpu}: {d['tasks']} tasks in {args.seconds:g} s, median {d['median_s'] * 1e3:.1f} ms; "
            f"slowest tenth / fastest tenth {d['levels']:.2f}x; slowest second / fastest {d['seconds_levels']:.2f}x "
            f"(spread of the seconds {d['seconds_spread']:.1%})"
        )
    print(f"the CPUs' throughput, fastest over slowest: {data['cpu_rate_ratio']:.3f}x")
    if args.json:
        args.json.write_text(json.dumps(data) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
