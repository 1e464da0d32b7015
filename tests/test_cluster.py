"""The dask executor (bench/cluster.py): options, the sweep it joins, and a real LocalCluster.

The option and sweep tests need no dask; the rest run where ``distributed`` is installed
(requirements-cluster.txt; README's test command installs it) and are skipped with the reason
elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil
import pytest

from bench import cases, cluster, executors, readings, stopping
from bench.config import OptionError, build_config
from bench.cpus import CpuInfo
from tests.clirun import run_module

TWO_CPUS = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)
needs_dask = pytest.mark.skipif(not cluster.available(), reason=cluster.missing_line())
DASK_OK = {"dask": None, "interpreter": None}  # what is installed, as build_config is told
NO_DASK = {"dask": cluster.missing_line(), "interpreter": None}


def test_dask_is_opt_in_and_an_error_only_when_named_without_distributed():
    assert "dask" not in build_config({}, TWO_CPUS, missing=DASK_OK).executors
    with pytest.raises(OptionError, match=r"--executors dask: the dask executor needs `distributed`: pip install"):
        build_config({"executors": "serial,dask"}, TWO_CPUS, missing=NO_DASK)
    skipped = build_config({"executors": "all"}, TWO_CPUS, missing=NO_DASK)
    assert skipped.executors == ("serial", "thread", "interpreter", "process")
    assert skipped.skipped_executors == ("dask",)
    assert build_config({"executors": "all"}, TWO_CPUS, missing=DASK_OK).executors[-1] == "dask"


def test_scheduler_address_is_checked_and_implies_serial_and_dask():
    with pytest.raises(OptionError, match=r"--dask-scheduler / POOLBENCH_DASK_SCHEDULER: 'not an address'"):
        build_config({"dask_scheduler": "not an address"}, TWO_CPUS, missing=DASK_OK)
    cfg = build_config({}, TWO_CPUS, environ={"POOLBENCH_DASK_SCHEDULER": "tcp://scheduler:8786"}, missing=DASK_OK)
    assert cfg.state("dask").scheduler == "tcp://scheduler:8786"
    assert cfg.executors == ("serial", "dask")


def test_an_existing_cluster_joins_at_its_own_size_and_is_never_crashed():
    import dataclasses  # noqa: PLC0415

    cfg = build_config(
        {"executors": "serial,process,dask", "dask_scheduler": "tcp://s:8786", "workers": "1,2"},
        TWO_CPUS,
        missing=DASK_OK,
    )
    state = dataclasses.replace(cfg.state("dask"), cluster={"workers": 3})
    cfg = dataclasses.replace(cfg, executor_state={**cfg.executor_state, "dask": state})
    scaling = [c.id for c in cases.scaling_cases(cfg) if c.workload == "cpu_python" and c.pass_no == 1]
    # once per pass, at the cluster's size, as it was started (no configuration of the suite's own)
    assert [i for i in scaling if "dask" in i] == ["cpu_python-dask-external-w3"]
    for gen in (cases.cold_start_cases, cases.memory_cases, cases.crash_cases, cases.default_workers_cases):
        assert not [c for c in gen(cfg) if c.executor == "dask"], gen.__name__
    assert [c.id for c in cases.dispatch_cases(cfg) if c.executor == "dask"] == ["noop-dask-external-w3-c1"]
    with pytest.raises(OptionError, match=r"--dask-configs tuned: an existing cluster \(tcp://s:8786\) runs with"):
        build_config({"dask_scheduler": "tcp://s:8786", "dask_configs": "tuned"}, TWO_CPUS, missing=DASK_OK)


def test_both_configurations_join_the_same_axis_and_can_be_chosen():
    cfg = build_config({"executors": "serial,dask", "workers": "2"}, TWO_CPUS, missing=DASK_OK)
    assert cfg.state("dask").configs == ("default", "tuned")
    ids = [c.id for c in cases.scaling_cases(cfg) if c.workload == "cpu_python" and c.pass_no == 1]
    assert ids == ["cpu_python-serial-w1", "cpu_python-dask-default-w2", "cpu_python-dask-tuned-w2"]
    one = build_config({"executors": "dask", "dask_configs": "tuned"}, TWO_CPUS, missing=DASK_OK)
    assert {c.variant for c in cases.dispatch_cases(one)} == {"tuned"}
    with pytest.raises(OptionError, match=r"--dask-configs: unknown 'fast'; choose from default, tuned"):
        build_config({"executors": "dask", "dask_configs": "fast"}, TWO_CPUS, missing=DASK_OK)


def test_an_embedded_cluster_joins_every_case_but_default_workers():
    cfg = build_config({"executors": "serial,dask", "workers": "1,2"}, TWO_CPUS, missing=DASK_OK)
    for name, gen in cases.GENERATORS.items():
        found = [c for c in gen(cfg) if c.executor == "dask"]
        assert bool(found) == (name != "default_workers"), name


@needs_dask
def test_local_cluster_runs_every_task_spreads_them_and_limits_blas():
    pool = executors.make_executor("dask", 2, None, blas_threads=1)
    try:
        assert pool._max_workers == 2
        # pure=False: eight identical tasks run eight times (pure=True would run one and share it)
        pids = list(pool.map(executors.overhead.whoami, [0.05] * 8))
        assert len(pids) == 8 and len(set(pids)) == 2 and os.getpid() not in pids
        assert executors.blas_threads_of(pool, "dask") == 1
        assert {w["nthreads"] for w in pool.workers_info()} == {1}
        children = set(pids)
    finally:
        pool.shutdown()
    alive = {p.pid for p in psutil.Process().children(recursive=True)}
    assert not children & alive  # the cluster's workers are gone


@needs_dask
@pytest.mark.parametrize("config", ["default", "tuned"])
def test_each_configuration_starts_runs_records_its_settings_and_leaves_no_process(config):
    pool = executors.make_executor("dask", 2, config, blas_threads=1)
    try:
        workers = {w["pid"] for w in pool.client.run(cluster._worker_cpus).values()}
        pids = list(pool.map(executors.overhead.whoami, [0.05] * 8))
        assert len(pids) == 8 and set(pids) == workers  # every task ran once, on the cluster's two workers
        with pytest.raises(ZeroDivisionError):  # a task's error reaches the caller, in either gathering
            list(pool.map(divmod, [1, 2], [1, 0]))
        held = pool.settings_in_force()
    finally:
        pool.shutdown()
    assert held["name"] == config and held["dask"]
    tuned = config == "tuned"
    assert held["gather"] == ("one call" if tuned else "per future")
    # read from the running scheduler and worker, not from the configuration asked for
    assert held["settings"]["distributed.scheduler.worker-saturation"] == ("inf" if tuned else 1.1)
    assert held["settings"]["distributed.worker.profile.enabled"] is (not tuned)
    assert not workers & {p.pid for p in psutil.Process().children(recursive=True)}


@needs_dask
@pytest.mark.slow
def test_dask_cases_run_end_to_end_and_the_report_has_its_section(tmp_path):
    out = tmp_path / "run.json"
    done = run_module(
        "pytest", "bench", "-q", "-p", "no:cacheprovider", "--profile", "quick", "--passes", "1",
        "--executors", "serial,thread,dask",
        "--cases", "scaling,dispatch,payload,crash", "--workloads", "cpu_python", "--workers", "2",
        "--benchmark-json", str(out), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    info = data["machine_info"]["poolbench"]["dask"]
    assert info["version"] and info["threads_per_worker"] == 1
    names = {b["name"] for b in data["benchmarks"]}
    assert set(info["configs"]) == {"default", "tuned"}
    for config in ("default", "tuned"):
        assert {f"test_scaling[cpu_python-dask-{config}-w2]", f"test_dispatch[noop-dask-{config}-w2-c1]"} <= names
    by_name = {b["name"]: b["extra_info"] for b in data["benchmarks"]}
    tuned = by_name["test_scaling[cpu_python-dask-tuned-w2]"]
    assert tuned["dask_config"]["gather"] == "one call"
    assert len(tuned["settle_samples_s"]) == len(tuned["serial_samples_s"])  # one wait before each probe
    assert len(by_name["test_dispatch[noop-dask-tuned-w2-c1]"]["latency_samples_s"]) > 0
    crashes = [b["extra_info"] for b in data["benchmarks"] if b["extra_info"]["case"] == "crash"]
    dask_crashes = [c for c in crashes if c["executor"] == "dask"]
    assert len(dask_crashes) == 6  # three crash kinds under each configuration
    for c in dask_crashes:  # the client survives a worker's death: what it sees is the finding
        assert c["parent_survived"] and c["recovered"] and c["allowed_failures"] is not None
    report = run_module("scripts.report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## One machine or a cluster" in text
    assert "| dask/default w2 |" in text and "| dask/tuned w2 |" in text and "Crash isolation on dask" in text
    assert "CPU per task beyond a task alone" in text and "model [band]" in text


def test_cluster_shapes_are_parsed_and_their_results_checked():
    from scripts import containers, matrix  # noqa: PLC0415

    lim = matrix.Limit.parse_cluster("2xcpus-1.5")
    assert (lim.name, lim.cluster_workers, lim.quota) == ("2xcpus-1.5", 2, 1.5)
    for bad in ("2xcpuset-0", "0xcpus-1", "two", "2x", "99xcpus-1"):
        with pytest.raises(matrix.MatrixError, match="is not a cluster shape; give WORKERSxcpus-LIMIT"):
            matrix.Limit.parse_cluster(bad)
    workers = [{"cpu_quota": 1.5}, {"cpu_quota": 1.5}]
    info = {"label": "2xcpus-1.5", "cpu_quota": 1.5, "dask": {"workers": 2, "worker_info": workers}}
    assert lim.problem(info) is None
    assert "a cluster of 1 workers, expected 2" in lim.problem({**info, "dask": {"workers": 1, "worker_info": []}})
    uneven = {**info, "dask": {"workers": 2, "worker_info": [{"cpu_quota": 1.5}, {"cpu_quota": None}]}}
    assert "CPU quotas" in lim.problem(uneven)
    with pytest.raises(SystemExit):
        matrix.parse_args(["--cluster", "2xcpus-1", "--limits", "cpus-1"])
    assert "client" not in containers.services_in_file(containers.COMPOSE_FILE)  # not a CPU limit


def _quiet(monkeypatch, counters) -> readings.Quiet:
    """A Quiet over scripted CPU counters (ns), its idle level measured from the first six of them."""
    monkeypatch.setattr(readings, "busy_ns", lambda pids, skip: next(counters))
    monkeypatch.setattr(readings.time, "sleep", lambda s: None)
    return readings.Quiet([1, 2])


def test_the_idle_level_is_the_median_window_of_a_quiet_cluster(monkeypatch):
    # CPU counters (ns) of an idle cluster: windows of 1.0, 0.2, 3.0, 1.2 and 0.9 ms
    quiet = _quiet(monkeypatch, iter([0, 1_000_000, 1_200_000, 4_200_000, 5_400_000, 6_300_000]))
    assert quiet.idle_ns == 1_000_000  # one stray burst (3 ms) does not raise it


def test_settle_waits_until_the_cluster_is_back_at_its_idle_level_and_no_longer(monkeypatch):
    # idle: 1 ms of CPU per window. After a round: 5 ms per window twice (releasing the results), then 1.2 ms
    idle = [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    after = [5_000_000, 10_000_000, 15_000_000, 16_200_000, 17_400_000]
    seen = []
    counters = iter([*idle, *after])
    quiet = _quiet(monkeypatch, counters)
    monkeypatch.setattr(readings, "busy_ns", lambda pids, skip: seen.append(pids) or next(counters))
    quiet.wait()
    assert len(seen) == 4 and seen[0] == [1, 2]  # the first window within 1.5 × idle ends the wait
    # a cluster that never goes quiet is waited for SETTLE_MAX_S at most: the clock decides, not the counters
    busy = iter(range(0, 10**12, 10**8))
    monkeypatch.setattr(readings, "busy_ns", lambda pids, skip: next(busy))
    clock = iter(x * 0.01 for x in range(1000))
    monkeypatch.setattr(readings.time, "perf_counter", lambda: next(clock))
    assert quiet.wait() == pytest.approx(readings.SETTLE_MAX_S, abs=0.02)


def test_settle_without_schedstat_waits_a_fixed_moment(monkeypatch):
    slept = []
    monkeypatch.setattr(readings, "busy_ns", lambda pids, skip: None)
    monkeypatch.setattr(readings.time, "sleep", slept.append)
    quiet = readings.Quiet([1])
    assert quiet.idle_ns is None
    quiet.wait()
    assert slept == [readings.SETTLE_WINDOW_S * 5]


def test_asyncio_reports_pass_until_a_stop_signal_and_not_after(monkeypatch):

    quiet = stopping.QuietAfterStop()
    record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Task exception was never retrieved", (), None)
    monkeypatch.setattr(stopping.STATE, "signal", None)
    assert quiet.filter(record)  # before a stop: every report shows
    monkeypatch.setattr(stopping.STATE, "signal", "SIGINT")
    assert not quiet.filter(record)  # after the run said it is stopping: the stop's own echo is dropped
    stopping.quiet_after_stop(cluster.QUIET_AFTER_STOP, cluster.QUIET_HANDLERS_AFTER_STOP)
    stopping.quiet_after_stop(cluster.QUIET_AFTER_STOP, cluster.QUIET_HANDLERS_AFTER_STOP)
    for name in ("asyncio", "distributed.process"):  # the reaped worker's "exit status was already read" too
        assert sum(isinstance(f, stopping.QuietAfterStop) for f in logging.getLogger(name).filters) == 1, name


def _blocked_signals(pid: int | str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)


@needs_dask
def test_the_clusters_workers_start_with_sigint_blocked_and_the_suite_does_not_keep_it_blocked():
    """A terminal's Ctrl-C reaches the process group: a dask worker still importing would print its own
    traceback. Its workers never see it; the suite handles it and stops them itself."""
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    sigint = 1 << (signal.SIGINT - 1)
    assert not _blocked_signals(f"self/task/{threading.get_native_id()}") & sigint
    pool = cluster.DaskExecutor(1, config="default")
    try:
        (worker,) = pool.client.run(os.getpid).values()
        assert _blocked_signals(worker) & sigint
        assert list(pool.map(abs, [-1, -2])) == [1, 2]  # they work as before
    finally:
        pool.shutdown()
    assert not _blocked_signals(f"self/task/{threading.get_native_id()}") & sigint  # back as it was here
