"""`pytest bench` end to end on the smallest sweep: what the saved JSON holds.

These run the real suite in a subprocess, as a user would, and read its JSON. They check
structure and behaviour only; no timing is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cpus
from bench.config import CASES
from bench.terminal import summary_workers
from common.reference import PROBE_TASKS, PROBE_WARM_TASKS, round_warm_tasks
from common.schema import SCHEMA_VERSION
from scripts.analysis import Analysis
from scripts.results import load
from tests import schema_doc
from tests.clirun import run_module
from workloads.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_module(
        "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", "quick", "--passes", "1", *args, timeout=600
    )


@pytest.fixture(scope="module")
def smallest_done(tmp_path_factory) -> tuple[dict, subprocess.CompletedProcess]:
    """One run of every case type on two workloads and worker counts 1 and 2: its JSON and its output."""
    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "out.json"
    done = run_bench(
        tmp,
        "--workers",
        "1,2",
        "--workloads",
        "cpu_python,numpy_matmul",
        "--benchmark-json",
        str(out),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done


@pytest.fixture(scope="module")
def smallest_run(smallest_done) -> dict:
    return smallest_done[0]


def test_the_run_ends_with_the_answer_and_where_it_went(smallest_done):
    data, done = smallest_done
    out = done.stdout
    recommended = data["machine_info"]["poolbench"]["recommended_workers"]
    shown = summary_workers((1, 2), recommended)  # the sweep is 1,2: on more CPUs the table shows 2 and says so
    why = "recommended here" if shown == recommended else f"the most swept; {recommended} recommended here"
    assert f"speedup over serial at {shown} workers ({why}; throughput ratio):" in out
    method = data["machine_info"]["poolbench"]["default_start_method"]
    table = out.split(f"speedup over serial at {shown} workers", 1)[1].splitlines()
    assert table[1].split() == ["workload", f"process/{method}", "thread"]
    assert {row.split()[0] for row in table[2:4]} == {"cpu_python", "numpy_matmul"}
    # every cell is the speedup the scripts' analysis states for the saved file: one computation
    saved = next(line for line in out.splitlines() if line.startswith("results: ")).split()[1].rstrip(";")
    points = Analysis(load([saved])).points
    for row in table[2:4]:
        workload, *cells = row.split()
        for pool, cell in zip([f"process/{method}", "thread"], cells, strict=True):
            p = next(p for p in points if (p.workload, p.pool, p.workers) == (workload, pool, shown))
            assert cell == f"{p.speedup:.2f}×", (workload, pool)
    assert "results: " in out and "out.json" in out and "journal: " in out
    assert "results will not be saved" not in out
    # the answer comes after pytest-benchmark's tables, not above them
    assert out.index("== poolbench ==") > out.rindex("Legend:")


def test_the_end_of_run_table_shows_the_recommended_workers_or_the_most_swept_below():
    assert summary_workers((1, 2, 4, 8), 2) == 2
    assert summary_workers((1, 2), 16) == 2  # a 16-CPU host swept to 2
    assert summary_workers((4, 8), 2) == 4  # nothing swept at or below: the fewest


def test_the_run_records_where_and_how_it_measured(smallest_run):
    info = smallest_run["machine_info"]["poolbench"]
    assert Path(info["io_dir"]).is_absolute() and info["io_fstype"]
    assert info["cpu_time_source"] in ("schedstat", "ticks")
    assert 0 < info["cpu_time_resolution_s"] <= 0.02
    for key in ("loadavg_start", "loadavg_end"):
        assert len(info[key]) == 3 and all(x >= 0 for x in info[key])


def test_every_case_type_is_present(smallest_run):
    found = {b["extra_info"]["case"] for b in smallest_run["benchmarks"]}
    assert found == set(CASES)


def test_crash_isolation_is_recorded_per_executor(smallest_run):
    crashes = [b["extra_info"] for b in smallest_run["benchmarks"] if b["extra_info"]["case"] == "crash"]
    assert {i["task_param"] for i in crashes} == {"exit", "abort", "segfault"}
    for info in crashes:
        if info["executor"] == "process":
            assert (info["outcome"], info["parent_survived"], info["recovered"]) == ("BrokenProcessPool", True, True)
        else:
            assert (info["outcome"], info["parent_survived"]) == ("process died", False)
            assert info["returncode"] == 3 or info["signal"] in ("SIGABRT", "SIGSEGV")


def test_default_workers_case_records_what_each_default_chose(smallest_run):
    defaults = smallest_run["machine_info"]["poolbench"]["executor_defaults"]
    recommended = smallest_run["machine_info"]["poolbench"]["recommended_workers"]
    infos = [b["extra_info"] for b in smallest_run["benchmarks"] if b["extra_info"]["case"] == "default_workers"]
    seen = {(i["workload"], i["executor"], i["sizing"]): i["workers"] for i in infos}
    for workload in ("cpu_python", "io_sleep"):
        assert seen[(workload, "thread", "default")] == defaults["thread_max_workers"]
        assert seen[(workload, "process", "default")] == defaults["process_max_workers"]
        assert seen[(workload, "thread", "recommended")] == recommended
        assert seen[(workload, "process", "recommended")] == recommended
    assert {i["max_workers_requested"] for i in infos if i["sizing"] == "default"} == {None}


def test_scaling_sweep_is_workload_by_executor_by_workers(smallest_run):
    scaling = [b["extra_info"] for b in smallest_run["benchmarks"] if b["extra_info"]["case"] == "scaling"]
    method = smallest_run["machine_info"]["poolbench"]["default_start_method"]
    seen = {(i["workload"], i["executor"], i["start_method"], i["workers"]) for i in scaling}
    expected = set()
    for name in ("cpu_python", "numpy_matmul"):
        expected.add((name, "serial", None, 1))
        for w in (1, 2):
            expected |= {(name, "thread", None, w), (name, "process", method, w)}
    assert seen == expected


def test_every_case_records_the_documented_keys_and_no_undocumented_one(smallest_run):
    every = schema_doc.keys(schema_doc.EXTRA_INTRO)
    some = schema_doc.case_specific()
    for bench in smallest_run["benchmarks"]:
        info = bench["extra_info"]
        assert not every - set(info), (bench["name"], every - set(info))
        assert not set(info) - every - some, (bench["name"], set(info) - every - some)
        assert info["kind"] in KINDS
        assert info["gil"] in ("holds", "releases")
        assert info["rss_peak_bytes"] > 0
        # every timed case reads its tree's CPU time; a crash case times the probe's subprocess, not a tree
        assert (info["cpu_time_s"] is None) == (info["case"] == "crash"), bench["name"]
        assert info["case"] == "crash" or info["cpu_time_s"] > 0, bench["name"]
        assert info["effective_cpus"] == smallest_run["machine_info"]["poolbench"]["effective_cpus"]


def test_per_round_samples_are_saved(smallest_run):
    for bench in smallest_run["benchmarks"]:
        assert len(bench["stats"]["data"]) == bench["stats"]["rounds"] >= 1


def test_scaling_cases_bracket_their_rounds_with_warm_serial_probes(smallest_run):
    for bench in smallest_run["benchmarks"]:
        info = bench["extra_info"]
        if info["case"] != "scaling":
            assert "serial_samples_s" not in info, bench["name"]
            continue
        # one probe before the first timed round and one after each: the serial case's too (its bias)
        probes = info["serial_samples_s"]
        assert len(probes) == len(bench["stats"]["data"]) + 1, bench["name"]
        assert len(info["serial_cpu_samples_s"]) == len(probes)
        assert all(t > 0 for t in probes)
        assert (info["serial_tasks"], info["serial_warm_tasks"]) == (PROBE_TASKS, PROBE_WARM_TASKS)
        # a pool's timed rounds each follow a warm batch, one task per CPU it can use; the serial case's none
        pool = info["executor"] != "serial"
        assert info["round_warm_tasks"] == (round_warm_tasks(info["workers"], info["effective_cpus"]) if pool else 0)
        # each on a CPU of the process, placed where the rounds ran (their busy shares, one per timed round);
        # an I/O-bound workload's where the scheduler puts it, as the pool's threads are (null)
        assert len(info["serial_cpus"]) == len(probes)
        if info["kind"] == "io":
            assert set(info["serial_cpus"]) == {None}, bench["name"]
        else:
            assert set(info["serial_cpus"]) <= os.sched_getaffinity(0), bench["name"]
        shares = info["round_cpu_shares"]
        assert len(shares) == len(bench["stats"]["data"]), bench["name"]
        for one in filter(None, shares):
            assert {int(c) for c in one} == os.sched_getaffinity(0) and abs(sum(one.values()) - 1) < 0.01
        assert info["schema_version"] == SCHEMA_VERSION
    assert smallest_run["machine_info"]["poolbench"]["gc"]["policy"] == "frozen"
    assert smallest_run["machine_info"]["poolbench"]["gc"]["frozen_objects"] > 0


def test_blas_is_limited_to_one_thread_in_every_executor(smallest_run):
    matmul = [b["extra_info"] for b in smallest_run["benchmarks"] if b["extra_info"]["workload"] == "numpy_matmul"]
    assert matmul
    assert {i["blas_threads"] for i in matmul} == {1}


def test_cpu_bound_cases_record_cpu_time(smallest_run):
    for bench in smallest_run["benchmarks"]:
        info = bench["extra_info"]
        if info["case"] == "scaling" and info["kind"] == "cpu-python":
            assert info["cpu_time_s"] > 0, bench["name"]


def test_dispatch_and_payload_variants(smallest_run):
    infos = [b["extra_info"] for b in smallest_run["benchmarks"]]
    chunks = {i["chunksize"] for i in infos if i["case"] == "dispatch" and i["executor"] == "process"}
    assert chunks == {1, 16, 256}
    sizes = {i["payload_bytes"] for i in infos if i["case"] == "payload"}
    assert sizes == {1024, 1024**2, 16 * 1024**2}


def test_memory_case_counts_the_workers_it_started(smallest_run):
    for bench in smallest_run["benchmarks"]:
        info = bench["extra_info"]
        if info["case"] == "memory" and info["executor"] == "process":
            assert info["workers_started"] == info["workers"]
            assert info["processes"] >= info["workers"] + 1
            assert info["rss_tree_bytes"] > info["rss_base_bytes"]


def test_machine_info_records_cpus_blas_and_versions(smallest_run):
    info = smallest_run["machine_info"]["poolbench"]
    assert not schema_doc.keys(schema_doc.MACHINE_INTRO) - set(info)  # every documented key is recorded
    assert not set(info) - schema_doc.named(schema_doc.MACHINE_INTRO)  # and every recorded key documented
    here = cpus.detect()
    assert info["effective_cpus"] == here.effective_cpus
    assert info["recommended_workers"] == here.recommended_workers
    assert info["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["versions"]["numpy"] and info["versions"]["pytest-benchmark"]
    assert info["config"]["workers"] == [1, 2]
    assert info["config"]["profile"] == "quick"
    # The default allocator policy, recorded with what it set (bench/allocator.py).
    assert info["malloc"]["policy"] == info["config"]["malloc"] == "neutral"
    assert info["malloc"]["applied"] is (platform.libc_ver()[0] == "glibc")
    assert info["malloc_mmap_threshold"] == (
        info["malloc"]["settings"]["mmap_threshold"] if info["malloc"]["applied"] else None
    )
    defaults = info["executor_defaults"]
    visible = info["process_cpu_count"] or info["cpu_count"]  # process_cpu_count from Python 3.13
    assert defaults["thread_max_workers"] == min(32, visible + 4)
    assert defaults["process_max_workers"] == visible
    assert defaults["thread_initializer"] is True


def test_autosave_writes_numbered_json_and_cases_option_filters(tmp_path):
    storage = tmp_path / "store"
    done = run_bench(
        tmp_path,
        "--cases",
        "dispatch",
        "--executors",
        "serial,thread",
        "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    saved = list(storage.glob("*/0001_*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert {b["extra_info"]["case"] for b in data["benchmarks"]} == {"dispatch"}
    assert {b["extra_info"]["executor"] for b in data["benchmarks"]} == {"serial", "thread"}
    assert "deselected" in done.stdout
    assert f"results: {saved[0]}" in done.stdout  # the end-of-run lines name the file autosave chose


def test_a_run_that_saves_nothing_says_so_at_the_start(tmp_path):
    done = run_bench(
        tmp_path, "--cases", "scaling", "--workloads", "io_sleep", "--executors", "serial", "--workers", "1"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    notice = "poolbench: results will not be saved and no journal is kept: add --benchmark-autosave"
    assert notice in done.stdout.splitlines()[0]
    assert "results: not saved" in done.stdout


def test_a_wrong_answer_fails_its_case_and_leaves_no_number(tmp_path, monkeypatch):
    out = tmp_path / "out.json"
    monkeypatch.setenv("POOLBENCH_TEST_FAULT", "wrong:cpu_python")
    done = run_bench(
        tmp_path,
        "-p",
        "tests.fault_plugin",
        "--cases",
        "scaling",
        "--workloads",
        "cpu_python,io_sleep",
        "--executors",
        "serial,thread",
        "--workers",
        "1",
        "--benchmark-json",
        str(out),
    )
    assert done.returncode == 1
    # the warm-up batch (one task per worker) is checked first
    assert "WrongAnswer: cpu_python-serial-w1 (warm-up batch): task 0 returned a wrong answer" in done.stdout
    names = {b["name"] for b in json.loads(out.read_text())["benchmarks"]}
    assert names == {"test_scaling[io_sleep-serial-w1]", "test_scaling[io_sleep-thread-w1]"}
