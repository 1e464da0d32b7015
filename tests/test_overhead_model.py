"""The overhead model (scripts/metrics.py ``overhead_model``): its arithmetic on fixture data, and
what the report says when the model and the scaling case agree or do not.

The 2-CPU fixture (a real run) is edited so that every figure is known by hand: the serial empty
task costs 10 µs of wall and CPU time, the process pool's 500 µs of wall, 1.01 ms of CPU and one
``map`` call 4 ms; its scaling batch at two workers holds 8 tasks of 20 ms.
"""

from __future__ import annotations

import pytest

from scripts import metrics, report
from scripts.results import load
from tests.test_intervals import bench_named, edited

POOL = "test_scaling[cpu_python-process-fork-w2]"


def known(pool_round_s: float):
    def edit(data: dict) -> None:
        serial = bench_named(data, "test_dispatch[noop-serial-w1-c1]")
        serial["stats"]["data"] = [0.004] * 3  # 400 tasks: 10 µs each
        serial["extra_info"]["cpu_time_s"] = 0.012  # 10 µs of CPU per task
        fork = bench_named(data, "test_dispatch[noop-process-fork-w2-c1]")
        fork["stats"]["data"] = [0.2] * 3  # 500 µs per task
        fork["extra_info"]["cpu_time_s"] = 1.212  # 1.01 ms of CPU per task over 3 rounds of 400
        fork["extra_info"]["latency_samples_s"] = [0.005, 0.003, 0.004]  # median 4 ms
        scaling = bench_named(data, POOL)
        scaling["stats"]["data"] = [pool_round_s] * 3
        scaling["extra_info"]["serial_samples_s"] = [0.16] * 3  # the whole batch of 8 serially: 20 ms a task
        scaling["extra_info"]["serial_tasks"] = 8

    return edit


def model_of(tmp_path, pool_round_s: float) -> metrics.OverheadModel:
    records = load([edited(tmp_path, "m.json", known(pool_round_s))])
    models = [m for m in metrics.overhead_model(records) if m.pool == "process/fork"]
    assert len(models) == 1  # the c16 and c256 cases have no latency: only chunksize 1 models
    return models[0]


def test_the_model_is_the_call_latency_spread_over_the_batch_plus_cpu_per_task(tmp_path):
    m = model_of(tmp_path, 0.1)  # speedup 0.16 / 0.1 = 1.6 at two workers
    assert m.latency_ms == pytest.approx(4.0)
    assert m.cpu_ms == pytest.approx(1.0)  # 1.01 ms less serial's 0.01
    assert m.wall_ms == pytest.approx(0.49)  # 500 µs less serial's 10
    assert (m.workers, m.tasks, m.task_ms) == (2, 8, pytest.approx(20.0))
    assert m.model_ms == pytest.approx(2 * 4.0 / 8 + 1.0)  # W × latency / n + CPU: 2 ms
    # measured: 20 ms × (ideal 2 / speedup 1.6 − 1) = 5 ms; every round alike, so the interval is the point
    assert (m.measured_lo, m.measured_ms, m.measured_hi) == pytest.approx((5.0, 5.0, 5.0))
    assert m.gap == pytest.approx(1.5) and m.within is False
    # break-even for 10 % overhead: 9 × cost; this batch (4 tasks per worker) 9 × (1 + 4/4), a long one 9 × 1
    assert m.break_even_ms(4) == pytest.approx(18.0)
    assert m.break_even_ms() == pytest.approx(9.0)


def test_a_model_within_a_quarter_of_the_measured_cost_agrees(tmp_path):
    m = model_of(tmp_path, 0.16 / (2 / 1.1))  # measured 20 × 0.1 = 2.0 ms: the model exactly
    assert m.measured_ms == pytest.approx(2.0) and m.gap == pytest.approx(0.0, abs=1e-9) and m.within


def test_the_report_says_by_how_much_a_model_misses(tmp_path):
    records = load([edited(tmp_path, "m.json", known(0.1))])
    text = "\n".join(report.model_lines(records))
    assert (
        "| process/fork | 490 µs | 4.00 ms | 1.00 ms | 2.00 ms (8 tasks) | 5.00 ms [5.00, 5.00] | +150% (off) |" in text
    )
    assert (
        "`process/fork`: the scaling case's cost per task (5.00 ms, interval 5.00–5.00) is +150% from the model" in text
    )
    agreeing = load([edited(tmp_path, "a.json", known(0.16 / (2 / 1.1)))])
    assert "from the model" not in "\n".join(report.model_lines(agreeing))


def test_results_without_latency_have_no_model(tmp_path):
    records = load([edited(tmp_path, "old.json", lambda data: None)])  # schema 1: no latency_samples_s
    assert metrics.overhead_model(records) == [] and report.model_lines(records) == []
