"""The matrix driver: limit names, checks of the recorded limit, the affinity backend end to end.

The docker backend runs in .ci/run (it needs an engine, which these tests do not assume).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scripts import matrix
from scripts.matrix import Limit, MatrixError
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"


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
    names = matrix.services_in_file(COMPOSE)
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
    for name in matrix.CLUSTER_SERVICES:  # the dask cluster's services (profile "cluster") are not limits
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


def test_exit_code_2_is_an_interruption_only_when_the_suite_says_a_signal_stopped_it(tmp_path):
    lim = Limit.parse("cpuset-0")
    log = tmp_path / "run.log"
    out = tmp_path / "cpuset-0" / "run.json"
    log.write_text("..\npoolbench: SIGTERM: stopping the current case and saving the finished ones (at most 8 s)\n")
    stopped = matrix.classify(lim, 2, None, out=out, log=log, timeout=60)
    assert stopped.status == "interrupted"
    assert "interrupted by SIGTERM to its suite" in stopped.what and "no case had finished" in stopped.what
    log.write_text("ERROR collecting bench/bench_scaling.py\nInterrupted: 1 error during collection\n")
    broken = matrix.classify(lim, 2, None, out=out, log=log, timeout=60)
    assert broken.status == "failed" and "wrote no results (exit code 2" in broken.what
    by_driver = matrix.classify(lim, -15, "driver", out=out, log=log, timeout=60)
    assert by_driver.status == "interrupted" and "Ctrl-C or SIGTERM on the driver" in by_driver.what
