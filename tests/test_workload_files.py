"""Your own workloads (`--workload-file`): they run like the built-ins under every executor and start
method, reach the results, report, export and gate, and a bad file ends in one line and exit 4
before any case runs.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from bench import cluster
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hashing.py"
pytestmark = pytest.mark.slow


def bench(*args: str, env: dict | None = None):
    return run_module(
        "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", "quick", "--passes", "1", *args, env=env
    )


def test_the_example_runs_under_every_start_method_and_reaches_report_export_and_gate(tmp_path):
    out = tmp_path / "out.json"
    elsewhere = tmp_path / "elsewhere" / "hashing.py"  # outside the checkout: workers find it by sys.path
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(EXAMPLE.read_bytes())
    dask = ["dask"] if cluster.available() else []
    done = bench(
        *("--workload-file", str(elsewhere), "--workloads", "sha256,cpu_python", "--cases", "scaling"),
        *("--executors", ",".join(["serial", "thread", "process", *dask]), "--dask-configs", "tuned"),
        *("--workers", "1,2", "--start-methods", "fork,forkserver,spawn", "--benchmark-json", str(out)),
    )
    assert done.returncode == 0, done.stdout[-3000:]
    data = json.loads(out.read_text())
    names = {b["name"] for b in data["benchmarks"]}
    for method in ("fork", "forkserver", "spawn"):
        assert f"test_scaling[sha256-process-{method}-w2]" in names
    assert {"test_scaling[sha256-serial-w1]", "test_scaling[sha256-thread-w2]"} <= names
    if dask:  # the LocalCluster's worker processes imported the file by its name, as spawn workers do
        assert "test_scaling[sha256-dask-tuned-w2]" in names
    sha = next(b["extra_info"] for b in data["benchmarks"] if b["name"] == "test_scaling[sha256-thread-w2]")
    sized = data["machine_info"]["poolbench"]["sizes"]["sha256"]
    assert sized["method"] == "calibrated" and sized["task_s"] > 0  # scale=1: sized to this host
    assert (sha["kind"], sha["gil"], sha["task_param"]) == ("cpu-native", "releases", sized["param"])
    (recorded,) = data["machine_info"]["poolbench"]["workload_files"]
    assert recorded["workload"] == "sha256" and recorded["file"] == str(elsewhere)
    assert len(recorded["sha256"]) == 64
    assert "sha256" in data["machine_info"]["poolbench"]["config"]["workloads"]

    report = run_module("scripts.report", str(out), "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| sha256 | cpu-native, releases the GIL |" in text  # a recommendation
    assert "sha256 (releases)" in text  # the GIL claim weighs it too
    assert (tmp_path / "r" / "plots" / "scaling-sha256.png").is_file()
    export = run_module("scripts.export", str(out), "--out", str(tmp_path / "e.json"))
    assert export.returncode == 0
    assert any("/sha256/" in e["name"] for e in json.loads((tmp_path / "e.json").read_text()))
    gate = run_module("scripts.compare", str(out), str(out))
    # a run against itself passes, unless the run measured itself denied CPU: then the gate cannot tell
    denied = (json.loads(out.read_text())["machine_info"]["poolbench"]["cpu_denied"] or {}).get("denied")
    assert gate.returncode == (3 if denied else 0), gate.stdout
    assert "sha256" in gate.stdout


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    from workloads import Size, Workload

    def task(n):
        return sum(range(n))

    def check(n, result):
        return result == n * (n - 1) // 2

    SIZES = {"quick": Size(1000, 4), "default": Size(2000, 4), "full": Size(4000, 4)}
    WORKLOADS = [Workload(name="summing", func=task, kind="cpu-python", gil="holds", sizes=SIZES, check=check)]
"""


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("missing.py", None, "no such file"),
        ("broken.py", "def task(:\n", "syntax error on line 1"),
        ("raising.py", "raise RuntimeError('no database here')\n", "importing it raised RuntimeError: no database"),
        ("empty.py", "X = 1\n", "defines no WORKLOADS"),
        ("notalist.py", "WORKLOADS = 'sha'\n", "WORKLOADS is not a non-empty list"),
        ("wrongtype.py", "WORKLOADS = [{'name': 'x'}]\n", "WORKLOADS[0] is a dict, not a Workload"),
        ("clash.py", GOOD.replace('name="summing"', 'name="cpu_python"'), "'cpu_python' clashes with a built-in"),
        ("lambdas.py", GOOD.replace("func=task", "func=lambda n: n"), "its func cannot be pickled"),
        ("sizes.py", GOOD.replace(', "full": Size(4000, 4)', ""), "sizes has ['default', 'quick']"),
        ("kinds.py", GOOD.replace('kind="cpu-python"', 'kind="gpu"'), "kind 'gpu'"),
        ("json.py", GOOD, "its module name 'json' is already taken"),
    ],
)
def test_a_bad_workload_file_is_one_line_and_exit_4_before_any_case(tmp_path, name, body, problem):
    path = tmp_path / name if body is None else write(tmp_path, name, body)
    done = bench("--workload-file", str(path), "--cases", "scaling", "--executors", "serial")
    assert done.returncode == 4, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: workload file {path.resolve()}: "), errors[0]
    assert problem in errors[0], errors[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert "passed" not in done.stdout


#: A file that imports in the run's process and fails in any worker that starts afresh.
ONLY_IN_THE_PARENT = (
    """
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        raise RuntimeError("needs the licence the parent holds")
"""
    + GOOD
)


@pytest.mark.parametrize(
    ("executors", "place"),
    [
        (["--executors", "serial,process", "--start-methods", "fork,spawn"], "in a process worker (spawn)"),
        (["--executors", "serial,process", "--start-methods", "forkserver"], "in a process worker (forkserver)"),
        pytest.param(
            ["--executors", "serial,dask"],
            "(LocalCluster)",
            marks=pytest.mark.skipif(not cluster.available(), reason=cluster.missing_line()),
        ),
    ],
)
def test_a_file_that_fails_in_a_fresh_worker_is_one_line_and_exit_4_before_any_case(tmp_path, executors, place):
    path = write(tmp_path, "parentonly.py", ONLY_IN_THE_PARENT)
    done = bench("--workload-file", str(path), "--cases", "scaling", "--workloads", "summing", *executors)
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: workload file {path.resolve()}: importing it raised RuntimeError: "), errors
    assert "needs the licence the parent holds (line 4)" in errors[0] and place in errors[0], errors[0]
    assert "make the file import in a fresh process" in errors[0]
    assert "Traceback" not in done.stdout + done.stderr and "passed" not in done.stdout


def test_fork_workers_and_threads_need_no_fresh_import(tmp_path):
    path = write(tmp_path, "parentonly.py", ONLY_IN_THE_PARENT)
    out = tmp_path / "out.json"
    done = bench("--workload-file", str(path), "--cases", "scaling", "--workloads", "summing",
                 "--executors", "serial,thread,process", "--start-methods", "fork", "--workers", "2",
                 "--benchmark-json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    names = {b["name"] for b in json.loads(out.read_text())["benchmarks"]}
    assert "test_scaling[summing-process-fork-w2]" in names


def test_a_workload_whose_check_fails_fails_its_cases_and_one_without_a_check_runs(tmp_path):
    wrong = write(tmp_path, "wrongcheck.py", GOOD.replace("return result == n * (n - 1) // 2", "return False"))
    unchecked = write(
        tmp_path, "nocheck.py", GOOD.replace('name="summing"', 'name="adding"').replace(", check=check", "")
    )
    out = tmp_path / "out.json"
    env = {**os.environ, "POOLBENCH_WORKLOAD_FILES": f"{wrong}:{unchecked}"}
    done = bench("--cases", "scaling", "--workloads", "summing,adding", "--executors", "serial,thread",
                 "--workers", "2", "--benchmark-json", str(out), env=env)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    # the warm-up batch (one task per worker) is checked first
    assert "WrongAnswer: summing-serial-w1 (warm-up batch): task 0 returned a wrong answer" in done.stdout
    saved = {b["name"] for b in json.loads(out.read_text())["benchmarks"]}
    assert saved == {"test_scaling[adding-serial-w1]", "test_scaling[adding-thread-w2]"}


def test_what_a_worker_found_becomes_one_line_with_the_fix_for_that_place():
    from bench.preflight import problem_line  # noqa: PLC0415

    sha = "a" * 64
    assert problem_line("/w/t.py", "a process worker (spawn)", None, sha, sha) is None
    missing = problem_line("/w/t.py", "dask worker tcp://10.0.0.2:4000 of the cluster at tcp://s:8786",
                           "cannot be read there (No such file or directory)", None, sha, elsewhere=True)  # fmt: skip
    assert missing == (
        "workload file /w/t.py: cannot be read there (No such file or directory) in dask worker tcp://10.0.0.2:4000 "
        "of the cluster at tcp://s:8786; mount it at the same path in every worker (scripts.matrix --workload-file "
        "does, for its containers)"
    )
    here = problem_line("/w/t.py", "a process worker (spawn)", "cannot be read there (Permission denied)", None, sha)
    assert here is not None and here.endswith("keep the file where the run found it until the run ends")
    other = problem_line("/w/t.py", "the dask scheduler of the cluster at tcp://s:8786", None, "b" * 64, sha)
    assert other is not None and "sees another version of it (sha256 bbbbbbbbbbbb…, the run's aaaaaaaaaaaa…)" in other
    raised = problem_line(
        "/w/t.py", "a process worker (forkserver)", "importing it raised KeyError: 'X' (line 3)", sha, sha
    )
    assert raised is not None and raised.endswith(
        "in a process worker (forkserver); make the file import in a fresh process: a worker imports it by its "
        "module name and gets nothing from the run's process but sys.path"
    )


def test_a_worker_imports_a_file_by_its_name_and_says_what_it_found(tmp_path, monkeypatch):
    import sys  # noqa: PLC0415

    from workloads import overhead  # noqa: PLC0415

    good = write(tmp_path, "fresh_ok.py", GOOD)
    bad = write(tmp_path, "fresh_bad.py", "X = {}['missing']\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        found = overhead.import_files_here((str(good), str(bad), str(tmp_path / "gone.py")))
    finally:
        for name in ("fresh_ok", "fresh_bad"):
            sys.modules.pop(name, None)
    (p1, none, sha), (p2, problem, _), (p3, unread, no_sha) = found
    assert (p1, none, len(sha)) == (str(good), None, 64)
    assert p2 == str(bad) and problem == "importing it raised KeyError: 'missing' (line 1)"
    assert p3.endswith("gone.py") and unread.startswith("cannot be read there") and no_sha is None
    assert str(tmp_path) in sys.path  # the folder joins the worker's path, as in the run's process
