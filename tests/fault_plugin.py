"""A pytest plugin that injects faults into a real `pytest bench` run, for the suite's own tests.

Loaded with ``-p tests.fault_plugin``; ``POOLBENCH_TEST_FAULT`` says what to break, as
``KIND:WORKLOAD`` (several separated by commas):

* ``wrong:NAME`` — the workload's check rejects every answer (a fast wrong answer);
* ``hang:NAME`` — the workload's tasks never return;
* ``hog:NAME`` — the workload's tasks allocate 1 GiB each (to run over a memory limit).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import workloads
from workloads import faults


def pytest_configure(config) -> None:
    for fault in filter(None, os.environ.get("POOLBENCH_TEST_FAULT", "").split(",")):
        kind, _, name = fault.partition(":")
        record = workloads.get(name)
        # Records are frozen on purpose; only a test may reach past that.
        if kind == "wrong":
            object.__setattr__(record, "check", lambda param, result: False)
        elif kind == "hang":
            object.__setattr__(record, "func", faults.hang_forever)
        elif kind == "hog":
            object.__setattr__(record, "func", functools.partial(faults.hog, 1024))
        else:
            raise ValueError(f"POOLBENCH_TEST_FAULT: unknown fault {fault!r}")


# --- interruptions ----------------------------------------------------------------------------------
#
# ``POOLBENCH_TEST_INTERRUPT=SIGNAL:TARGET:PHASE:NTH:DELAY_MS`` sends SIGNAL (INT or TERM) to the
# run's process group (TARGET "group", as a terminal's Ctrl-C does; the run must lead its own
# session) or to the run's process only ("pid", as `kill` and `docker stop` do), DELAY_MS after the
# NTH time (1-based, counted over the run) that PHASE begins:
#
# * ``call`` — a case's test function starts (before its pool exists);
# * ``warmup`` — a pool's warm-up (every worker started and answering);
# * ``round`` — a timed or warm-up round of pytest-benchmark starts (pool.map, a cold start, a probe);
# * ``shutdown`` — a pool is shut down, waiting for its workers, at the end of a case;
# * ``save`` — the session starts saving its results.
#
# The signal comes from a timer thread, so it lands wherever the main thread is by then, as a real
# one would. ``POOLBENCH_TEST_BEACON`` names a JSON Lines file that receives ``{"fired": time}``
# when the signal is sent and ``{"passed": nodeid}`` for every case whose test function passed.
# ``POOLBENCH_TEST_BEACON`` alone (no interruption) records the passed cases too.

_COUNTS: dict[str, int] = {}


def _beacon(record: dict) -> None:
    path = os.environ.get("POOLBENCH_TEST_BEACON")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _plan() -> tuple[signal.Signals, str, str, int, float] | None:
    spec = os.environ.get("POOLBENCH_TEST_INTERRUPT")
    if not spec:
        return None
    sig, target, phase, nth, delay_ms = spec.split(":")
    return signal.Signals["SIG" + sig], target, phase, int(nth), float(delay_ms) / 1000


def _phase(name: str) -> None:
    """PHASE ``name`` begins: fire the planned signal if this is its NTH time."""
    plan = _plan()
    if plan is None or plan[2] != name:
        return
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    if _COUNTS[name] != plan[3]:
        return
    sig, target, _, _, delay = plan

    def fire() -> None:
        _beacon({"fired": time.time(), "phase": name})
        if target == "group":
            os.killpg(os.getpgid(0), sig)
        else:
            os.kill(os.getpid(), sig)

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()


def _wrap(owner: object, attr: str, phase: str, when=lambda *a, **k: True) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if when(*args, **kwargs):
            _phase(phase)
        return original(*args, **kwargs)

    setattr(owner, attr, wrapper)


def _install_phases() -> None:
    import sys  # noqa: PLC0415

    from pytest_benchmark.fixture import BenchmarkFixture  # noqa: PLC0415

    import bench.executors  # noqa: PLC0415

    original_warm_up = bench.executors.warm_up
    _wrap(bench.executors, "warm_up", "warmup")
    for module in list(sys.modules.values()):  # modules that imported warm_up by name
        if module is not None and getattr(module, "warm_up", None) is original_warm_up:
            module.warm_up = bench.executors.warm_up
    import bench.cluster  # noqa: PLC0415  (imports no dask until a DaskExecutor is made)

    for cls in (ThreadPoolExecutor, ProcessPoolExecutor, bench.cluster.DaskExecutor):
        _wrap(cls, "shutdown", "shutdown", when=lambda self, wait=True, **k: wait)

    original_pedantic = BenchmarkFixture.pedantic

    def pedantic(self, target, *args, **kwargs):
        def round_target(*a, **k):
            _phase("round")
            return target(*a, **k)

        return original_pedantic(self, round_target, *args, **kwargs)

    BenchmarkFixture.pedantic = pedantic


def pytest_collection_finish(session) -> None:
    if _plan() is not None:
        _install_phases()


def pytest_runtest_call(item) -> None:
    _phase("call")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Record a passed case exactly when the suite marks it passed (bench/conftest.py does so in this
    hook): a signal landing in between is held until both are done, so the record cannot disagree."""
    from bench import stopping  # noqa: PLC0415

    with stopping.deferred():
        report = yield
        if report.when == "call" and report.passed:
            _beacon({"passed": report.nodeid})
    return report


@pytest.hookimpl(tryfirst=True, wrapper=True)
def pytest_sessionfinish(session):
    _phase("save")  # before pytest-benchmark saves
    return (yield)
