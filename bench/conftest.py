"""pytest hooks for the benchmark suite: options, the one config object, parametrization, machine info.

Options are registered here once and read once, in ``pytest_configure``, into a frozen
:class:`~bench.config.SuiteConfig` kept in ``config.stash``; everything else reads that object.
A bad value ends the run before any case with one line (pytest's usage error, exit code 4).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bench import cpus
from bench.cases import GENERATORS
from bench.config import CASES, EXECUTORS, OptionError, SuiteConfig, build_config
from bench.executors import ABANDONED_THREADS, blas_libraries, executor_defaults, fix_malloc
from bench.harness import SCHEMA_VERSION
from bench.journal import Journal, journal_path, make_saving_atomic
from workloads import PROFILES, scaling_names

CONFIG_KEY = pytest.StashKey[SuiteConfig]()
MALLOC_KEY = pytest.StashKey[bool]()
JOURNAL_KEY = pytest.StashKey["Journal | None"]()
STATUS_KEY = pytest.StashKey[int]()


class CaseTimeout(Exception):
    """A case ran past --case-timeout."""


def _terminate_on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM (docker stop, a CI runner cancelling) takes the same path as Ctrl-C: the current case
    # stops, every pool's workers are stopped (bench.executors.closing), finished results are saved.
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


#: Environment variables that change what a measurement means; recorded with every run.
RECORDED_ENV = (
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "PYTHON_GIL",
    cpus.OVERRIDE_ENV,
)

OPTIONS = {
    "workers": "comma list of max_workers values, e.g. 1,2,4,8 (default: 1,2,4,8 and the effective CPU count)",
    "executors": f"comma list of {', '.join(EXECUTORS)} (default: all)",
    "workloads": f"comma list of {', '.join(scaling_names())} (default: all)",
    "start_methods": "comma list of process start methods: fork, forkserver, spawn (default: the platform's)",
    "profile": f"task sizes, batch sizes and rounds: {' | '.join(PROFILES)} (default: default)",
    "cases": f"comma list of {', '.join(CASES)} (default: all)",
    "blas_threads": "BLAS threads per worker, set with threadpoolctl (default: 1)",
    "malloc": "glibc mmap threshold: fixed (same allocation behaviour in every executor; default) or dynamic",
    "case_timeout": "seconds one case may run before it fails and its workers are stopped (default: 600; 0: none)",
    "journal": "JSON Lines file of finished cases (default: beside --benchmark-json or the autosave file)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("poolbench", "poolbench sweep")
    for name, help_text in OPTIONS.items():
        group.addoption("--" + name.replace("_", "-"), dest=f"poolbench_{name}", default=None, help=help_text)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("-n/--numprocesses: benchmarks must run one at a time; drop -n (pytest-xdist)")
    try:
        cpu = cpus.detect()
        suite = build_config({name: getattr(config.option, f"poolbench_{name}") for name in OPTIONS}, cpu)
    except (OptionError, cpus.CpuOverrideError) as exc:
        raise pytest.UsageError(str(exc)) from None
    out = getattr(config.option, "benchmark_json", None)
    if out is not None and not Path(str(out)).resolve().parent.is_dir():
        raise pytest.UsageError(
            f"--benchmark-json: folder {str(Path(str(out)).resolve().parent)!r} does not exist; create it first"
        )
    config.stash[CONFIG_KEY] = suite
    config.stash[MALLOC_KEY] = fix_malloc(suite.mmap_threshold)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    # The per-round times are the samples that spread and significance are computed from
    # (scripts.compare); pytest-benchmark keeps them in the JSON only when asked.
    config.option.benchmark_save_data = True


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make pytest-benchmark's result files atomic and open the journal of finished cases."""
    bench_session = getattr(session.config, "_benchmarksession", None)
    journal = None
    if bench_session is not None:
        make_saving_atomic(bench_session)
        path = journal_path(bench_session, session.config.stash[CONFIG_KEY].journal)
        journal = Journal(path, bench_session) if path else None
    session.config.stash[JOURNAL_KEY] = journal


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail a case that runs past --case-timeout; its pools' workers are stopped on the way out."""
    limit = item.config.stash[CONFIG_KEY].case_timeout
    if not limit or threading.current_thread() is not threading.main_thread():
        return (yield)

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case ran past --case-timeout {limit:g} s; its pool's workers were stopped")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark saves (in its own sessionfinish), drop every case that did not pass.

    A case cut off by Ctrl-C, SIGTERM or a timeout has no result worth keeping, and an empty one
    would break pytest-benchmark's JSON writer and lose the finished cases with it.
    """
    session.config.stash[STATUS_KEY] = int(exitstatus)
    bench_session = getattr(session.config, "_benchmarksession", None)
    for bench in getattr(bench_session, "benchmarks", ()):
        if not getattr(bench.fixture, "poolbench_passed", False):
            bench.fixture.has_error = True
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the journal; if a hung task left a thread behind, end the process without waiting for it.

    Runs after pytest-benchmark has saved its results (in pytest_sessionfinish). A thread cannot be
    killed, and the interpreter's exit would join it forever; os._exit skips that join.
    """
    journal = config.stash.get(JOURNAL_KEY, None)
    if journal is not None:
        journal.catch_up()
        journal.close()
    if any(t.is_alive() for t in ABANDONED_THREADS):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(STATUS_KEY, 1))


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> SuiteConfig:
    """The run's frozen configuration."""
    return pytestconfig.stash[CONFIG_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    suite = metafunc.config.stash[CONFIG_KEY]
    kind = metafunc.module.CASE
    cases = GENERATORS[kind](suite) if kind in suite.cases else []
    metafunc.parametrize("case", cases, ids=[c.id for c in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the empty placeholders of case types that ``--cases`` left out (no skip noise)."""
    selected = config.stash[CONFIG_KEY].cases
    keep, drop = [], []
    for item in items:
        kind = getattr(getattr(item, "module", None), "CASE", None)
        (drop if kind is not None and kind not in selected else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A case that failed after its rounds (a wrong answer, a crash in cleanup) keeps no result.

    pytest-benchmark leaves out of the JSON only benchmarks whose timed function raised; this marks
    the rest of the failures the same way, so a saved file never holds a number from a failed case.
    When a case is over (its teardown), its result is appended to the journal.
    """
    report = yield
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if bench is not None and report.when == "call":
        bench.poolbench_passed = report.passed
    if bench is not None and report.failed:
        bench.has_error = True
    journal = item.config.stash.get(JOURNAL_KEY, None)
    if report.when == "teardown" and journal is not None:
        journal.catch_up()  # the case is over: its result goes to disk now
    return report


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add what bounds the measurement: effective CPUs and their sources, BLAS, versions, options."""
    suite = config.stash[CONFIG_KEY]
    machine_info["poolbench"] = {
        "schema_version": SCHEMA_VERSION,
        "label": suite.label,
        "backend": suite.backend,
        **suite.cpu.as_dict(),
        "default_start_method": suite.default_start_method,
        "blas_threads": suite.blas_threads,
        "blas": blas_libraries(),
        "malloc_mmap_threshold": suite.mmap_threshold if config.stash[MALLOC_KEY] else None,
        "executor_defaults": executor_defaults(),
        "gil_switch_interval_s": sys.getswitchinterval(),
        "gil_enabled": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
        "versions": {
            "python": platform.python_version(),
            **{d: _version(d) for d in ("numpy", "pytest", "pytest-benchmark", "psutil", "threadpoolctl")},
        },
        "environment": {k: os.environ.get(k) for k in RECORDED_ENV},
        "config": suite.as_dict(),
    }
