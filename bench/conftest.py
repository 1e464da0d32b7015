"""pytest hooks for the benchmark suite: options, the one config object, parametrization, machine info.

Options are registered here once and read once, in ``pytest_configure``, into a frozen
:class:`~bench.config.SuiteConfig` kept in ``config.stash``; everything else reads that object.
A bad value ends the run before any case with one line (pytest's usage error, exit code 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from bench import allocator, benchmark_api, calibration, cpus, machine, preflight, readings, stopping, workers
from bench.backend import backend, missing_line
from bench.cases import GENERATORS, left_out_lines
from bench.config import (
    CASES,
    DEFAULT_EXECUTORS,
    EXECUTORS,
    OptionError,
    SuiteConfig,
    build_config,
    executor_options,
)
from bench.journal import Journal, journal_path
from bench.saving import SaveError, make_saving_atomic, writable_folder
from bench.terminal import defects, scaling_waits, speedup_table, summary_workers, tell, warn
from bench.timeouts import case_deadline
from common.denied import denied_line, denied_summary
from common.environment import WORKLOAD_FILES_ENV
from workloads import PROFILES, scaling_names
from workloads import get as get_workload
from workloads.io_bound import IO_DIR_ENV
from workloads.user import WorkloadFileError, load_files

CONFIG_KEY = pytest.StashKey[SuiteConfig]()
MALLOC_KEY = pytest.StashKey[dict]()
JOURNAL_KEY = pytest.StashKey["Journal | None"]()
STATUS_KEY = pytest.StashKey[int]()
USER_KEY = pytest.StashKey["list[tuple[str, str | None]]"]()
LOAD_KEY = pytest.StashKey["list[float] | None"]()
STARTED_KEY = pytest.StashKey[str]()
FROZEN_KEY = pytest.StashKey[int]()
INFO_KEY = pytest.StashKey[dict]()


OPTIONS = {
    "workers": "comma list of max_workers values, e.g. 1,2,4,8 (default: 1,2,4,8 and the effective CPU count)",
    "executors": f"comma list of {', '.join(EXECUTORS)}, or all (default: {','.join(DEFAULT_EXECUTORS)}; "
    "one this Python or install lacks is skipped with a line)",
    "workloads": f"comma list of {', '.join(scaling_names())} (default: all)",
    "start_methods": "comma list of process start methods: fork, forkserver, spawn (default: the platform's)",
    "profile": f"task sizes, batch sizes and rounds: {' | '.join(PROFILES)} (default: default)",
    "passes": "times every scaling point is measured, each on fresh pools, one pass after the other (default: the "
    "profile's: 2 quick, 3 default and full); its intervals come from the passes, so 1 gives intervals a rerun "
    "can miss",
    "tasks_per_cpu": "tasks per busy CPU in a scaling round, k (default: the profile's: 4 quick, 6 default, 8 full); "
    "fewer make rounds shorter, and a pool's cost per round a larger share of them",
    "cases": f"comma list of {', '.join(CASES)} (default: all)",
    "blas_threads": "BLAS threads per worker, set with threadpoolctl (default: 1)",
    "malloc": "allocator policy in the suite and every worker: neutral (no page faults per task once warm; "
    "default), fixed (every buffer >= 128 KiB mapped per task) or dynamic (glibc as it ships)",
    "task_stack": "where each scaling task's C stack lies: rotate (the next of 64 offsets over 4 KiB per task, for "
    "the serial reference and the pools alike, so a slow stack position costs both sides the same; default) or "
    "fixed (each thread's own, as a plain program runs)",
    "sizes": "task sizes: calibrated (each workload's serial task takes the profile's target time on this host, "
    "kept from this machine's last calibration while it fits; default), fresh (calibrated anew) or fixed (the "
    "registry's sizes, the same work on every host)",
    "sizes_from": "a results .json of an earlier run: reuse its task sizes exactly (a CI gate compares equal work)",
    "case_timeout": "seconds one case may run before it fails and its workers are stopped (default: 600; 0: none)",
    "journal": "JSON Lines file of finished cases (default: beside --benchmark-json or the autosave file)",
    "io_dir": f"folder io_file writes and fsyncs its files in (default: the temp folder; also {IO_DIR_ENV})",
    # each executor's own options (its backend's, bench/backend.py): --dask-configs, --dask-scheduler
    **{o.name: o.help for o in executor_options()},
}


#: Said once at start on a kernel that keeps no per-thread run-queue wait.
NO_WAIT_LINE = (
    "this kernel keeps no run-queue wait per thread (/proc/PID/task/TID/schedstat): CPU that other programs "
    "took from the run cannot be measured here, and cpu_wait_s is recorded as null"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("poolbench", "poolbench sweep")
    for name, help_text in OPTIONS.items():
        group.addoption("--" + name.replace("_", "-"), dest=f"poolbench_{name}", default=None, help=help_text)
    group.addoption(
        "--workload-file",
        dest="poolbench_workload_files",
        action="append",
        default=[],
        metavar="PATH",
        help=f"a Python file whose WORKLOADS list adds workloads of your own (repeatable; also {WORKLOAD_FILES_ENV})",
    )


def workload_files(config: pytest.Config) -> list[str]:
    """The workload files of this run: the environment's, then the command line's, each once."""
    from_env = [p for p in os.environ.get(WORKLOAD_FILES_ENV, "").split(":") if p.strip()]
    return list(dict.fromkeys([*from_env, *config.option.poolbench_workload_files]))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("-n/--numprocesses: benchmarks must run one at a time; drop -n (pytest-xdist)")
    try:
        # The user's workloads first: --workloads may name them.
        config.stash[USER_KEY] = [(w.name, w.source) for w in load_files(workload_files(config))]
        # Every workload's code is loaded: now the first thread (bench/workers.py start_threading).
        workers.start_threading()
        cpu = cpus.detect()
        suite = build_config({name: getattr(config.option, f"poolbench_{name}") for name in OPTIONS}, cpu)
        for name in suite.executors:  # what each needs to know first (an existing cluster's size, ...)
            state = backend(name).prepare(suite, suite.state(name))
            suite = dataclasses.replace(suite, executor_state=MappingProxyType({**suite.executor_state, name: state}))
    except (OptionError, cpus.CpuOverrideError, WorkloadFileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    files = {"--benchmark-json": getattr(config.option, "benchmark_json", None), "--journal": suite.journal}
    folders = {option: Path(str(f)).resolve().parent for option, f in files.items() if f is not None}
    folders["--io-dir"] = Path(suite.io_dir)
    for option, folder in folders.items():
        if problem := writable_folder(folder, option):
            raise pytest.UsageError(problem)
    config.stash[CONFIG_KEY] = suite
    config.stash[LOAD_KEY] = machine.load_average()
    config.stash[STARTED_KEY] = datetime.now(UTC).isoformat(timespec="seconds")
    os.environ[IO_DIR_ENV] = suite.io_dir  # io_file's workers (and serial runs) write there
    config.stash[MALLOC_KEY] = allocator.apply(suite.malloc)
    # SIGINT and SIGTERM (Ctrl-C, docker stop, a cancelled CI job) stop the run within a bound;
    # bench/stopping.py says how.
    stopping.install(where_saved=lambda: _journal_name(config), say=lambda text: tell(config, text))
    # The per-round times are the samples that spread and significance are computed from
    # (scripts.compare); pytest-benchmark keeps them in the JSON only when asked.
    benchmark_api.keep_round_times(config)
    # Last of the checks: it starts a worker of each kind that imports the files afresh, after the
    # stop handlers, so that a Ctrl-C meanwhile ends the run as anywhere else (its workers killed,
    # no traceback from a cluster half started).
    try:
        preflight.check(suite, [source for _, source in config.stash[USER_KEY] if source])
    except WorkloadFileError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make pytest-benchmark's result files atomic and open the journal of finished cases."""
    stopping.keep_swallowed_stops()  # after pytest's unraisable hook is installed (pytest_configure)
    benchmark_api.check(session.config)  # the pytest-benchmark internals used below are all there
    bench_session = benchmark_api.session(session.config)
    journal = None
    if bench_session is not None:
        if benchmark_api.saves_to_storage(bench_session) and (folder := benchmark_api.storage_folder(bench_session)):
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
            if problem := writable_folder(folder, "--benchmark-storage"):
                raise pytest.UsageError(problem)
        make_saving_atomic(bench_session)
        path = journal_path(bench_session, session.config.stash[CONFIG_KEY].journal)
        journal = Journal(path, bench_session) if path else None
        for line in _start_lines(session.config):
            warn(session.config, line)
    if not session.config.option.collectonly:
        _size(session.config)
        if (
            not benchmark_api.saves(bench_session)
            and not benchmark_api.timing_off(bench_session)
            and not session.config.option.collectonly
        ):
            warn(
                session.config,
                "results will not be saved and no journal is kept: add --benchmark-autosave "
                "(or --benchmark-json FILE) to keep them",
            )
    session.config.stash[JOURNAL_KEY] = journal


def _start_lines(config: pytest.Config) -> list[str]:
    """What a run says at start about how it will measure, beyond its options."""
    suite = config.stash[CONFIG_KEY]
    lines = [io] if (io := machine.io_dir_warning(suite)) else []
    lines += [f"{name} executor skipped: {missing_line(name)}" for name in suite.skipped_executors]
    lines += left_out_lines(suite)
    if readings.WAIT_SOURCE is None and not config.option.collectonly:
        lines.append(NO_WAIT_LINE)
    if contended := workers.contended_code({n: get_workload(n).func for n in suite.workloads}):
        lines.append(
            f"the code of {', '.join(contended)} is not immortal on this free-threaded build (a thread started "
            "before it was loaded): its threads contend on reference counts where a plain program's would not"
        )
    return lines


def _size(config: pytest.Config) -> None:
    """Choose the run's task sizes (bench/calibration.py), this machine's last calibration kept where it fits."""
    suite = config.stash[CONFIG_KEY]
    config.stash[FROZEN_KEY] = workers.freeze_heap()  # as before every case (calibration times tasks)
    cache = getattr(config, "cache", None)  # pytest's cache: absent with -p no:cacheprovider
    key = calibration.remembered_key(suite, machine.package_version("numpy"))
    remembered = cache.get(key, {}) if cache is not None else None
    sized = calibration.size_workloads(suite, remembered=remembered)
    if cache is not None and remembered:
        cache.set(key, remembered)
    if sized:
        config.stash[CONFIG_KEY] = dataclasses.replace(suite, sizes=sized)
    if line := calibration.size_line(sized, suite):
        warn(config, line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail a case that runs past --case-timeout (its pools are stopped on the way out); record its wall time."""
    stopping.checkpoint()  # a stop signal held somewhere (a fork) stops the run before the next case
    started = time.perf_counter()
    # The suite's own heap out of the case's collections, as every worker's (common/reference.py).
    item.config.stash[FROZEN_KEY] = workers.freeze_heap()
    if item.config.stash[CONFIG_KEY].malloc == "neutral":
        allocator.fresh_heap()  # and its free pages given back: the case's tasks touch fresh ones (bench/allocator.py)
    with case_deadline(item.config.stash[CONFIG_KEY].case_timeout):
        result = yield
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if bench is not None:  # the whole case: pool start, warm-up, rounds, probes, checks, shutdown
        bench.extra_info["case_wall_s"] = round(time.perf_counter() - started, 6)
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Once the cases are over, however they ended, a stop signal no longer interrupts: saving runs to its end."""
    try:
        return (yield)
    finally:
        stopping.hold_signals()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark saves (in its own sessionfinish), drop every case that did not pass.

    A case cut off by Ctrl-C, SIGTERM or a timeout has no result worth keeping, and an empty one
    would break pytest-benchmark's JSON writer and lose the finished cases with it. A save that
    fails (a full disk, a folder made read-only, a results file replaced during the run) ends in
    one line and exit code 1; a stop signal that came during the run or the save makes it 2.
    """
    bench_session = benchmark_api.session(session.config)
    journal = session.config.stash.get(JOURNAL_KEY, None)
    if journal is not None:
        journal.catch_up()
    if bench_session is not None:
        # Only finished cases are saved; none at all saves no file (an earlier one stays as it was).
        records = benchmark_api.benchmarks(bench_session)
        records[:] = [b for b in records if benchmark_api.passed(b)]
    try:
        result = yield
    except SaveError as exc:
        warn(session.config, f"{exc}; {_journal_hint(session.config)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        result = None
    if journal is not None and journal.error:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    session.exitstatus = stopping.exit_status_for(session.exitstatus)
    session.config.stash[STATUS_KEY] = int(session.exitstatus)
    return result


def _journal_name(config: pytest.Config) -> str:
    journal = config.stash.get(JOURNAL_KEY, None)
    return str(journal.path) if journal is not None and journal.written else ""


def _journal_hint(config: pytest.Config) -> str:
    name = _journal_name(config)
    if not name:
        return "no case had finished"
    return f"the finished cases are in the journal {name} (python -m scripts.report {name} reads it)"


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the journal; after an interruption, or with threads left behind, end the process now.

    Runs after pytest-benchmark has saved its results (in pytest_sessionfinish). Hung task threads
    and the internal threads of a terminated process pool cannot be joined, and the interpreter's
    exit would wait for them forever: bench.stopping.finish kills what is left and calls os._exit.
    """
    journal = config.stash.get(JOURNAL_KEY, None)
    if journal is not None:
        journal.catch_up()
        journal.close()
    stopping.finish(config.stash.get(STATUS_KEY, 1))


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
        benchmark_api.mark_passed(bench, report.passed)
    if bench is not None and report.failed:
        benchmark_api.mark_failed(bench)
    journal = item.config.stash.get(JOURNAL_KEY, None)
    if report.when == "teardown" and journal is not None and journal.error is None:
        journal.catch_up()  # the case is over: its result goes to disk now
        if journal.error is not None:  # nowhere to keep what the next cases measure: stop here
            warn(item.config, f"{journal.error}; stopping the run; free space or choose a writable folder")
            item.session.shouldstop = "the journal of finished cases could not be written"
    return report


def _finished(config: pytest.Config) -> list[Any]:
    """The fixtures of the cases that passed."""
    return benchmark_api.finished(benchmark_api.session(config))


def _denied(config: pytest.Config) -> dict[str, Any]:
    """Whether the finished scaling cases were denied CPU (common.denied.denied_summary)."""
    suite = config.stash[CONFIG_KEY]
    return denied_summary(scaling_waits(_finished(config)), suite.cpu.effective_cpus, os.cpu_count())


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add what bounds the measurement (bench/machine.py): effective CPUs, BLAS, versions, options, load."""
    machine_info["poolbench"] = config.stash[INFO_KEY] = machine.poolbench_info(
        config.stash[CONFIG_KEY],
        malloc=config.stash[MALLOC_KEY],
        user_workloads=config.stash[USER_KEY],
        loadavg_start=config.stash[LOAD_KEY],
        started_at=config.stash[STARTED_KEY],
        cpu_denied=_denied(config),
        frozen_objects=config.stash.get(FROZEN_KEY, None),
    )


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables: the answer is what the screen shows last
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The answer at a glance: speedups at the recommended worker count, where the results went, and load."""
    if CONFIG_KEY not in config.stash:
        return
    suite = config.stash[CONFIG_KEY]
    bench_session = benchmark_api.session(config)
    finished = _finished(config)
    recommended = suite.cpu.recommended_workers
    workers = summary_workers(suite.workers, recommended)
    # what the saved results hold of the CPUs (an existing cluster's workers); not saved: this run's own
    info = config.stash.get(INFO_KEY, None) or {"effective_cpus": suite.cpu.effective_cpus}
    table = speedup_table(finished, workers, info)
    if table or finished:
        terminalreporter.section("poolbench")
    if table:
        why = "recommended here" if workers == recommended else f"the most swept; {recommended} recommended here"
        terminalreporter.write_line(f"speedup over serial at {workers} workers ({why}; throughput ratio):")
        for line in table:
            terminalreporter.write_line("  " + line)
    if defect := defects(finished, info):
        warn(config, defect)
    saved = [str(p) for p in benchmark_api.saved_files(bench_session)]
    journal = _journal_name(config)
    if saved:
        terminalreporter.write_line(f"results: {', '.join(saved)}" + (f"; journal: {journal}" if journal else ""))
        terminalreporter.write_line(f"report and plots: python -m scripts.report {saved[0]} --out results")
    elif finished:
        terminalreporter.write_line("results: not saved (no --benchmark-autosave or --benchmark-json)")
    if busy := machine.busy_warning(config.stash[LOAD_KEY], machine.load_average(), suite.cpu.effective_cpus):
        warn(config, busy)
    if denied := denied_line(_denied(config)):
        warn(config, f"{denied}; re-run on an idle machine")
