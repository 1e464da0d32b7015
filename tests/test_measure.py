"""The measurement defects found in review (issue #14), each with the test that would have caught it.

1. io_file wrote under the temp folder (a tmpfs in the containers); now --io-dir, recorded with its
   file system. 2. The summary plot drew its own ideal and hid missing points. 3. CPU time came in
   10 ms ticks. 4. Peak RSS and throttling included warm-up rounds. 6. io_sleep trusted the task's own
   clock; echo compared 64 bytes.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

import pytest

from bench import machine, measure, readings
from bench.config import OptionError, build_config, parse_io_dir
from bench.cpus import CgroupCpu, CpuInfo
from bench.measure import BatchRounds, RoundMeter, WrongAnswer
from common import denied, schema
from scripts import plot, report
from scripts.analysis import ScalingPoint
from workloads import io_bound, registry

TWO_CPUS = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)


# --- 1. io_file's folder ------------------------------------------------------------------------------


def test_io_file_writes_in_the_io_dir_not_the_temp_folder(tmp_path, monkeypatch):
    io_dir = tmp_path / "disk"
    io_dir.mkdir()
    monkeypatch.setenv(io_bound.IO_DIR_ENV, str(io_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))  # used: the task fails
    assert io_bound.file_roundtrip((4, 2)) == registry.crc_of_blocks(4 * 1024, 2)
    assert list(io_dir.iterdir()) == []  # its folder is gone again


def test_io_dir_option_is_checked_and_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "io").mkdir()
    assert parse_io_dir("io") == str(tmp_path.resolve() / "io")
    assert parse_io_dir(None) == os.path.realpath(tempfile.gettempdir())
    with pytest.raises(OptionError, match=r"--io-dir / POOLBENCH_IO_DIR: 'missing' is not an existing folder"):
        parse_io_dir("missing")
    cfg = build_config({}, TWO_CPUS, environ={"POOLBENCH_IO_DIR": str(tmp_path / "io")})
    assert cfg.io_dir == str(tmp_path.resolve() / "io")


def test_the_io_dirs_file_system_is_found_and_a_tmpfs_is_named(tmp_path):
    assert machine.fstype_of(str(tmp_path))  # some type, from the mount that holds it
    shm = "/dev/shm"
    if not os.path.isdir(shm) or machine.fstype_of(shm) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm here")
    cfg = build_config({"workloads": "io_file"}, TWO_CPUS, environ={"POOLBENCH_IO_DIR": shm})
    assert "a tmpfs: fsync there reaches no disk" in machine.io_dir_warning(cfg)
    quiet = build_config({"workloads": "cpu_python"}, TWO_CPUS, environ={"POOLBENCH_IO_DIR": shm})
    assert machine.io_dir_warning(quiet) is None  # io_file does not run


def test_report_cautions_when_io_file_ran_on_a_tmpfs_and_on_coarse_cpu_time():
    lines = report._cautions({"io_dir": "/tmp", "io_fstype": "tmpfs", "cpu_time_source": "schedstat"})
    assert len(lines) == 1 and "`io_file` wrote to `/tmp`, a tmpfs" in lines[0]
    lines = report._cautions({"io_fstype": "ext4", "cpu_time_source": "ticks", "cpu_time_resolution_s": 0.01})
    assert len(lines) == 1 and "clock ticks of 10 ms" in lines[0]
    assert report._cautions({"io_fstype": "ext4", "cpu_time_source": "schedstat"}) == []
    busy = report._cautions({"loadavg_start": [3.5, 2, 1], "loadavg_end": [2.0, 2, 1], "effective_cpus": 2.0})
    assert "load average 3.5 at the start, 2 at the end, for 2 CPUs" in busy[0]


# --- 2. the summary plot ------------------------------------------------------------------------------


def _point(workload: str, pool: str, kind: str, speedup: float, ideal: float) -> ScalingPoint:
    return ScalingPoint(
        label="2 CPUs", source="run.json", workload=workload, kind=kind, gil="releases", pool=pool, workers=2,
        tasks=16, effective_cpus=2.0, median_s=0.1, serial_s=0.1 * speedup, speedup=speedup,
        speedup_lo=speedup * 0.9, speedup_hi=speedup * 1.1, ideal=ideal, cpu_busy=None, recommended_workers=2,
    )  # fmt: skip


def test_summary_plot_draws_each_bars_ideal_and_marks_what_was_not_measured(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plot, "save", lambda fig, out, stem: figures.append(fig) or [])
    points = [
        _point("io_sleep", "thread", "io", 1.9, 2.0),
        _point("zlib", "thread", "cpu-native", 1.8, 2.0),
        _point("io_sleep", "process/fork", "io", 1.7, 2.0),  # no zlib on processes: not measured
    ]
    plot.plot_summary(points, tmp_path)
    (fig,) = figures
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["not measured"]
    dashed = [c for c in ax.collections if any(dash is not None for _, dash in c.get_linestyle())]
    ideal_y = sorted(seg[0][1] for coll in dashed for seg in coll.get_segments())
    assert ideal_y == [2.0, 2.0, 2.0]  # one per bar, reference.ideal_speedup's value, never min(W, C) of its own


# --- 3. CPU time at the scheduler's resolution ----------------------------------------------------------


def test_cpu_time_source_is_the_schedulers_on_linux():
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat"):
        pytest.skip("no per-thread schedstat here: psutil's ticks are the source")
    assert readings.CPU_TIME_SOURCE == "schedstat"
    assert readings.CPU_TIME_RESOLUTION_S == 1e-9


def test_tree_cpu_time_adds_this_process_its_reaped_children_and_each_worker_exactly(monkeypatch):
    # The clocks are replaced by fixed readings, so this checks how the tree's CPU time is put together,
    # not how fast anything ran: nanosecond readings must come through unrounded (10 ms ticks would not).
    if readings.CPU_TIME_SOURCE != "schedstat":
        pytest.skip("tick-based CPU time here")
    with ProcessPoolExecutor(1) as pool:
        worker = pool.submit(os.getpid).result()
        monkeypatch.setattr(readings.time, "process_time", lambda: 1.25)
        monkeypatch.setattr(
            readings.resource, "getrusage", lambda who: SimpleNamespace(ru_utime=0.5, ru_stime=0.25, ru_minflt=0)
        )
        monkeypatch.setattr(readings, "_task_ns", lambda pid, root="/proc": 3_000_123 if pid == worker else None)
        total = readings.tree_cpu_seconds()
        monkeypatch.undo()
    # this process 1.25 s, its reaped children 0.75 s, the live worker 3.000123 ms (it has no children)
    assert total == pytest.approx(1.25 + 0.75 + 0.003000123, abs=1e-12)


def test_task_ns_sums_every_thread_of_a_fake_proc(tmp_path):
    for tid, ns in ((10, 1_500_000), (11, 250)):
        (tmp_path / "10" / "task" / str(tid)).mkdir(parents=True)
        (tmp_path / "10" / "task" / str(tid) / "schedstat").write_text(f"{ns} 0 3\n")
    (tmp_path / "10" / "task" / "12").mkdir()  # a thread that ended: no file
    assert readings._task_ns(10, root=str(tmp_path)) == 1_500_250
    assert readings._task_ns(99, root=str(tmp_path)) is None


# --- 4. warm-up rounds are not in the record --------------------------------------------------------------


def test_round_meter_keeps_timed_rounds_only(monkeypatch):
    # CPU readings are scripted (start, stop of the warm-up; start, stop of a timed round): what is checked
    # is which rounds count, not how long anything took. The warm-up's peak RSS is real memory.
    scripted = iter([15.0, 15.25])  # a warm-up round reads nothing: only the timed round's pair is scripted
    monkeypatch.setattr(measure, "tree_cpu_seconds", lambda proc=None: next(scripted))
    meter = RoundMeter(cgroup=None, warmup_rounds=1)
    meter.start()
    block = bytearray(256 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: the warm-up's peak RSS
    del block
    assert meter.stop() is False
    assert meter.cpu_time_s == 0.0 and meter.rss_peak_bytes == 0  # the warm-up's CPU and memory not kept
    meter.start()
    assert meter.stop() is True
    assert meter.cpu_time_s == pytest.approx(0.25)
    assert meter.rss_peak_bytes > 0
    assert meter.rss_peak_bytes < readings.tree_rss_bytes() + 128 * 2**20  # the warm-up's 256 MiB are not in it


def test_round_meter_adds_throttling_of_timed_rounds(tmp_path):
    stat = tmp_path / "cpu.stat"
    meter = RoundMeter(cgroup=CgroupCpu(version=2, leaf_dir=str(tmp_path)), warmup_rounds=1)
    for throttled, usec in ((0, 0), (5, 1000), (5, 1000), (7, 4000)):  # warm-up: +5, then +0, then +2
        stat.write_text(f"nr_periods 10\nnr_throttled {throttled}\nthrottled_usec {usec}\n")
        if throttled:
            meter.stop()
        meter.start()
    stat.write_text("nr_periods 10\nnr_throttled 7\nthrottled_usec 4000\n")
    meter.stop()
    assert meter.throttled_periods == 2
    assert meter.throttled_s == pytest.approx(0.003)


# --- 6. answers checked independently ----------------------------------------------------------------------


def test_a_sleep_batch_that_ends_too_soon_fails_however_its_answers_look():
    liar = BatchRounds(
        run_batch=lambda: [0.02] * 4,  # claims 20 ms each, slept none
        check=lambda i, r: registry.SCALING["io_sleep"].accepts(0.02, r),
        label="io_sleep-thread-w2",
        tasks=4,
        floor_s=registry.SCALING["io_sleep"].least_batch_s(0.02, 4, 2),
    )
    liar.setup()
    liar.target()
    with pytest.raises(WrongAnswer, match=r"sooner than its tasks can \(40.00 ms at least\)"):
        liar.teardown()
    honest = BatchRounds(
        run_batch=lambda: [io_bound.sleep_for(0.005) for _ in range(2)],
        check=lambda i, r: True,
        label="io_sleep-serial-w1",
        tasks=2,
        floor_s=registry.SCALING["io_sleep"].least_batch_s(0.005, 2, 1),
    )
    honest.setup()
    honest.target()
    honest.teardown()


def test_echo_answer_is_checked_byte_for_byte():
    echo = registry.PROBES["echo"]
    payload = bytes(range(256)) * 4096
    assert echo.accepts(payload, bytes(payload))
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 1  # one bit in the middle: length and tail still match
    assert not echo.accepts(payload, bytes(damaged))


# --- the shared rules ---------------------------------------------------------------------------------------


def test_one_recommended_workers_rule_everywhere():
    for cpus, expected in ((0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (2.0000000001, 2), (3.2, 4)):
        assert schema.recommended_workers(cpus) == expected
        assert CpuInfo(cpu_count=8, affinity_cpus=8, process_cpu_count=8, override=cpus).recommended_workers == expected


def test_busy_rule():
    assert denied.was_busy([2.5, 1, 1], 2.0)
    assert not denied.was_busy([1.5, 1, 1], 2.0)
    assert not denied.was_busy(None, 2.0)
    assert "the machine was busy: load average 4 at the start, 3 at the end, for 2 CPUs" in machine.busy_warning(
        [4.0, 1, 1], [3.0, 1, 1], 2.0
    )


def test_round_meter_counts_the_minor_faults_of_timed_rounds():
    meter = RoundMeter(cgroup=None, warmup_rounds=0)
    meter.start()
    block = bytearray(64 * 2**20)  # fresh pages: each first touch is a minor fault (2 MiB ones with THP)
    block[::4096] = b"x" * len(block[::4096])
    meter.stop()
    del block
    if meter.minor_faults is None:
        pytest.skip("no fault counters here")
    assert meter.minor_faults >= 32
