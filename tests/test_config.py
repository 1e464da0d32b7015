"""Option parsing: defaults, every bad value, and what pytest does with them (one line, exit code 4)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from bench import cases, interpreters
from bench.config import CASES, DEFAULT_EXECUTORS, OptionError, build_config, parse_workers
from bench.cpus import CgroupCpu, CpuInfo
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
TWO_CPUS = CpuInfo(2, 2, None, CgroupCpu())
HALF_CPU = CpuInfo(2, 2, None, CgroupCpu(version=1, quota_cpus=0.5))
SIX_CPUS = CpuInfo(6, 6, None, CgroupCpu())


def test_defaults():
    cfg = build_config({}, TWO_CPUS)
    assert cfg.workers == (1, 2, 4, 8)
    assert DEFAULT_EXECUTORS == ("serial", "thread", "interpreter", "process")  # dask is opt-in
    # the interpreter pool where this Python has it (3.14+), else skipped and said so at start
    expected = DEFAULT_EXECUTORS if interpreters.available() else ("serial", "thread", "process")
    assert cfg.executors == expected
    assert cfg.skipped_executors == (() if interpreters.available() else ("interpreter",))
    assert cfg.cases == CASES
    assert cfg.profile == "default"
    assert cfg.blas_threads == 1
    assert cfg.start_methods == (multiprocessing.get_context().get_start_method(),)
    assert cfg.default_start_method == cfg.start_methods[0]


def test_default_workers_follow_the_effective_cpu_count():
    # common/plan.sweep: powers of two up to 4 × C, and C itself
    assert build_config({}, SIX_CPUS).workers == (1, 2, 4, 6, 8, 16)
    assert build_config({}, HALF_CPU).workers == (1, 2, 4)


def test_values_are_parsed_sorted_and_deduplicated():
    cfg = build_config(
        {
            "workers": "4, 1,4",
            "executors": "process,serial",
            "workloads": "zlib,cpu_python",
            "start_methods": "all",
            "cases": "dispatch",
            "profile": "quick",
            "blas_threads": "2",
        },
        TWO_CPUS,
    )
    assert cfg.workers == (1, 4)
    assert cfg.executors == ("serial", "process")
    assert cfg.workloads == ("cpu_python", "zlib")
    assert set(cfg.start_methods) == set(multiprocessing.get_all_start_methods())
    assert cfg.cases == ("dispatch",)
    assert (cfg.profile, cfg.blas_threads) == ("quick", 2)
    assert cfg.settings["rounds"] >= 1


BAD = [
    ("workers", "0"),
    ("workers", "-2"),
    ("workers", "two"),
    ("workers", "1.5"),
    ("workers", ""),
    ("workers", "1,,2"),
    ("workers", "5000"),
    ("executors", "fiber"),
    ("executors", ""),
    ("workloads", "mining"),
    ("start_methods", "teleport"),
    ("profile", "huge"),
    ("cases", "everything"),
    ("blas_threads", "0"),
    ("blas_threads", "many"),
    ("malloc", "jemalloc"),
    ("case_timeout", "-1"),
    ("case_timeout", "soon"),
    ("journal", " "),
    ("journal", "/no/such/folder/run.jsonl"),
]


@pytest.mark.parametrize(("option", "value"), BAD)
def test_bad_values_name_the_option(option, value):
    with pytest.raises(OptionError) as err:
        build_config({option: value}, TWO_CPUS)
    message = str(err.value)
    assert message.startswith("--" + option.replace("_", "-") + ":")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [("POOLBENCH_LABEL", "two words"), ("POOLBENCH_LABEL", "../up"), ("POOLBENCH_BACKEND", "vm")],
)
def test_bad_environment_overrides_name_the_variable(variable, value):
    with pytest.raises(OptionError) as err:
        build_config({}, TWO_CPUS, environ={variable: value})
    assert str(err.value).startswith(f"{variable}={value!r}")


def test_environment_label_and_backend_are_kept():
    cfg = build_config({}, TWO_CPUS, environ={"POOLBENCH_LABEL": "cpus-1.5", "POOLBENCH_BACKEND": "docker"})
    assert (cfg.label, cfg.runner) == ("cpus-1.5", "docker")
    assert (build_config({}, TWO_CPUS, environ={}).label, build_config({}, TWO_CPUS, environ={}).runner) == (
        None,
        "host",
    )


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(OptionError, match="serial, thread, interpreter, process, dask"):
        build_config({"executors": "serial,fiber"}, TWO_CPUS)


def test_workers_upper_bound_message():
    with pytest.raises(OptionError, match="1 to 1024"):
        parse_workers("0", 2)


def test_case_ids_are_readable_and_unique():
    cfg = build_config({"start_methods": "all", "workers": "1,2"}, TWO_CPUS)
    all_cases = [c for gen in cases.GENERATORS.values() for c in gen(cfg)]
    ids = [f"{c.case}:{c.id}" for c in all_cases]
    assert len(ids) == len(set(ids))
    assert "scaling:cpu_python-process-spawn-w2" in ids
    assert "scaling:cpu_python-serial-w1" in ids
    assert "dispatch:noop-process-fork-w2-c256" in ids
    assert "dispatch:noop-thread-w2-c16" not in ids  # chunksize only matters to processes
    assert "payload:echo-thread-w2-16MiB" in ids


def test_sweep_size_follows_the_options():
    cfg = build_config(
        {"workers": "1,2,4", "start_methods": "fork,spawn", "executors": "serial,thread,process"}, TWO_CPUS
    )
    scaling = cases.scaling_cases(cfg)
    # per workload and pass: serial + 3 thread + 3 × 2 process
    assert len(scaling) == cfg.settings["passes"] * len(cfg.workloads) * (1 + 3 + 6)
    only_threads = build_config({"executors": "thread", "workers": "2"}, TWO_CPUS)
    assert {c.executor for c in cases.scaling_cases(only_threads)} == {"thread"}
    assert cases.cold_start_cases(only_threads)[0].workers == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--workers=-1"],
        ["--workers", "x"],
        ["--workers="],
        ["--executors", "fiber"],
        ["--workloads", "nope"],
        ["--start-methods", "bogus"],
        ["--profile", "huge"],
        ["--cases", ""],
        ["--case-timeout", "-5"],
        ["--malloc", "jemalloc"],
        ["--benchmark-json", "/no/such/folder/out.json"],
    ],
)
def test_pytest_bench_usage_error_is_one_line_and_exit_code_4(args):
    done = run_module("pytest", "bench", "-p", "no:cacheprovider", *args, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: --")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_bad_cpu_override_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("POOLBENCH_CPUS", "lots")
    done = run_module("pytest", "bench", "-p", "no:cacheprovider", "--collect-only", "-q", timeout=120)
    assert done.returncode == 4
    assert "POOLBENCH_CPUS='lots'" in done.stdout + done.stderr


def test_across_builds_a_named_executor_the_build_lacks_is_left_out_and_nothing_left_fails():
    from common.environment import SKIP_MISSING_ENV  # noqa: PLC0415

    cpu = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)
    lacks = {"interpreter": "InterpreterPoolExecutor needs Python 3.14 or newer", "dask": None}
    asked = {"executors": "serial,thread,interpreter,process"}
    with pytest.raises(OptionError, match=r"--executors interpreter: InterpreterPoolExecutor needs Python 3\.14"):
        build_config(asked, cpu, environ={}, missing=lacks)  # one run on one Python: still an error
    cfg = build_config(asked, cpu, environ={SKIP_MISSING_ENV: "1"}, missing=lacks)  # a matrix across builds
    assert cfg.executors == ("serial", "thread", "process") and cfg.skipped_executors == ("interpreter",)
    with pytest.raises(OptionError, match=r"no pool of these runs on this Python \(interpreter: Interpreter"):
        build_config({"executors": "serial,interpreter"}, cpu, environ={SKIP_MISSING_ENV: "1"}, missing=lacks)
