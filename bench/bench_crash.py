"""Crash isolation: a task that kills its worker (os._exit, abort, a segfault), per executor.

Each round runs bench/crash_probe.py in a child process, so the suite never goes down with it.
A process pool should raise BrokenProcessPool in its owner, which survives; a thread pool's crash
is the whole process's crash. What happened is recorded in extra_info; the time is the probe's
whole run (interpreter start, pool, crash, a fresh pool afterwards).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.backend import backend
from bench.harness import case_info
from bench.readings import PeakRss, throttling

CASE = "crash"
ROOT = Path(__file__).resolve().parents[1]
PROBE_TIMEOUT_S = 120


def run_probe(executor: str, variant: str | None, crash: str) -> dict:
    """Run the probe in a process group of its own; on any way out but its own exit, kill the group.

    The group holds the probe and every pool worker it started, so a Ctrl-C, SIGTERM or timeout of
    the suite leaves none of them behind (a worker orphaned by the probe's death would otherwise
    wait forever on its task queue).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with subprocess.Popen(
        [sys.executable, "-m", "bench.crash_probe", executor, variant or "-", crash],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    ) as child:
        try:
            stdout, _ = child.communicate(timeout=PROBE_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):  # workers the probe left behind, if any
                os.killpg(child.pid, signal.SIGKILL)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    found = json.loads(lines[-1]) if lines else {"outcome": "process died", "parent_survived": False}
    code = child.returncode
    found["returncode"] = code
    found["signal"] = signal.Signals(-code).name if code < 0 else None
    return found


def test_crash(benchmark, case, suite):
    crash = case.workload.removeprefix("crash_")
    seen: list[dict] = []
    benchmark.group = f"crash {crash}"
    with PeakRss() as rss, throttling(suite.cpu.cgroup) as throttled:
        benchmark.pedantic(
            lambda: seen.append(run_probe(case.executor, case.variant, crash)), rounds=1, warmup_rounds=0
        )
    result = seen[-1]
    info = case_info(case, suite)
    info.update(tasks=1, task_param=crash, rss_peak_bytes=rss.peak, cpu_time_s=None, **throttled, **result)
    benchmark.extra_info.update(info)
    if (expected := backend(case.executor).crash_outcome) is not None:
        assert result["parent_survived"], f"{case.id}: the pool's owner died with a worker: {result}"
        assert result["outcome"] == expected, f"{case.id}: expected {expected}, got {result}"
