"""Faults, hangs and interruptions: the suite keeps going, cleans up and loses nothing.

Each test runs the real `pytest bench` in a subprocess with faults injected (tests/fault_plugin.py)
and a marker in its environment, then looks for any process that still carries the marker.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from bench.config import default_start_method
from scripts.results import ResultsError, load

ROOT = Path(__file__).resolve().parents[1]
#: Case ids carry the platform's default start method (fork on Linux up to 3.13, forkserver from 3.14).
METHOD = default_start_method()
pytestmark = pytest.mark.slow


def marked(mark: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``mark`` (the run under test and its descendants)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("POOLBENCH_TEST_MARK") == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def no_survivors(mark: str, within: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def bench(tmp_path: Path, fault: str, *args: str, json_out: bool = True) -> tuple[list[str], dict]:
    mark = uuid.uuid4().hex
    env = {**os.environ, "POOLBENCH_TEST_FAULT": fault, "POOLBENCH_TEST_MARK": mark}
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-p", "tests.fault_plugin", "-q"]
    cmd += ["--profile", "quick", "--passes", "1", *args]
    if json_out:
        cmd += ["--benchmark-json", str(tmp_path / "out.json")]
    return cmd, env | {"_mark": mark}


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    clean = {k: v for k, v in env.items() if k != "_mark"}
    return subprocess.Popen(cmd, cwd=ROOT, env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_journal(journal: Path, proc: subprocess.Popen, cases: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"type": "benchmark"') >= cases:
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    raise AssertionError(f"{journal} did not reach {cases} cases")


def wait_for_workers(proc: subprocess.Popen, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(psutil.Process(proc.pid).children(recursive=True)) >= count:
                return
        except psutil.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the run did not start {count} workers")


def test_a_hung_task_fails_its_case_and_the_run_goes_on(tmp_path):
    cmd, env = bench(
        tmp_path,
        "hang:io_sleep",
        "--case-timeout",
        "3",
        "--cases",
        "scaling",
        "--workloads",
        "io_sleep,cpu_python",
        "--executors",
        "serial,thread,process",
        "--workers",
        "2",
    )
    proc = start(cmd, env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "CaseTimeout: case ran past --case-timeout 3 s" in out
    failed = {line.split()[1].split("::")[1] for line in out.splitlines() if line.startswith("FAILED ")}
    assert failed == {
        "test_scaling[io_sleep-serial-w1]",
        "test_scaling[io_sleep-thread-w2]",
        f"test_scaling[io_sleep-process-{METHOD}-w2]",
    }
    names = {b["name"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]}
    assert names == {
        "test_scaling[cpu_python-serial-w1]",
        "test_scaling[cpu_python-thread-w2]",
        f"test_scaling[cpu_python-process-{METHOD}-w2]",
    }
    assert not no_survivors(env["_mark"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_saves_finished_cases_and_leaves_no_worker(tmp_path, sig):
    cmd, env = bench(
        tmp_path,
        "hang:cpu_python",
        "--sizes",
        "fixed",  # a hanging task would hang its calibration too (bounded by --case-timeout, here none)
        "--case-timeout",
        "0",
        "--cases",
        "scaling",
        "--workloads",
        "io_sleep,cpu_python",
        "--executors",
        "process",
        "--workers",
        "4",
    )
    proc = start(cmd, env)
    wait_for_journal(tmp_path / "out.journal.jsonl", proc, cases=1)  # io_sleep finished
    wait_for_workers(proc, 4)  # cpu_python's pool is up and hanging
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in out
    saved = json.loads((tmp_path / "out.json").read_text())
    assert [b["name"] for b in saved["benchmarks"]] == [f"test_scaling[io_sleep-process-{METHOD}-w4]"]
    assert not no_survivors(env["_mark"])


#: The platform's default and forkserver: a forkserver worker's parent is the fork server, which
#: outlives a SIGKILLed suite (its workers hold its "alive" pipe), so dying with the parent is not
#: enough there (bench.workers.die_with_owner).
KILL_METHODS = sorted({METHOD, "forkserver"} & set(multiprocessing.get_all_start_methods()))


@pytest.mark.parametrize("method", KILL_METHODS)
def test_killed_run_keeps_finished_cases_in_the_journal_and_leaves_no_worker(tmp_path, method):
    cmd, env = bench(
        tmp_path,
        "hang:cpu_python",
        "--sizes",
        "fixed",  # a hanging task would hang its calibration too (bounded by --case-timeout, here none)
        "--case-timeout",
        "0",
        "--cases",
        "scaling",
        "--workloads",
        "io_sleep,io_file,cpu_python",
        "--executors",
        "process",
        "--start-methods",
        method,
        "--workers",
        "4",
    )
    proc = start(cmd, env)
    journal = tmp_path / "out.journal.jsonl"
    wait_for_journal(journal, proc, cases=2)
    wait_for_workers(proc, 4)
    proc.kill()  # SIGKILL: no handler runs, nothing is flushed at exit
    proc.communicate(timeout=60)
    assert not (tmp_path / "out.json").exists()
    records = load([journal])
    assert {r.name for r in records} == {
        f"test_scaling[io_file-process-{method}-w4]",
        f"test_scaling[io_sleep-process-{method}-w4]",
    }
    assert all(len(r.samples) >= 1 and r.extra["case"] == "scaling" for r in records)
    assert not no_survivors(env["_mark"])  # workers die with their parent, and with the suite


def test_journal_reader_skips_a_cut_short_last_line_and_refuses_damage(tmp_path):
    cmd, env = bench(tmp_path, "", "--cases", "dispatch", "--executors", "serial,thread")
    proc = start(cmd, env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    journal = tmp_path / "out.journal.jsonl"
    lines = journal.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "run" and len(lines) == 3
    full = load([journal])
    assert {r.name for r in full} == {b["name"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]}
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    assert len(load([cut])) == len(full) - 1
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join([lines[0], "{oops", lines[2]]) + "\n")
    with pytest.raises(ResultsError, match="line 2 is not JSON"):
        load([damaged])
    header_only = tmp_path / "header.jsonl"
    header_only.write_text(lines[0] + "\n")
    with pytest.raises(ResultsError, match="holds no finished case"):
        load([header_only])


def test_result_files_are_written_whole_and_never_overwritten(tmp_path):
    storage = tmp_path / "store"
    cmd, env = bench(
        tmp_path,
        "",
        "--cases",
        "dispatch",
        "--executors",
        "serial",
        "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}",
        json_out=False,
    )
    for _ in range(2):
        proc = start(cmd, env)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    saved = sorted(p.name.split("_")[0] for p in storage.glob("*/*.json"))
    assert saved == ["0001", "0002"]  # the second run did not replace the first
    assert not list(storage.rglob(".*"))  # no temporary files left behind
    for path in storage.glob("*/*.json"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
        json.loads(path.read_text())
    assert len(list(storage.glob("*/journal-*.jsonl"))) == 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _child_memory_cgroup(limit_bytes: int) -> Path | None:
    """A new cgroup-v1 memory cgroup under this process's own, limited to ``limit_bytes``; None if not allowed."""
    from bench.cpus import read_memory_cgroup  # noqa: PLC0415

    memory = read_memory_cgroup()
    if memory.version != 1 or memory.directory is None or os.geteuid() != 0:
        return None
    child = Path(memory.directory) / f"poolbench-test-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
        (child / "memory.limit_in_bytes").write_text(str(limit_bytes))
        if (child / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
            (child / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
    except OSError:
        if child.exists():
            child.rmdir()
        return None
    return child


def test_a_case_over_its_memory_limit_fails_with_the_reason_and_the_run_goes_on(tmp_path):
    cgroup = _child_memory_cgroup(400 * 2**20)
    if cgroup is None:
        pytest.skip("needs root and a cgroup-v1 memory controller to impose a memory limit")
    try:
        cmd, env = bench(
            tmp_path,
            "hog:cpu_python",
            "--sizes",
            "fixed",  # calibration would run the 1 GiB task in the suite's own process
            "--cases",
            "scaling",
            "--workloads",
            "io_sleep,cpu_python",
            "--executors",
            "process",
            "--workers",
            "1",
        )
        inner = " ".join(f"'{c}'" for c in cmd)
        proc = start(["sh", "-c", f"echo $$ > {cgroup}/cgroup.procs && exec {inner}"], env)
        out, _ = proc.communicate(timeout=300)
    finally:
        cgroup.rmdir()
    assert proc.returncode == 1, out
    assert "a worker was killed by the out-of-memory killer" in out
    assert "the memory limit (400 MiB)" in out
    names = {b["name"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]}
    assert names == {f"test_scaling[io_sleep-process-{METHOD}-w1]"}
    assert not no_survivors(env["_mark"])


_TREE = """
import subprocess, sys, time
import psutil
from bench import stopping
grandchild = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", grandchild])
time.sleep(1)
tree = psutil.Process().children(recursive=True)
print(len(tree), stopping.kill_descendants(), sum(p.is_running() and p.status() != "zombie" for p in tree))
"""


def test_the_final_kill_freezes_and_kills_the_whole_tree():
    """bench.stopping.kill_descendants: every descendant (a child and its own child) frozen, then gone."""
    done = subprocess.run(
        [sys.executable, "-c", _TREE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    found, killed, alive = map(int, done.stdout.split())
    assert found == 2 and killed == 2 and alive == 0


_REFUSE = """
import multiprocessing, threading
from bench import stopping
stopping.refuse_new_processes()
stopping.STATE.signal = "SIGINT"
seen = []
def start():
    try:
        multiprocessing.get_context("spawn").Process(target=print).start()
        seen.append("started")
    except stopping.StoppingError as exc:
        seen.append(str(exc))
t = threading.Thread(target=start)
t.start(); t.join()
main = multiprocessing.get_context("fork").Process(target=print)
main.start(); main.join()
print(seen[0]); print("main", main.exitcode)
"""


_HELD_DURING_START = """
import multiprocessing, os, signal, sys
from bench import stopping
stopping.install(where_saved=lambda: "")
seen = []

class Started(multiprocessing.get_context("fork").Process):
    def _check_closed(self):  # called inside Process.start, before the child exists: the signal lands mid-start
        if not seen:
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("signalled")
        return super()._check_closed()

p = Started(target=print)
try:
    p.start()
    seen.append("start returned")
    p.join()
    stopping.checkpoint()
    seen.append("not raised")
except KeyboardInterrupt as exc:
    seen.append("raised at the checkpoint: " + str(exc))
print("|".join(seen), p.exitcode)
stopping.STATE.watchdog.cancel()
"""


def test_a_stop_during_a_process_start_is_held_until_the_next_checkpoint():
    """bench.stopping.refuse_new_processes: a Ctrl-C while the main thread starts a process (a fork server's
    request, a spawn) does not cut the start in half; it is raised at the next checkpoint."""
    done = subprocess.run(
        [sys.executable, "-c", _HELD_DURING_START], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "signalled|start returned|raised at the checkpoint: signal SIGINT 0", done.stdout


def test_after_a_stop_no_background_thread_starts_a_process():
    """bench.stopping.refuse_new_processes: a dask nanny's thread cannot start a worker once the run stops."""
    done = subprocess.run(
        [sys.executable, "-c", _REFUSE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert "poolbench is stopping (SIGINT): no new process" in lines and "main 0" in lines
