"""Crash isolation: a task that kills its worker (os._exit, abort, a segfault), per executor.

Each round runs bench/crash_probe.py in a child process, so the suite never goes down with it.
A process pool should raise BrokenProcessPool in its owner, which survives; a thread pool's crash
is the whole process's crash. What happened is recorded in extra_info; the time is the probe's
whole run (interpreter start, pool, crash, a fresh pool afterwards).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.harness import case_info
from bench.measure import PeakRss, throttling

CASE = "crash"
ROOT = Path(__file__).resolve().parents[1]
PROBE_TIMEOUT_S = 120


def run_probe(executor: str, start_method: str | None, crash: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "bench.crash_probe", executor, start_method or "-", crash],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=PROBE_TIMEOUT_S,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    found = json.loads(lines[-1]) if lines else {"outcome": "process died", "parent_survived": False}
    code = done.returncode
    found["returncode"] = code
    found["signal"] = signal.Signals(-code).name if code < 0 else None
    return found


def test_crash(benchmark, case, suite):
    crash = case.workload.removeprefix("crash_")
    seen: list[dict] = []
    benchmark.group = f"crash {crash}"
    with PeakRss() as rss, throttling(suite.cpu.cgroup) as throttled:
        benchmark.pedantic(
            lambda: seen.append(run_probe(case.executor, case.start_method, crash)), rounds=1, warmup_rounds=0
        )
    result = seen[-1]
    info = case_info(case, suite)
    info.update(tasks=1, task_param=crash, rss_peak_bytes=rss.peak, cpu_time_s=None, **throttled, **result)
    benchmark.extra_info.update(info)
    if case.executor == "process":
        assert result["parent_survived"], f"{case.id}: the pool's owner died with a process-pool worker: {result}"
        assert result["outcome"] == "BrokenProcessPool", f"{case.id}: expected BrokenProcessPool, got {result}"
