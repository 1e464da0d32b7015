"""The interpreter pool (InterpreterPoolExecutor, Python 3.14+): options, skips, which workloads
it runs, and how its results read in the report.

On a Python without it (the host's 3.11), the option logic and the case generation are checked
with what is installed stated explicitly; tests/fixtures/quick-2cpus-py3.14.json is a real run on
Debian's Python 3.14.10 (docker image built from docker/base-image.sh with SUITE=sid):
`pytest bench --profile quick --workers 1,2 --workloads cpu_python,io_sleep,numpy_ufunc`, trimmed
by scripts.evidence. The tests marked ``needs_interpreters`` run where the Python has the pool
(.ci/run runs them in that image).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from bench import cases, interpreters
from bench.config import OptionError, build_config
from bench.cpus import CpuInfo
from scripts import claims
from scripts.analysis import Analysis
from scripts.results import load
from tests.clirun import run_module
from workloads import overhead

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "quick-2cpus-py3.14.json"
TWO_CPUS = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)
HAS_POOL = {"interpreter": None, "dask": None}
NO_POOL = {"interpreter": "InterpreterPoolExecutor needs Python 3.14 or newer, and this is Python 3.11.7", "dask": None}
NUMPY_FAILS = {"numpy": "ImportError: module numpy._core._multiarray_umath does not support loading in subinterpreters"}
needs_interpreters = pytest.mark.skipif(not interpreters.available(), reason=str(interpreters.missing_line()))


def test_in_the_default_set_and_skipped_where_python_lacks_it():
    cfg = build_config({}, TWO_CPUS, missing=NO_POOL)
    assert cfg.executors == ("serial", "thread", "process")
    assert cfg.skipped_executors == ("interpreter",)
    everything = build_config({"executors": "all"}, TWO_CPUS, missing=NO_POOL)
    assert "interpreter" not in everything.executors and everything.skipped_executors == ("interpreter",)
    assert build_config({}, TWO_CPUS, missing=HAS_POOL).executors == ("serial", "thread", "interpreter", "process")


def test_named_on_a_python_without_it_is_an_error_that_says_why():
    with pytest.raises(OptionError) as err:
        build_config({"executors": "thread,interpreter"}, TWO_CPUS, missing=NO_POOL)
    assert str(err.value) == (
        "--executors interpreter: InterpreterPoolExecutor needs Python 3.14 or newer, and this is Python 3.11.7, "
        "or leave interpreter out"
    )


def test_the_missing_line_names_this_python():
    if interpreters.available():
        assert interpreters.missing_line() is None
    else:
        line = interpreters.missing_line()
        assert line is not None and line.endswith(".".join(map(str, sys.version_info[:3])))
        assert interpreters.probe_imports(["numpy"]) == {}  # nothing to ask


def _with_pool(imports: dict, **options: str) -> object:
    cfg = build_config({"workers": "1,2", **options}, TWO_CPUS, missing=HAS_POOL)
    return dataclasses.replace(cfg, executor_state={**cfg.executor_state, "interpreter": imports})


def test_workloads_whose_modules_do_not_import_in_a_subinterpreter_are_left_out_and_named():
    cfg = _with_pool(NUMPY_FAILS)
    under = {c.workload for c in cases.scaling_cases(cfg) if c.executor == "interpreter"}
    assert under == {"io_sleep", "io_file", "cpu_python", "zlib", "hash_alloc"}
    assert {c.workload for c in cases.scaling_cases(cfg) if c.executor == "thread"} >= {"numpy_ufunc", "numpy_matmul"}
    assert cases.left_out_lines(cfg) == [
        "interpreter pool leaves out numpy_object, numpy_ufunc, numpy_matmul: numpy does not import in a "
        f"subinterpreter ({NUMPY_FAILS['numpy']})"
    ]
    # a NumPy that supports subinterpreters one day: nothing left out
    assert cases.left_out_lines(_with_pool({"numpy": None})) == []
    assert {c.workload for c in cases.scaling_cases(_with_pool({"numpy": None})) if c.executor == "interpreter"} >= {
        "numpy_matmul"
    }
    # not probed at all: left out, never run blind
    assert interpreters.runnable(("numpy",), None) == "numpy does not import in a subinterpreter (not probed)"


def test_every_case_type_measures_the_interpreter_pool(monkeypatch):
    monkeypatch.setattr(
        cases,
        "executor_defaults",
        lambda: {"thread_max_workers": 6, "process_max_workers": 2, "interpreter_max_workers": 6},
    )
    cfg = _with_pool(NUMPY_FAILS)
    for name, generate in cases.GENERATORS.items():
        found = [c for c in generate(cfg) if c.executor == "interpreter"]
        assert found, name
    sizes = {c.sizing: c.workers for c in cases.default_workers_cases(cfg) if c.executor == "interpreter"}
    assert sizes == {"default": 6, "recommended": 2}
    assert "cpu_python-interpreter-w2" in {c.id for c in cases.scaling_cases(cfg)}


def test_import_errors_are_reported_as_their_innermost_cause(tmp_path, monkeypatch):
    (tmp_path / "wrapped_ext.py").write_text(
        "try:\n    raise ImportError('module _core does not support loading in subinterpreters')\n"
        "except ImportError as exc:\n    raise ImportError('\\n\\nIMPORTANT: PLEASE READ THIS FOR ADVICE') from exc\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert (
        overhead.import_error("wrapped_ext") == "ImportError: module _core does not support loading in subinterpreters"
    )
    assert overhead.import_error("json") is None
    assert overhead.import_error("no_such_module_here") == "ModuleNotFoundError: No module named 'no_such_module_here'"


def test_the_initializer_adds_the_suites_path_once(monkeypatch):
    monkeypatch.setattr(sys, "path", ["/usr/lib/python3"])
    overhead.extend_path(("/src", "/usr/lib/python3", "/extra"))
    assert sys.path == ["/src", "/extra", "/usr/lib/python3"]


@pytest.mark.slow
@pytest.mark.skipif(interpreters.available(), reason="this Python has InterpreterPoolExecutor")
def test_a_run_on_an_older_python_says_it_skipped_the_pool_and_refuses_it_when_named():
    done = run_module("pytest", "bench", "-p", "no:cacheprovider", "--cases", "dispatch", "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"poolbench: interpreter executor skipped: {interpreters.missing_line()}" in done.stdout + done.stderr
    assert "interpreter" not in done.stdout.replace("interpreter executor skipped", "")
    named = run_module("pytest", "bench", "-p", "no:cacheprovider", "--executors", "interpreter", "--collect-only")
    assert named.returncode == 4
    error = [line for line in (named.stdout + named.stderr).splitlines() if "--executors interpreter" in line]
    assert error and "needs Python 3.14 or newer" in error[0], named.stdout + named.stderr
    assert "Traceback" not in named.stdout + named.stderr


def _evidence() -> claims.Evidence:
    return claims.Evidence(load([FIXTURE]))


def test_a_314_run_reads_with_the_interpreter_pool_in_every_claim_it_bears_on():
    ev = _evidence()
    assert ev.run.poolbench["python_build"] == "3.14"
    assert ev.run.poolbench["interpreter"]["left_out"] == {
        "numpy_ufunc": f"numpy does not import in a subinterpreter ({NUMPY_FAILS['numpy']})"
    }
    gil = claims.claim_gil(ev)
    assert "interpreter pool (a GIL per subinterpreter): cpu_python " in gil.measured
    for claim in (claims.claim_memory, claims.claim_communication, claims.claim_startup):
        assert "; interpreter pool " in claim(ev).measured, claim.__name__
    crash = claims.claim_isolation(ev)
    assert "interpreter: exit: died" in crash.measured  # one process: a crash in a subinterpreter is the process's


def test_recommendations_rank_the_interpreter_pool_between_threads_and_processes():
    assert claims.COST_RANK["thread"] < claims.COST_RANK["interpreter"] < claims.COST_RANK["process"]
    rows = {row[0]: row for row in claims.recommend(_evidence())}
    assert "`interpreter`" in rows["cpu_python"][2]  # as fast as processes here, and cheaper
    assert "`thread`" in rows["io_sleep"][2]


@needs_interpreters
def test_interpreter_pool_runs_pure_python_tasks_and_refuses_numpy():
    imports = interpreters.probe_imports(["numpy", "zlib"])
    assert imports["zlib"] is None
    assert imports["numpy"] is None or "subinterpreter" in imports["numpy"]
    pool = interpreters.make(2)
    try:
        assert list(pool.map(overhead.noop, range(5))) == list(range(5))
        assert pool.submit(overhead.echo, b"x" * 1000).result() == b"x" * 1000
    finally:
        pool.shutdown(wait=True)


@pytest.mark.slow
@needs_interpreters
def test_a_quick_run_measures_the_interpreter_pool(tmp_path):
    out = tmp_path / "r.json"
    done = run_module(
        "pytest", "bench", "-p", "no:cacheprovider", "--profile", "quick", "--passes", "1", "--workers", "2",
        "--workloads", "cpu_python,numpy_ufunc", "--cases", "scaling,crash", "--executors", "serial,interpreter",
        "--benchmark-json", str(out), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    records = load([out])
    ran = {(r.case, r.workload) for r in records if r.executor == "interpreter"}
    assert ("scaling", "cpu_python") in ran and ("crash", "crash_segfault") in ran
    if records[0].run.poolbench["interpreter"]["imports"].get("numpy"):
        assert ("scaling", "numpy_ufunc") not in ran
        assert "interpreter pool leaves out numpy_ufunc" in done.stdout + done.stderr


USER_FILE = """from workloads import Size, Workload
%s
def task(n):
    return sum(range(n))

SIZES = {"quick": Size(1000, 4), "default": Size(2000, 4), "full": Size(4000, 4)}
WORKLOADS = [Workload(name="%s", func=task, kind="cpu-python", gil="holds", sizes=SIZES)]
"""


def test_a_users_workload_needs_its_own_module_in_every_worker():
    from workloads import registry  # noqa: PLC0415

    w = registry.Workload("mine", overhead.noop, "cpu-python", "holds", {}, needs=("numpy",))
    registry.register_user(w, "/somewhere/overhead.py")
    try:
        assert registry.USER["mine"].needs == ("numpy", "workloads.overhead")  # probed like any module it needs
    finally:
        del registry.USER["mine"]


@pytest.mark.slow
@needs_interpreters
def test_a_workload_file_from_outside_the_checkout_runs_in_the_interpreter_pool_or_is_left_out(tmp_path):
    plain = tmp_path / "elsewhere" / "plain_tasks.py"
    plain.parent.mkdir()
    plain.write_text(USER_FILE % ("", "summing"))
    numpy_file = tmp_path / "elsewhere" / "numpy_tasks.py"  # NumPy 2.4 does not load in a subinterpreter
    numpy_file.write_text(USER_FILE % ("import numpy", "summing_np"))
    out = tmp_path / "r.json"
    done = run_module(
        "pytest", "bench", "-p", "no:cacheprovider", "--profile", "quick", "--passes", "1", "--workers", "2",
        "--workload-file", str(plain), "--workload-file", str(numpy_file), "--workloads", "summing,summing_np",
        "--cases", "scaling", "--executors", "serial,interpreter", "--benchmark-json", str(out), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    records = load([out])
    ran = {r.workload for r in records if r.executor == "interpreter"}
    assert "summing" in ran  # each subinterpreter imported the file by its name
    if records[0].run.poolbench["interpreter"]["imports"].get("numpy_tasks"):
        assert "summing_np" not in ran
        assert "interpreter pool leaves out summing_np: numpy_tasks does not import in a subinterpreter" in (
            done.stdout + done.stderr
        )
    else:  # a NumPy that loads in subinterpreters: the workload runs there too
        assert "summing_np" in ran


def test_results_of_two_builds_are_labelled_by_build_and_compared_side_by_side(tmp_path):
    host = ROOT / "tests" / "fixtures" / "quick-2cpus.json"  # Python 3.11.7
    records = load([host, FIXTURE])
    assert {r.run.label for r in records} == {"2 CPUs py3.11", "2 CPUs py3.14"}
    assert {r.run.label for r in load([FIXTURE])} == {"2 CPUs"}  # one build: labels unchanged
    done = run_module("scripts.report", str(host), str(FIXTURE), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "report.md").read_text()
    section = report[report.index("## Across Python builds") : report.index("## The default-workers trap")]
    assert "| topic | py3.11 | py3.14 |" in section
    assert "| GIL | depends: confirmed for code that holds the GIL" in section
    changes, _, costs = section.partition("### Pool costs by build")
    rows = [line for line in changes.splitlines() if line.startswith("| py3.")]
    assert [r.split(" | ")[0] for r in rows] == ["| py3.11", "| py3.14"]
    # the fixtures ran cold_start: each build's pools' start-up side by side, the interpreter pool's on 3.14
    cost_rows = {line.split(" | ")[0]: line for line in costs.splitlines() if line.startswith("| py3.")}
    assert set(cost_rows) == {"| py3.11", "| py3.14"}
    header = next(line for line in costs.splitlines() if line.startswith("| build"))
    assert header.split(" | ")[1] == "interpreter start-up"
    assert cost_rows["| py3.11"].split(" | ")[1] == "—" and cost_rows["| py3.14"].split(" | ")[1].endswith(" ms")
    assert rows[0].split(" | ")[4] == "—" and rows[1].split(" | ")[4].endswith("]")  # interpreter pool: 3.14 only
    assert "interpreter " in rows[1].split(" | ")[6]  # memory per added subinterpreter, beside the process pool's
    assert "## Recommendation for this machine (2 CPUs py3.14" in report
    assert (tmp_path / "plots" / "scaling-cpu_python-by-limit.png").exists()  # one line per build and pool


def test_the_figure_across_runs_says_its_lines_are_builds(tmp_path, monkeypatch):
    from scripts import plot  # noqa: PLC0415

    titles = []
    monkeypatch.setattr(plot, "save", lambda fig, out, stem: titles.append(fig._suptitle.get_text()) or [])
    records = load([ROOT / "tests" / "fixtures" / "quick-2cpus.json", FIXTURE])
    by_workload = [p for p in Analysis(records).points if p.workload == "cpu_python"]
    plot.plot_by_limit(by_workload, tmp_path)
    assert titles == [
        "cpu_python: speedup per CPU limit and Python build (dashed: each one's ideal; bars: 95 % intervals)"
    ]


def test_a_probe_that_cannot_run_leaves_every_needing_workload_out(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def broken(_task, name):
        raise ModuleNotFoundError("No module named 'workloads'")  # as a subinterpreter without the suite's path

    class Pool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            return super().submit(broken, fn, *args)

    monkeypatch.setattr(interpreters, "available", lambda: True)
    monkeypatch.setattr(interpreters, "make", Pool)
    found = interpreters.probe_imports(["numpy", "numpy"])
    assert found == {"numpy": "the import probe failed: ModuleNotFoundError: No module named 'workloads'"}
    assert interpreters.runnable(("numpy",), found).startswith("numpy does not import in a subinterpreter (the import")


def test_pool_costs_by_build_set_start_up_and_payload_side_by_side():
    from scripts.builds import BuildRow, pool_costs_by_build  # noqa: PLC0415

    def row(build: str, start: dict, payload: dict) -> BuildRow:
        return BuildRow(build, build, True, 0.1, {}, {}, start_ms=start, payload_ms_per_mib=payload)

    rows = [
        row(
            "3.14", {"interpreter": 35.8, "process/forkserver": 31.5}, {"interpreter": 0.25, "process/forkserver": 1.9}
        ),
        row("3.15", {"interpreter": 27.0}, {"interpreter": 0.2}),
        row("3.11", {}, {}),  # measured neither: left out of the table
    ]
    lines = pool_costs_by_build(rows)
    assert "### Pool costs by build" in lines
    header = next(line for line in lines if line.startswith("| build"))
    assert header == (
        "| build | interpreter start-up | process/forkserver start-up | interpreter payload per MiB "
        "| process/forkserver payload per MiB |"
    )
    assert "| py3.14 | 35.8 ms | 31.5 ms | 0.25 ms | 1.90 ms |" in lines  # interpreter first, then the processes
    assert "| py3.15 | 27.0 ms | — | 0.20 ms | — |" in lines
    assert not any(line.startswith("| py3.11") for line in lines)
    assert pool_costs_by_build(rows[:1]) == []  # one build: nothing to set side by side
