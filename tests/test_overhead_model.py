"""The overhead model (scripts/costs.py ``overhead_model``): its arithmetic on fixture data, and
what the report says when the clock and the CPU time agree or do not.

The 2-CPU fixture (a real run) is edited so that every figure is known by hand: the serial case
spends 20 ms of CPU per task, the process pool's case at two workers 25 ms; its batch holds 8
tasks of 20 ms; the serial empty task costs 10 µs of wall and CPU time, the process pool's 500 µs of
wall, 1.01 ms of CPU, and one ``map`` call 4 ms.
"""

from __future__ import annotations

import json

import pytest

from scripts import analysis, costs
from scripts.analysis import Analysis
from scripts.results import load
from tests.test_intervals import FIXTURES, bench_named, edited

POOL = "test_scaling[cpu_python-process-fork-w2]"


def known(pool_round_s: float, pool_cpu_s: float = 0.6, probe_cpu_s: list[float] | None = None):
    def edit(data: dict) -> None:
        serial = bench_named(data, "test_dispatch[noop-serial-w1-c1]")
        serial["stats"]["data"] = [0.004] * 3  # 400 tasks: 10 µs each
        serial["extra_info"]["cpu_time_s"] = 0.012  # 10 µs of CPU per task
        fork = bench_named(data, "test_dispatch[noop-process-fork-w2-c1]")
        fork["stats"]["data"] = [0.2] * 3  # 500 µs per task
        fork["extra_info"]["cpu_time_s"] = 1.212  # 1.01 ms of CPU per task over 3 rounds of 400
        fork["extra_info"]["latency_samples_s"] = [0.005, 0.003, 0.004]  # median 4 ms
        bench_named(data, "test_scaling[cpu_python-serial-w1]")["extra_info"]["cpu_time_s"] = 0.48  # 20 ms a task
        scaling = bench_named(data, POOL)
        scaling["stats"]["data"] = [pool_round_s] * 3
        scaling["extra_info"]["serial_samples_s"] = [0.16] * 3  # the whole batch of 8 serially: 20 ms a task
        scaling["extra_info"]["serial_tasks"] = 8
        scaling["extra_info"]["cpu_time_s"] = pool_cpu_s  # 3 rounds of 8 tasks
        if probe_cpu_s is not None:  # schema 6: each probe's own CPU time (probes of 8 tasks here)
            scaling["extra_info"]["serial_cpu_samples_s"] = probe_cpu_s

    return edit


def model_of(tmp_path, pool_round_s: float, pool_cpu_s: float = 0.6, probe_cpu_s=None) -> costs.OverheadModel:
    records = load([edited(tmp_path, "m.json", known(pool_round_s, pool_cpu_s, probe_cpu_s))])
    models = [m for m in costs.overhead_model(records) if m.pool == "process/fork"]
    assert len(models) == 1  # at the recommended size only (2 here), not at 1, 4 or 8 workers
    return models[0]


def test_cost_by_the_clock_and_by_cpu_time_and_the_empty_task_prediction(tmp_path):
    m = model_of(tmp_path, 0.1)  # speedup 0.16 / 0.1 = 1.6 at two workers
    assert (m.workers, m.tasks, m.task_ms) == (2, 8, pytest.approx(20.0))
    # by the clock: 20 ms × (ideal 2 / speedup 1.6 − 1) = 5 ms, its interval the speedup's (its spread pooled
    # with the run's other cpu_python points: common/reference.py)
    assert m.measured_ms == pytest.approx(5.0) and m.measured_lo < 5.0 < m.measured_hi
    # by CPU time: 0.6 s over 3 rounds of 8 tasks = 25 ms a task, less the serial case's 20 ms
    assert m.cpu_ms == pytest.approx(5.0) and m.cpu_basis == "serial case"
    # one map call (4 ms) over the batch: W × latency / n = 2 × 4 / 8 = 1 ms; the band 5..6 ms, its middle 5.5
    assert m.call_ms == pytest.approx(1.0)
    assert (m.model_lo, m.model_ms, m.model_hi) == pytest.approx((5.0, 5.5, 6.0))
    assert m.gap == pytest.approx(5.0 / 5.5 - 1) and m.in_band and m.within
    # the empty tasks: 500 µs less serial's 10; one call 4 ms; 1.01 ms of CPU less serial's 0.01
    assert (m.wall_ms, m.latency_ms, m.empty_cpu_ms) == pytest.approx((0.49, 4.0, 1.0))
    assert m.empty_model_ms == pytest.approx(2 * 4.0 / 8 + 1.0)  # W × latency / n + CPU: 2 ms
    assert m.empty_ratio == pytest.approx(2.5)  # the real batch cost 2.5× what the empty tasks predict
    # break-even for 10 % overhead: 9 × the cost, measured in this batch, or by CPU time for a long one
    assert m.break_even_ms() == pytest.approx(45.0)
    assert m.break_even_ms(long_batch=True) == pytest.approx(45.0)


def test_the_cpu_a_task_takes_alone_comes_from_the_paired_probes_when_recorded(tmp_path):
    # the probes after each round took 0.176 s of CPU for 8 tasks: 22 ms a task at the rounds' moments,
    # where the serial case (another moment) said 20 ms; the model subtracts the probes' figure
    m = model_of(tmp_path, 0.1, probe_cpu_s=[0.176, 0.176, 0.176])
    assert m.cpu_basis == "paired probes" and m.cpu_ms == pytest.approx(25.0 - 22.0)
    assert model_of(tmp_path, 0.1).cpu_basis == "serial case"  # schema 5 and older: no probe CPU


def test_a_pool_case_with_less_cpu_than_serial_has_no_verdict(tmp_path):
    m = model_of(tmp_path, 0.1, pool_cpu_s=0.35)  # 14.6 ms a task, below the serial case's 20: noise between them
    assert m.cpu_ms == pytest.approx(0.35 / 24 * 1e3 - 20) and m.model_ms < 0
    assert m.gap is None and m.within is None


def test_a_clock_cost_beyond_the_band_is_named_off(tmp_path):
    m = model_of(tmp_path, 0.12)  # speedup 1.33: 20 × (1.5 − 1) = 10 ms by the clock; the band 5..6 ms
    assert m.measured_ms == pytest.approx(10.0) and not m.in_band
    assert m.gap == pytest.approx(10 / 5.5 - 1) and m.within is False
    close = model_of(tmp_path, 0.1, pool_cpu_s=0.6 + 24 * 0.0006)  # CPU 5.6 ms: the band 5.6..6.6, the clock 5
    assert not close.in_band and close.gap == pytest.approx(5 / 6.1 - 1) and close.within  # −18 %: within 25 %
    far = model_of(tmp_path, 0.1, pool_cpu_s=0.6 + 24 * 0.0035)  # CPU 8.5 ms: the band 8.5..9.5, middle 9
    assert far.measured_hi < far.model_ms  # the clock's interval does not reach the model
    assert far.gap == pytest.approx(5 / 9 - 1) and far.within is False  # −44 %, outside the band


def test_the_report_says_by_how_much_the_two_clocks_differ(tmp_path):
    records = load([edited(tmp_path, "m.json", known(0.12))])
    text = "\n".join(costs.model_lines(Analysis(records).runs[0]))
    m = next(m for m in costs.overhead_model(records) if m.pool == "process/fork")
    lo, hi = f"{m.measured_lo:.2f}", f"{m.measured_hi:.2f}"
    row = (
        f"| process/fork w2 | 10.00 ms [{lo}, {hi}] (8 tasks of 20.0 ms) | 5.00 ms | 1.00 ms "
        "| 5.50 ms [5.00, 6.00] | +82% (off) | 490 µs |"
    )
    assert row in text
    assert (
        f"`process/fork`: the cost per task by the clock (10.00 ms, interval {lo}–{hi}) is +82% from the model "
        "(5.50 ms [5.00, 6.00]), outside its band" in text
    )
    agreeing = load([edited(tmp_path, "a.json", known(0.1))])
    assert "`process/fork`:" not in "\n".join(costs.model_lines(Analysis(agreeing).runs[0]))


def test_results_without_cpu_time_or_latency_keep_what_they_have(tmp_path):
    def strip(data: dict) -> None:
        bench_named(data, POOL)["extra_info"]["cpu_time_s"] = None

    m = next(m for m in costs.overhead_model(load([edited(tmp_path, "old.json", strip)])) if m.pool == "process/fork")
    assert m.model_ms is None and m.gap is None and m.within is None  # no CPU time: no model, no verdict
    assert m.latency_ms is None and m.empty_model_ms is None  # schema 1: no latency_samples_s
    assert m.measured_ms > 0  # the clock's figure stands alone


def test_an_existing_cluster_is_measured_against_its_workers_cpus_not_the_clients(tmp_path):
    # the 1-CPU fixture, its process pool at two workers relabelled as an existing cluster of two
    # one-CPU workers: the client's one CPU no longer caps the ideal, the workers' two do
    data = json.loads((FIXTURES / "quick-1cpu-affinity.json").read_text())
    data["machine_info"]["poolbench"]["dask"] = {
        "scheduler": "tcp://127.0.0.1:8786",
        "workers": 2,
        "worker_info": [{"nthreads": 1, "effective_cpus": 1.0}, {"nthreads": 1, "effective_cpus": 1.0}],
    }
    pool = bench_named(data, POOL)
    pool["extra_info"].update(executor="dask", start_method="external")  # the recorded key of a pool's variant
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(data))
    records = load([path])
    point = analysis.find(analysis.scaling_points(records), "cpu_python", "dask/external", 2)
    assert point.ideal == 2.0 and point.effective_cpus == 2.0
    local = analysis.find(analysis.scaling_points(records), "cpu_python", "thread", 2)
    assert local.ideal == 1.0  # the client's own pools keep the client's CPU
    (m,) = [m for m in costs.overhead_model(records) if m.pool == "dask/external"]
    assert m.model_ms is None  # its scheduler and workers spend CPU outside the client's tree: no CPU model
