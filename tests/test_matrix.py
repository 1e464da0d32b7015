"""The matrix driver: limit names, checks of the recorded limit, the affinity backend end to end.

The docker backend runs in .ci/run (it needs an engine, which these tests do not assume).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from scripts import containers, limits, matrix
from scripts.limits import Limit, MatrixError, requirements_for
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
FIXTURE = ROOT / "tests" / "fixtures" / "quick-2cpus.json"


def test_limit_names_say_their_limit():
    assert Limit.parse("cpus-0.5") == Limit("cpus-0.5", quota=0.5)
    assert Limit.parse("cpus-2") == Limit("cpus-2", quota=2.0)
    assert Limit.parse("cpuset-0-1") == Limit("cpuset-0-1", cpuset=frozenset({0, 1}))
    assert Limit.parse("unlimited") == Limit("unlimited")
    with pytest.raises(MatrixError, match="does not say its limit"):
        Limit.parse("fast")


def test_recorded_limit_is_checked():
    half = Limit.parse("cpus-0.5")
    assert half.problem({"label": "cpus-0.5", "cpu_quota": 0.5}) is None
    assert "quota of None, expected 0.5" in half.problem({"label": "cpus-0.5", "cpu_quota": None})
    assert "labelled 'cpus-1'" in half.problem({"label": "cpus-1", "cpu_quota": 0.5})
    one = Limit.parse("cpuset-0")
    assert one.problem({"label": "cpuset-0", "affinity_cpus": 1}) is None
    assert "2 CPUs of affinity, expected 1" in one.problem({"label": "cpuset-0", "affinity_cpus": 2})


def test_compose_file_services_are_the_issue_limits():
    names = containers.services_in_file(COMPOSE)
    assert {"cpus-0.5", "cpus-1", "cpus-1.5", "cpus-2", "cpuset-0", "cpuset-0-1"} <= set(names)
    for name in names:
        Limit.parse(name)  # every service says its limit


def service_bodies(text: str) -> dict[str, list[str]]:
    """Each service's own setting lines (comments dropped), from the `services:` block."""
    bodies: dict[str, list[str]] = {}
    current = None
    for line in text.split("\nservices:\n", 1)[1].splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        if not line.startswith(" "):  # the next top-level key: the services are over
            break
        if line.startswith("  ") and not line.startswith("    "):
            current = line.strip().rstrip(":")
            bodies[current] = []
        elif current:
            bodies[current].append(line.strip())
    return bodies


def test_compose_services_differ_only_in_their_limit():
    text = COMPOSE.read_text()
    bodies = service_bodies(text)
    assert bodies.pop("unlimited") == ["<<: *bench"]
    assert len(bodies) >= 6
    for name in containers.CLUSTER_SERVICES:  # the dask cluster's services (profile "cluster") are not limits
        assert "<<: *cluster" in bodies.pop(name)[0] or name == "client", name
    for name, lines in bodies.items():
        assert lines[0] == "extends: unlimited", name
        assert len(lines) == 2 and lines[1].split(":")[0] in ("cpus", "cpuset"), name
    for setting in (
        "network_mode: none",
        "init: true",
        "read_only: true",
        "mem_limit:",
        "tmpfs:",
        'user: "10001:10001"',
    ):
        assert setting in text


def test_io_file_writes_to_a_volume_in_containers_not_the_tmpfs():
    # /tmp is a tmpfs in the containers: fsync there is free, and io_file would measure memory.
    text = COMPOSE.read_text()
    shared = text.split("\nservices:\n", 1)[0]
    assert "POOLBENCH_IO_DIR: /scratch" in shared
    assert "- scratch:/scratch" in shared
    assert "\nvolumes:\n  # " in text and "\n  scratch:" in text.split("\nvolumes:\n", 1)[1]
    assert "mkdir /scratch && chown bench:bench /scratch" in (ROOT / "docker" / "Dockerfile").read_text()


def test_selection_and_refusals():
    names = ["unlimited", "cpus-1", "cpuset-0"]
    assert [lim.name for lim in matrix.select(names, None, "docker")] == names
    assert [lim.name for lim in matrix.select(names, None, "affinity")] == ["unlimited", "cpuset-0"]
    assert [lim.name for lim in matrix.select(names, "cpuset-0, cpus-1", "docker")] == ["cpuset-0", "cpus-1"]
    with pytest.raises(MatrixError, match="unknown 'cpus-9'"):
        matrix.select(names, "cpus-9", "docker")
    with pytest.raises(MatrixError, match="needs cgroups"):
        matrix.select(names, "cpus-1", "affinity")
    with pytest.raises(MatrixError, match="empty value"):
        matrix.select(names, ",", "docker")


@pytest.mark.slow
def test_affinity_backend_runs_one_limit_at_a_time_and_labels_it(tmp_path):
    results = tmp_path / "matrix"
    done = run_module(
        "scripts.matrix",
        "--backend",
        "affinity",
        "--limits",
        "cpuset-0,unlimited",
        "--results",
        str(results),
        "--",
        "--passes",
        "1",
        "--cases",
        "scaling,default_workers",
        "--workloads",
        "io_sleep,cpu_python",
        "--workers",
        "1,2",
        "--executors",
        "serial,thread",
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[1/2] cpuset-0: running" in done.stdout
    assert "[2/2] unlimited: ok" in done.stdout
    assert "matrix: 2 of 2 limits ran and recorded their limit" in done.stdout
    (one,) = list((results / "cpuset-0").glob("*.json"))
    info = json.loads(one.read_text())["machine_info"]["poolbench"]
    assert (info["label"], info["backend"], info["affinity_cpus"]) == ("cpuset-0", "affinity", 1)
    assert info["effective_cpus"] == 1.0
    report = (results / "report" / "report.md").read_text()
    assert "cpuset-0 [affinity]" in report
    assert "## The default-workers trap" in report
    assert (results / "report" / "plots" / "default-workers.png").is_file()
    assert (results / "report" / "plots" / "scaling-io_sleep-by-limit.png").is_file()


def test_missing_cpus_fail_that_limit_and_the_exit_code(tmp_path):
    compose = tmp_path / "compose.yaml"
    missing = max(os.sched_getaffinity(0)) + 1
    compose.write_text(f"services:\n  cpuset-{missing}:\n    cpuset: '{missing}'\n")
    done = run_module(
        "scripts.matrix",
        *("--backend", "affinity", "--compose-file", str(compose), "--results", str(tmp_path / "r"), "--no-report"),
    )
    assert done.returncode == 1
    assert f"cpuset-{missing}: CPUs [{missing}] are not available here" in done.stdout
    assert "0 of 1 limits ran" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "affinity", "--limits", "cpus-1"], "needs cgroups"),
        (["--backend", "affinity", "--compose-file", "/nonexistent.yaml"], "no such compose file"),
        (["--profile", "huge"], "invalid choice"),
        (["--timeout", "0"], "--timeout"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message):
    done = run_module("scripts.matrix", *args, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [("POOLBENCH_MEMORY", "lots", "not a memory size"), ("BASE_IMAGE", " ", "set but empty")],
)
def test_bad_compose_variables_are_refused_before_anything_runs(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    done = run_module("scripts.matrix", "--backend", "affinity", "--limits", "cpuset-0", timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and variable in lines[0]


def test_exit_code_2_is_an_interruption_only_when_the_suites_status_file_names_a_signal(tmp_path):
    lim = Limit.parse("cpuset-0")
    log = tmp_path / "run.log"
    out = tmp_path / "cpuset-0" / "run.json"
    out.parent.mkdir()
    # the suite's structured signal, not its wording: the status file it writes at the signal
    matrix.status_file(out).write_text('{"stopped_by": "SIGTERM"}\n')
    log.write_text("anything at all\n")
    stopped = matrix.classify(lim, 2, None, out=out, log=log, timeout=60)
    assert matrix.status_file(out).name == "run.status"  # not *.json: not read as a results file
    assert stopped.status == "interrupted"
    assert "interrupted by SIGTERM to its suite" in stopped.what and "no case had finished" in stopped.what
    matrix.status_file(out).unlink()
    log.write_text("poolbench: SIGTERM: stopping the current case (only the words)\nInterrupted: 1 error\n")
    broken = matrix.classify(lim, 2, None, out=out, log=log, timeout=60)
    assert broken.status == "failed" and "wrote no results (exit code 2" in broken.what
    by_driver = matrix.classify(lim, -15, "driver", out=out, log=log, timeout=60)
    assert by_driver.status == "interrupted" and "Ctrl-C or SIGTERM on the driver" in by_driver.what


# --- the Python build axis (--pythons) -------------------------------------------------------------


def test_python_builds_are_parsed_in_order_and_unknown_ones_refused():
    assert matrix.parse_pythons("3.14, 3.11,3.14") == ("3.14", "3.11")
    with pytest.raises(MatrixError, match=r"--pythons: unknown build '3.12'; choose from 3.11, 3.13, 3.13t"):
        matrix.parse_pythons("3.11,3.12")
    with pytest.raises(MatrixError, match="empty value"):
        matrix.parse_pythons("3.11,")
    assert requirements_for("3.13t") == "requirements-measure.txt"  # no free-threaded matplotlib wheels
    assert requirements_for("3.14") == "requirements.txt requirements-cluster.txt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pythons", "3.12"], "unknown build '3.12'"),
        (["--pythons", "3.14", "--backend", "affinity"], "--pythons needs the docker backend"),
        (["--pythons", "3.14", "--cluster", "2xcpus-1"], "--pythons needs the docker backend"),
        (["--pythons", "3.14", "--base-image", "python:3.14-slim"], "drop --base-image"),
    ],
)
def test_bad_python_options_are_one_line_and_exit_2(args, message):
    done = run_module("scripts.matrix", *args, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_a_build_is_part_of_the_label_and_checked_in_the_results():
    lim = dataclasses.replace(Limit.parse("cpus-1"), python="3.13t")
    assert lim.label == "cpus-1-py3.13t" and lim.image == "poolbench:py3.13t"
    assert Limit.parse("cpus-1").label == "cpus-1" and Limit.parse("cpus-1").image is None
    recorded = {"label": "cpus-1-py3.13t", "cpu_quota": 1.0, "python_build": "3.13t"}
    assert lim.problem(recorded) is None
    assert lim.problem({**recorded, "python_build": "3.13"}) == "results record Python '3.13', expected 3.13t"
    assert "labelled 'cpus-1'" in lim.problem({**recorded, "label": "cpus-1"})


def test_a_free_threaded_run_says_whether_the_gil_stayed_off(tmp_path):
    lim = dataclasses.replace(Limit.parse("unlimited"), python="3.13t")
    data = json.loads((ROOT / "tests" / "fixtures" / "quick-2cpus.json").read_text())
    info = data["machine_info"]["poolbench"]
    info.update(label=lim.label, python_build="3.13t", free_threaded=True, gil_enabled=False)
    out = tmp_path / lim.label / "run.json"
    out.parent.mkdir()
    out.write_text(json.dumps(data))
    ok = matrix.classify(lim, 0, None, out=out, log=tmp_path / "log", timeout=60)
    assert ok.status == "ok" and ok.what.endswith("free-threaded, the GIL off"), ok.what
    info["gil_enabled"] = True  # an extension without free-threading support turned it back on
    out.write_text(json.dumps(data))
    on = matrix.classify(lim, 0, None, out=out, log=tmp_path / "log", timeout=60)
    assert on.what.endswith("the GIL was turned back on by an import"), on.what
    info["python_build"] = "3.13"
    out.write_text(json.dumps(data))
    wrong = matrix.classify(lim, 0, None, out=out, log=tmp_path / "log", timeout=60)
    assert wrong.status == "failed" and "expected 3.13t" in wrong.what


def test_a_build_that_cannot_be_had_is_left_out_and_the_others_go_on(monkeypatch, capsys):
    def base(build):
        if build == "3.14t":
            raise MatrixError("python-image.sh: 3.14t: Debian serves no CPython 3.14 source here; set PYTHON_SOURCE")
        return f"base:{build}"

    built = []

    def run(cmd, **kw):
        built.append((kw["env"]["BASE_IMAGE"], kw["env"]["POOLBENCH_IMAGE"], kw["env"]["POOLBENCH_REQUIREMENTS"]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(containers, "python_base", base)
    monkeypatch.setattr(containers, "_run", run)
    limits = [Limit.parse("cpus-1"), Limit.parse("cpus-0.5")]
    pairs, missing = containers.build_python_images(("3.14t", "3.13t", "3.11"), limits, ["docker", "compose"], [], 0.0)
    assert [p.label for p in pairs] == ["cpus-1-py3.13t", "cpus-0.5-py3.13t", "cpus-1-py3.11", "cpus-0.5-py3.11"]
    assert missing == ["py3.14t"]
    assert built == [
        ("base:3.13t", "poolbench:py3.13t", "requirements-measure.txt"),
        ("base:3.11", "poolbench:py3.11", "requirements.txt requirements-cluster.txt"),
    ]
    assert (
        "matrix: Python 3.14t left out: python-image.sh: 3.14t: Debian serves no CPython 3.14"
        in capsys.readouterr().out
    )


def test_python_image_script_names_what_it_cannot_make():
    done = subprocess.run(
        ["bash", str(ROOT / "docker" / "python-image.sh"), "2.7"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        "python-image.sh: no recipe for Python '2.7'; choose 3.11, 3.13, 3.13t, 3.14, 3.14t, 3.15 or 3.15t"
    )
    env = {**os.environ, "PATH": "/usr/bin:/bin", "BASE_NAME": "poolbench-test-absent:3.14t"}
    env.pop("PYTHON_SOURCE", None)
    done = subprocess.run(
        ["bash", str(ROOT / "docker" / "python-image.sh"), "3.14t"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "3.14t: Debian serves no CPython 3.14 source here (only binaries); run the GIL build 3.14" in last
    assert "or set PYTHON_SOURCE to a CPython 3.14 source tarball" in last


def test_the_315_build_installs_the_same_pins_but_numpy(tmp_path):
    """requirements-py315.txt: requirements-measure.txt and requirements-cluster.txt, NumPy's first 3.15 wheel."""

    def pins(*names: str) -> dict[str, str]:
        lines = [line.strip() for n in names for line in (ROOT / n).read_text().splitlines()]
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    py315 = pins("requirements-py315.txt")
    others = pins("requirements-measure.txt", "requirements-cluster.txt")
    assert set(py315) == set(others)
    assert {k for k in py315 if py315[k] != others[k]} == {"numpy"}
    assert requirements_for("3.15") == "requirements-py315.txt"
    assert "requirements-py315.txt" in (ROOT / "docker" / "Dockerfile").read_text()  # copied into the image
    assert matrix.parse_pythons("3.14,3.15,3.15t") == ("3.14", "3.15", "3.15t")


def test_a_run_across_builds_asks_the_suite_to_leave_out_executors_its_build_lacks(tmp_path):
    from common.environment import SKIP_MISSING_ENV  # noqa: PLC0415

    args = matrix.parse_args(["--backend", "docker", "--pythons", "3.14", "--limits", "cpus-1", "--", "-x"])
    compose = ["docker", "compose", "-f", "docker/compose.yaml"]
    across = dataclasses.replace(Limit.parse("cpus-1"), python="3.13t")
    cmd, *_ = matrix._suite_command(across, args, tmp_path, "r1", out=tmp_path / "o.json", compose=compose)
    assert f"{SKIP_MISSING_ENV}=1" in cmd and cmd.index(f"{SKIP_MISSING_ENV}=1") < cmd.index("cpus-1")
    one_image = Limit.parse("cpus-1")  # no build axis: an executor named and missing is still an error
    cmd, *_ = matrix._suite_command(one_image, args, tmp_path, "r1", out=tmp_path / "o.json", compose=compose)
    assert not any(SKIP_MISSING_ENV in c for c in cmd)


# --- workload files (--workload-file) -------------------------------------------------------------

SUMMING = """from workloads import Size, Workload

def task(n):
    return sum(range(n))

SIZES = {"quick": Size(1000, 4), "default": Size(2000, 4), "full": Size(4000, 4)}
WORKLOADS = [Workload(name="%s", func=task, kind="cpu-python", gil="holds", sizes=SIZES)]
"""


def _file(folder: Path, name: str, workload: str = "summing") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(SUMMING % workload)
    path.chmod(0o644)
    return path


def test_workload_files_are_mounted_read_only_and_named_to_the_suite_and_to_dask(tmp_path):
    a, b = _file(tmp_path / "x", "tasks_a.py", "summing_a"), _file(tmp_path / "y", "tasks_b.py", "summing_b")
    files = containers.check_workload_files([str(a), str(b), str(a)], "affinity")
    assert [f.host for f in files] == [a, b]  # each once, in order
    assert [f.inside for f in files] == ["/workloads/tasks_a.py", "/workloads/tasks_b.py"]
    override = containers.workloads_override(files, ["cpus-1", "scheduler", "worker"], tmp_path)
    body = json.loads(override.read_text())["services"]
    for service in ("cpus-1", "scheduler", "worker"):
        mounts = body[service]["volumes"]
        assert [(m["source"], m["target"], m["read_only"]) for m in mounts] == [
            (str(a), "/workloads/tasks_a.py", True),
            (str(b), "/workloads/tasks_b.py", True),
        ]
    from common.environment import WORKLOAD_FILES_ENV  # noqa: PLC0415

    assert body["cpus-1"]["environment"] == {WORKLOAD_FILES_ENV: "/workloads/tasks_a.py:/workloads/tasks_b.py"}
    # dask's own processes import the task functions by module name: the folder is on their path
    assert body["worker"]["environment"] == {"PYTHONPATH": "/opt/poolbench:/workloads"}
    assert body["scheduler"]["environment"] == body["worker"]["environment"]


def test_the_affinity_backend_passes_the_files_as_they_are(tmp_path):
    path = _file(tmp_path, "tasks_c.py", "summing_c")
    args = matrix.parse_args(["--backend", "affinity", "--workload-file", str(path), "--", "--cases", "scaling"])
    args.workload_files = containers.check_workload_files(args.workload_files, "affinity")
    cmd, *_ = matrix._suite_command(
        Limit.parse("cpuset-0"), args, tmp_path, "r1", out=tmp_path / "o.json", compose=None
    )
    assert cmd[cmd.index("--workload-file") + 1] == str(path)


def test_results_must_record_the_files_sha256_as_the_host_has_it(tmp_path):
    (f,) = containers.check_workload_files([str(_file(tmp_path, "tasks_d.py", "summing_d"))], "affinity")
    assert containers.files_problem({"workload_files": [{"workload": "summing_d", "sha256": f.sha256}]}, [f]) is None
    problem = containers.files_problem({"workload_files": [{"workload": "summing_d", "sha256": "0" * 64}]}, [f])
    assert problem == f"results do not record workload file tasks_d.py (sha256 {f.sha256[:12]}…) as the host has it"


def test_a_suite_that_refused_a_file_is_reported_with_its_one_line(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("starting\nERROR: workload file /workloads/t.py: importing it raised KeyError: 'X' (line 3); fix\n")
    done = matrix.classify(Limit.parse("cpus-1"), 4, None, out=tmp_path / "none.json", log=log, timeout=60)
    assert done.status == "failed"
    assert "wrote no results (exit code 4: workload file /workloads/t.py: importing it raised KeyError" in done.what


def test_a_suites_line_names_the_file_where_the_host_has_it(tmp_path):
    (f,) = containers.check_workload_files([str(_file(tmp_path, "tasks_h.py", "summing_h"))], "affinity")
    line = f"wrote no results (exit code 4: workload file {f.inside}: importing it raised KeyError: 'X' (line 3)"
    assert containers.host_paths(line, [f]) == line.replace(f.inside, str(f.host))
    assert str(f.host).startswith(str(tmp_path)) and f.inside == "/workloads/tasks_h.py"


def test_across_builds_the_driver_says_where_a_left_out_pool_ran(tmp_path):
    outcome = []
    for build, executors, skipped in (
        ("3.11", ["serial", "thread", "process"], [{"executor": "interpreter", "why": "needs Python 3.14"}]),
        ("3.14", ["serial", "thread", "interpreter", "process"], []),
    ):
        data = json.loads(FIXTURE.read_text())
        info = data["machine_info"]["poolbench"]
        info.update(python_build=build, skipped_executors=skipped, label=f"cpus-1-py{build}")
        info["config"]["executors"] = executors
        path = tmp_path / f"py{build}.json"
        path.write_text(json.dumps(data))
        outcome.append((f"cpus-1-py{build}", matrix.Outcome("ok", "ok", path)))
    assert limits.builds_lines(outcome) == [
        "matrix: interpreter left out of py3.11 (needs Python 3.14); it ran on py3.14"
    ]
    assert limits.builds_lines(outcome[:1]) == [
        "matrix: interpreter left out of py3.11 (needs Python 3.14); no build ran it"
    ]
    assert limits.builds_lines([]) == []


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--", "--workload-file", "x.py"], "--workload-file after --: a container cannot see the host's path"),
        ("missing", [], "workload file {path}: no such file; give the path of a Python file"),
        (
            "broken",
            [],
            "workload file {path}: syntax error on line 1: invalid syntax; fix the file (checked on this host",
        ),
        ("twice", [], "its name is the same as"),
    ],
)
def test_a_bad_workload_file_stops_the_matrix_before_anything_runs(tmp_path, setup, args, message):
    path = tmp_path / "mine" / "tasks_e.py"
    given: list[str] = []
    if setup == "broken":
        path.parent.mkdir()
        path.write_text("def task(:\n")
    elif setup == "twice":
        given = ["--workload-file", str(_file(tmp_path / "other", "tasks_e.py", "summing_f"))]
        _file(path.parent, path.name, "summing_e")
    if setup is not None:
        given = [*given, "--workload-file", str(path)]
    backend = ["--backend", "affinity", "--limits", "cpuset-0"]  # refusing a file needs no engine
    done = run_module("scripts.matrix", *backend, "--results", str(tmp_path / "r"), *given, *args, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(path=path) in lines[0], lines
    assert not (tmp_path / "r" / "cpuset-0").exists()  # nothing ran


def test_a_file_the_containers_user_cannot_read_is_refused_for_the_docker_backend():
    import tempfile  # noqa: PLC0415  (pytest's tmp_path is private to root: a container could read nothing there)

    folder = Path(tempfile.mkdtemp(prefix="poolbench-test-"))
    try:
        folder.chmod(0o755)
        path = _file(folder, "tasks_g.py", "summing_g")
        assert [f.host for f in containers.check_workload_files([str(path)], "docker")] == [path]
        path.chmod(0o600)
        with pytest.raises(MatrixError, match=r"cannot read it; `chmod o\+r .*tasks_g.py` \(and o\+x on its folders\)"):
            containers.check_workload_files([str(path)], "docker")
        path.chmod(0o644)
        folder.chmod(0o700)
        with pytest.raises(MatrixError, match="cannot read it"):
            containers.check_workload_files([str(path)], "docker")
        assert containers.check_workload_files([str(path)], "affinity")  # the host's own user reads it
    finally:
        folder.chmod(0o755)
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


def test_builds_after_the_first_reuse_its_task_sizes_so_that_all_do_the_same_work(tmp_path, monkeypatch):
    seen: list[tuple[str, str | None]] = []

    def fake_run_one(lim, args, results, run_id, compose, *, sizes_from=None):
        seen.append((lim.label, sizes_from))
        return matrix.Outcome("ok", "ok", results / lim.label / f"{run_id}.json")

    monkeypatch.setattr(matrix, "run_one", fake_run_one)
    monkeypatch.setattr(matrix.signal, "signal", lambda *a: None)  # the driver's handlers stay out of pytest
    limits = [dataclasses.replace(Limit.parse(n), python=b) for b in ("3.14", "3.15") for n in ("cpus-1", "cpuset-0")]
    args = matrix.parse_args(["--pythons", "3.14,3.15", "--limits", "cpus-1,cpuset-0"])
    matrix.run_limits(limits, args, tmp_path, ["docker", "compose"], 0.0)
    assert [label for label, _ in seen] == ["cpus-1-py3.14", "cpuset-0-py3.14", "cpus-1-py3.15", "cpuset-0-py3.15"]
    assert seen[0][1] is None and seen[1][1] is None  # the first build calibrates
    assert seen[2][1] is not None and seen[2][1].startswith("/results/cpus-1-py3.14/")  # as the container sees it
    assert seen[3][1] is not None and seen[3][1].startswith("/results/cpuset-0-py3.14/")
    # the user's own choice wins
    seen.clear()
    args = matrix.parse_args(["--pythons", "3.14,3.15", "--limits", "cpus-1", "--", "--sizes", "fixed"])
    matrix.run_limits(limits[::2], args, tmp_path, ["docker", "compose"], 0.0)
    assert [s for _, s in seen] == [None, None]
    compose = ["docker", "compose", "-f", "docker/compose.yaml"]
    cmd, *_ = matrix._suite_command(
        limits[2], args, tmp_path, "r1", out=tmp_path / "o.json", compose=compose, sizes_from="/results/a/b.json"
    )
    assert cmd[-2:] == ["--sizes-from", "/results/a/b.json"]


def test_each_suite_is_told_where_to_write_its_status(tmp_path):
    from common.environment import STATUS_FILE_ENV  # noqa: PLC0415

    args = matrix.parse_args(["--backend", "docker", "--limits", "cpus-1"])
    compose = ["docker", "compose", "-f", "docker/compose.yaml"]
    out = tmp_path / "cpus-1" / "r1.json"
    cmd, *_ = matrix._suite_command(Limit.parse("cpus-1"), args, tmp_path, "r1", out=out, compose=compose)
    assert f"{STATUS_FILE_ENV}=/results/cpus-1/r1.status" in cmd  # as the container sees the results folder
    args = matrix.parse_args(["--backend", "affinity", "--limits", "cpuset-0"])
    _, env, *_ = matrix._suite_command(Limit.parse("cpuset-0"), args, tmp_path, "r1", out=out, compose=None)
    assert env[STATUS_FILE_ENV] == str(tmp_path / "cpus-1" / "r1.status")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("services:\n  cpuset-0: [unclosed\n", "not a readable compose file (line 3); fix the file"),
        ("name: only\n", "has no services mapping"),
    ],
)
def test_a_compose_file_that_does_not_parse_is_one_line_for_the_affinity_backend(tmp_path, body, message):
    compose = tmp_path / "compose.yaml"
    compose.write_text(body)
    done = run_module(
        "scripts.matrix",
        *("--backend", "affinity", "--compose-file", str(compose), "--results", str(tmp_path / "r"), "--no-report"),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{compose}: {message}" in lines[0], lines


def test_services_are_read_with_a_yaml_parser_anchors_and_flow_style_included(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "x-base: &base {image: poolbench:local}\n"
        "services:\n"
        "  cpuset-0: {<<: *base, cpuset: '0'}\n"
        "  \"cpuset-0-1\":\n    <<: *base\n    cpuset: '0,1'\n"
        "  scheduler: {image: poolbench:local}\n"
    )
    assert containers.services_in_file(compose) == ["cpuset-0", "cpuset-0-1"]  # the cluster's services are not limits
