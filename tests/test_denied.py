"""CPU a run was denied (issue #23): run-queue wait and steal read from scripted /proc files, the rule
that calls a run denied, the end-of-run line, the report's caution and mark, and a kernel without
schedstat. No timing is asserted: every reading here is scripted."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from bench import measure, readings, terminal
from common import denied
from scripts import analysis, claims, report
from tests.test_causes import _record, _run


def _fake_proc(root, pid: int, threads: dict[int, tuple[int, int]]) -> None:
    for tid, (ran, waited) in threads.items():
        (root / str(pid) / "task" / str(tid)).mkdir(parents=True)
        (root / str(pid) / "task" / str(tid) / "schedstat").write_text(f"{ran} {waited} 7\n")


def test_wait_is_the_second_schedstat_field_summed_over_threads_and_processes(tmp_path, monkeypatch):
    _fake_proc(tmp_path, 10, {10: (5_000, 300_000_000), 11: (7, 200_000_000)})  # the suite: 2 threads
    _fake_proc(tmp_path, 20, {20: (9, 250_000_000)})  # a pool worker
    (tmp_path / "10" / "task" / "12").mkdir()  # a thread that ended between listing and reading
    assert readings._task_wait_ns(10, root=str(tmp_path)) == 500_000_000
    assert readings._task_ns(10, root=str(tmp_path)) == 5_007
    monkeypatch.setattr(readings, "_tree", lambda proc: [SimpleNamespace(pid=10), SimpleNamespace(pid=20)])
    assert readings.tree_wait_seconds(object(), root=str(tmp_path)) == pytest.approx(0.75)


def test_a_kernel_without_schedstat_records_no_wait(tmp_path, monkeypatch):
    (tmp_path / "10" / "task" / "10").mkdir(parents=True)  # threads, but no schedstat files
    monkeypatch.setattr(readings, "_tree", lambda proc: [SimpleNamespace(pid=10)])
    assert readings.tree_wait_seconds(object(), root=str(tmp_path)) is None
    monkeypatch.undo()
    monkeypatch.setattr(measure, "WAIT_SOURCE", None)  # what such a kernel gives at import
    meter = measure.RoundMeter()
    meter.start()
    meter.stop()
    assert meter.as_info()["cpu_wait_s"] is None
    summary = denied.denied_summary([(None, None, 1.9, 1.0, 2)], 2.0, 2)
    assert summary["wait_share"] is None and summary["denied"] is False
    assert denied.denied_line(summary) is None


def test_steal_is_the_eighth_number_of_the_cpu_line(tmp_path):
    (tmp_path / "stat").write_text("cpu  100 0 50 9000 3 0 1 250 0 0\ncpu0 50 0 25 4500 1 0 0 125 0 0\n")
    assert readings.host_steal_seconds(root=str(tmp_path)) == pytest.approx(250 / os.sysconf("SC_CLK_TCK"))
    (tmp_path / "stat").write_text("cpu  100 0 50 9000\n")  # an old kernel: no steal column
    assert readings.host_steal_seconds(root=str(tmp_path)) is None


@pytest.mark.parametrize(
    ("wait_s", "cpu_s", "workers", "expected"),
    [
        (0.01, 1.95, 2, 0.005),  # 2 workers on 2 CPUs for 1 s, idle: 10 ms waited of 2 CPU-seconds
        (0.66, 1.33, 2, 0.33),  # a busy loop beside them took a third of their CPU time
        (0.30, 2.00, 2, 0.0),  # the tree kept both CPUs busy itself: it waited for its own threads
        (6.0, 2.0, 8, 0.0),  # 8 workers on 2 CPUs must wait 6 CPU-seconds per second between them
        (0.4, 1.0, 8, 0.0),  # GIL-bound threads, taking turns: they wait on each other, not on a neighbour
        (7.0, 1.0, 8, 0.5),  # 1 s more than their turns, while a CPU they did not use was busy
    ],
)
def test_oversubscribed_and_saturated_points_are_judged_against_their_own_demand(wait_s, cpu_s, workers, expected):
    assert denied.denied_wait_share(wait_s, cpu_s, 1.0, workers, 2.0) == pytest.approx(expected)


def _fixture(
    case: str, workers: int, wait_s: float | None, cpu_s: float, samples: list[float], kind: str = "cpu-python"
) -> SimpleNamespace:
    extra = {"case": case, "kind": kind, "workers": workers, "cpu_wait_s": wait_s, "cpu_time_s": cpu_s, "steal_s": 0.0}
    return SimpleNamespace(extra_info=extra, stats=SimpleNamespace(stats=SimpleNamespace(data=samples)))


def test_the_end_of_run_line_names_the_share_and_the_cases():
    finished = [
        _fixture("scaling", 1, 0.001, 1.0, [0.2] * 5),  # serial beside a busy loop: a CPU of its own
        _fixture("scaling", 2, 0.33, 1.33, [0.2] * 5),  # a pool of 2: waited a third of 2 CPU-seconds
        _fixture("scaling", 2, 0.5, 0.1, [0.2] * 5, kind="io"),  # I/O: its waits are the disk's, not judged
        _fixture("dispatch", 2, 5.0, 0.1, [0.1] * 5),  # not a scaling case: not judged
    ]
    waits = terminal.scaling_waits(finished)
    assert waits == [(0.001, 0.0, 1.0, 1.0, 1), (0.33, 0.0, 1.33, 1.0, 2)]
    summary = denied.denied_summary(waits, 2.0, 2)
    assert summary["denied"] is True and summary["denied_cases"] == 1 and summary["cases"] == 2
    assert summary["wait_share"] == pytest.approx((0.001 + 0.33) / 3, rel=1e-4)
    line = denied.denied_line(summary)
    assert line.startswith("the run was denied CPU: its scaling cases waited for a CPU 11% of the CPU time")
    assert "1 of 2 cases on their own" in line
    idle = denied.denied_summary([(0.001, 0.0, 1.0, 1.0, 1), (0.01, 0.0, 1.95, 1.0, 2)], 2.0, 2)
    assert idle["denied"] is False and denied.denied_line(idle) is None
    stolen = denied.denied_summary([(0.0, 0.3, 1.7, 1.0, 2)], 2.0, 2)  # 0.3 s of 2 host CPU-seconds
    assert stolen["denied"] is True and "the hypervisor stole 15%" in denied.denied_line(stolen)


def test_the_report_cautions_and_marks_the_points_that_were_denied():
    run = _run()
    serial = _record(run, "serial", 1, 1.0, cpus_busy=1.0, cpu_wait_s=0.0)
    pool = _record(run, "process", 2, 0.75, variant="fork", cpus_busy=1.33, paired_s=1.0, cpu_wait_s=2.5)
    (point,) = [p for p in analysis.scaling_points([serial, pool]) if p.pool != "serial"]
    assert point.signals.wait_share == pytest.approx(2.5 / (0.75 * 5 * 2))
    assert point.signals.denied and point.cause.cause == "denied"
    assert point.cause.text.startswith("processes waited for a CPU 33% of the CPU time it could use")
    lines = report._machine_lines(run, [serial, pool])
    assert any(line.startswith("- **caution:** the run was denied CPU") for line in lines)
    ev = claims.Evidence([serial, pool])
    assert "another program shared the CPUs" in claims.recommend(ev)[0][4]
