"""The matrix driver under interruption: a limit whose suite is stopped (`docker stop` on its
container, or SIGTERM to the suite of the affinity backend) is reported as interrupted with its
finished cases kept, and the driver goes on or stops as asked; Ctrl-C on the driver itself stops
the suite it runs (the container with it) and exits 130.

The docker tests need an engine (.ci/run starts one before the tests); elsewhere they are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scripts.results import load
from tests.test_faults import no_survivors

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: Enough cases that the suite is still running when the first has finished (quick profile).
SUITE_ARGS = ["--", "--cases", "scaling", "--workers", "1,2", "--passes", "1"]


def driver(results: Path, backend: str, limits: str, *extra: str) -> tuple[subprocess.Popen, str]:
    mark = uuid.uuid4().hex
    cmd = [sys.executable, "-m", "scripts.matrix", "--backend", backend, "--limits", limits, "--profile", "quick"]
    cmd += ["--results", str(results), "--no-report", *extra, *SUITE_ARGS]
    env = {**os.environ, "POOLBENCH_TEST_MARK": mark}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    return proc, mark


def wait_for_finished_case(folder: Path, proc: subprocess.Popen, timeout: float = 600) -> Path:
    """The journal in ``folder`` once it holds a finished case (the suite is running its next ones)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for journal in folder.glob("*.journal.jsonl"):
            if '"type": "benchmark"' in journal.read_text():
                return journal
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError(f"no case finished in {folder}")


def suite_pid(driver_pid: int) -> int:
    """The `pytest bench` child of the driver (affinity backend)."""
    import psutil  # noqa: PLC0415

    (child,) = [p for p in psutil.Process(driver_pid).children() if "pytest" in " ".join(p.cmdline())]
    return child.pid


def finished(results: Path, limit: str) -> set[str]:
    """Names of the cases a limit kept: its JSON if there is one, else its journal."""
    (saved,) = list((results / limit).glob("*.json")) or list((results / limit).glob("*.journal.jsonl"))
    return {r.name for r in load([saved])}


@pytest.mark.parametrize("on_interrupt", ["next", "stop"])
def test_a_stopped_suite_is_reported_as_interrupted_and_the_driver_goes_on_or_stops(tmp_path, on_interrupt):
    results = tmp_path / "matrix"
    proc, mark = driver(results, "affinity", "cpuset-0,unlimited", "--on-interrupt", on_interrupt)
    wait_for_finished_case(results / "cpuset-0", proc)
    os.kill(suite_pid(proc.pid), signal.SIGTERM)  # what `docker stop` does to the container's suite
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    assert "[1/2] cpuset-0: interrupted by SIGTERM to its suite (docker stop?)" in out
    assert finished(results, "cpuset-0")  # the finished cases are there
    assert "finished cases saved in" in out
    if on_interrupt == "next":
        assert "[2/2] unlimited: ok" in out
        assert "matrix: 1 of 2 limits ran and recorded their limit" in out
    else:
        assert "matrix: cpuset-0 was interrupted and --on-interrupt is stop; not run: unlimited" in out
        assert "[2/2]" not in out
        assert not (results / "unlimited").exists() or not list((results / "unlimited").iterdir())
    assert "interrupted: cpuset-0" in out
    assert not no_survivors(mark)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_on_the_driver_stops_its_suite_and_exits_130(tmp_path, sig):
    results = tmp_path / "matrix"
    proc, mark = driver(results, "affinity", "cpuset-0,unlimited")
    wait_for_finished_case(results / "cpuset-0", proc)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)  # Ctrl-C reaches the group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "matrix: stopping the running suite (interrupted)" in out
    assert "[1/2] cpuset-0: interrupted by Ctrl-C or SIGTERM on the driver" in out
    assert "not run: unlimited" in out
    assert finished(results, "cpuset-0")
    assert "Traceback" not in out
    assert not no_survivors(mark)


# --- docker --------------------------------------------------------------------------------------------


def _engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


needs_docker = pytest.mark.skipif(not _engine(), reason="no Docker engine answers (.ci/run starts one)")


def running_containers() -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "--filter", "name=poolbench-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def prepare_results(tmp_path: Path) -> Path:
    results = tmp_path / "matrix"
    results.mkdir()
    os.chmod(tmp_path, 0o755)  # the container's user reaches the mounted folder
    return results


@needs_docker
def test_docker_stop_on_a_matrix_container_keeps_its_cases_and_the_driver_goes_on(tmp_path):
    results = prepare_results(tmp_path)
    proc, _ = driver(results, "docker", "cpus-1,cpuset-0", "--timeout", "900")
    wait_for_finished_case(results / "cpus-1", proc, timeout=900)
    (container,) = running_containers()
    assert "cpus-1" in container
    stopped = subprocess.run(["docker", "stop", container], capture_output=True, text=True, check=False)
    assert stopped.returncode == 0, stopped.stderr
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 1, out
    assert "[1/2] cpus-1: interrupted by SIGTERM to its suite (docker stop?)" in out
    assert "[2/2] cpuset-0: ok" in out
    kept = finished(results, "cpus-1")
    assert kept
    (saved,) = list((results / "cpus-1").glob("*.json"))
    assert {b["name"] for b in json.loads(saved.read_text())["benchmarks"]} == kept
    assert not running_containers()


@needs_docker
def test_ctrl_c_on_the_docker_driver_stops_the_container(tmp_path):
    results = prepare_results(tmp_path)
    proc, _ = driver(results, "docker", "cpus-1,cpuset-0", "--timeout", "900")
    wait_for_finished_case(results / "cpus-1", proc, timeout=900)
    assert running_containers()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "[1/2] cpus-1: interrupted by Ctrl-C or SIGTERM on the driver" in out
    assert finished(results, "cpus-1")
    assert not running_containers()
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", "name=poolbench-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert not listed.stdout.split()  # --rm: no stopped container left behind either


def cluster_containers() -> list[str]:
    """Every container of the compose project, running or stopped (the cluster's scheduler and workers)."""
    done = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=poolbench", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


@needs_docker
@pytest.mark.interrupt_sweep  # a cluster start and stop: in .ci/run's sweep, not in README's test command
def test_ctrl_c_on_the_driver_of_a_container_cluster_takes_the_whole_cluster_down(tmp_path):
    results = prepare_results(tmp_path)
    cmd = [sys.executable, "-m", "scripts.matrix", "--cluster", "2xcpus-0.5", "--profile", "quick"]
    cmd += ["--results", str(results), "--no-report", "--timeout", "900", *SUITE_ARGS]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    wait_for_finished_case(results / "2xcpus-0.5", proc, timeout=900)  # the client is mid-run on the cluster
    assert len(cluster_containers()) >= 3  # scheduler, two workers (and the client)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, out
    assert "interrupted by Ctrl-C or SIGTERM on the driver" in out, out
    assert finished(results, "2xcpus-0.5")  # the finished dask cases are kept
    assert not cluster_containers(), out  # client, scheduler and workers all gone, none left stopped
