"""Every shortfall from ideal gets its measured cause (scripts/causes.py ``explain``), on fixture data.

Each fixture is one run: a serial case (16 tasks, 1 s per batch, one CPU busy) and one pool case
whose records carry one cause and nothing else, built the way the suite records them (per-round
samples, paired serial rounds, tree CPU time, minor faults and throttling over the timed rounds).
"""

from __future__ import annotations

import json

import pytest

from scripts import analysis, claims, report
from scripts.analysis import Analysis
from scripts.results import Record, Run

ROUNDS = 5
TASKS = 16


def _run(**info) -> Run:
    poolbench = {
        "effective_cpus": 2.0,
        "recommended_workers": 2,
        "cpu_count": 2,
        "affinity_cpus": 2,
        "gil_enabled": True,
        "cpu_quota": None,
        **info,
    }
    return Run(source="run.json", datetime="2026-12-02T00:00:00", label="2 CPUs", machine={"poolbench": poolbench})


def _record(
    run: Run,
    executor: str,
    workers: int,
    batch_s: float,
    *,
    case: str = "scaling",
    workload: str = "work",
    kind: str = "cpu-native",
    gil: str = "releases",
    variant: str | None = None,
    tasks: int = TASKS,
    cpus_busy: float | None = None,
    faults_per_task: float = 0.0,
    paired_s: float | None = None,
    **extra,
) -> Record:
    samples = (batch_s,) * ROUNDS
    info = {
        "cpu_time_s": (cpus_busy if cpus_busy is not None else min(workers, 2)) * batch_s * ROUNDS,
        "minor_faults": int(faults_per_task * tasks * ROUNDS),
        **extra,
    }
    if paired_s is not None:
        info["serial_samples_s"] = [paired_s] * ROUNDS
    method = f"-{variant}" if variant else ""
    return Record(
        run=run,
        name=f"test_{case}[{workload}-{executor}{method}-w{workers}]",
        case=case,
        workload=workload,
        kind=kind,
        gil=gil,
        executor=executor,
        variant=variant,
        workers=workers,
        tasks=tasks,
        chunksize=1,
        samples=samples,
        extra=info,
    )


def _explained(pool: Record, *others: Record, serial_faults: float = 0.0) -> analysis.ScalingPoint:
    serial = _record(
        pool.run, "serial", 1, 1.0, workload=pool.workload, kind=pool.kind, gil=pool.gil, tasks=pool.tasks,
        cpus_busy=1.0, faults_per_task=serial_faults,
    )  # fmt: skip
    (point,) = [p for p in analysis.scaling_points([serial, pool, *others]) if p.pool != "serial"]
    return point


def test_gil_holding_work_on_threads_is_explained_by_the_gil():
    p = _explained(_record(_run(), "thread", 2, 1.0, gil="holds", cpus_busy=1.0, paired_s=1.0))
    assert p.efficiency == pytest.approx(0.5)
    assert p.cause.cause == "gil"
    assert p.cause.text == "threads used 1.0 of 2 CPUs: the GIL"
    assert p.cause.share == pytest.approx(0.5)


def test_the_same_work_on_a_build_without_the_gil_is_not_blamed_on_it():
    p = _explained(_record(_run(gil_enabled=False), "thread", 2, 1.0, gil="holds", cpus_busy=1.0, paired_s=1.0))
    assert p.cause.cause == "idle"
    assert p.cause.text.startswith("threads kept 1.0 of 2 CPUs busy")


def test_page_faults_the_serial_side_does_not_take_are_the_allocator():
    # 2 CPUs busy, yet 1.4× the CPU per task, and 4 000 faults per task against serial's none
    p = _explained(_record(_run(), "thread", 2, 0.7, cpus_busy=2.0, faults_per_task=4000, paired_s=1.0))
    assert p.cause.cause == "allocator"
    assert p.cause.text == "threads took 4,000 page faults per task, serial 0: the allocator"
    assert p.signals.cpu_per_task_ratio == pytest.approx(1.4)
    assert p.cause.share == pytest.approx(1 - 1 / 1.4)


def test_faults_that_threads_take_in_turn_are_the_allocator_even_when_serial_takes_as_many():
    # --malloc fixed: every executor maps each buffer anew; threads share one memory map, so they
    # take their faults in turn and their CPUs idle, while processes do not
    p = _explained(
        _record(_run(), "thread", 2, 0.6, cpus_busy=1.7, faults_per_task=8200, paired_s=1.0), serial_faults=8200
    )
    assert p.cause.cause == "allocator"
    assert p.cause.text == (
        "threads took 8,200 page faults per task in one address space, where faults take turns "
        "(1.7 of 2 CPUs busy): the allocator"
    )
    same = _explained(
        _record(_run(), "process", 2, 0.6, variant="fork", cpus_busy=1.7, faults_per_task=8200, paired_s=1.0),
        serial_faults=8200,
    )
    assert same.cause.cause == "idle"  # each process has its own memory map


def test_extra_cpu_per_task_without_faults_is_contention():
    p = _explained(_record(_run(), "process", 2, 0.7, variant="fork", cpus_busy=2.0, paired_s=1.0))
    assert p.cause.cause == "contention"
    assert p.cause.text.startswith("each task took 1.40× its serial CPU time")


def test_a_throttled_cgroup_is_the_quota():
    run = _run(cpu_quota=2.0, cpu_period_us=100_000)
    # 4 s of timed rounds on 2 CPUs, 2.4 s throttled in all: 30 % of the CPU time the rounds could have had
    pool = _record(
        run, "thread", 2, 0.8, cpus_busy=1.2, paired_s=1.0, throttled_periods=20, throttled_s=2.4
    )  # fmt: skip
    p = _explained(pool)
    assert p.cause.cause == "quota"
    assert p.signals.periods == pytest.approx(40)
    assert p.signals.throttled_share == pytest.approx(0.3)
    assert (
        p.cause.text == "throttled in 20 CFS periods (rounds of 40 periods in all), 30% of its CPU time: the CPU quota"
    )


def test_the_dispatch_cost_measured_in_the_same_run_is_the_pools_own_cost():
    run = _run()
    # 1000 tasks of 1 ms: 199 µs each to hand out (the dispatch case) is a third of the 0.6 s batch
    pool = _record(run, "process", 2, 0.6, variant="fork", tasks=1000, cpus_busy=2.0 / 1.2, paired_s=1.0)
    empty = _record(run, "process", 2, 0.4, case="dispatch", workload="noop", variant="fork", tasks=2000)
    baseline = _record(run, "serial", 1, 0.002, case="dispatch", workload="noop", tasks=2000)
    p = _explained(pool, empty, baseline)
    assert p.signals.dispatch_us == pytest.approx(199)
    assert p.signals.dispatch_share == pytest.approx(199e-6 * 1000 / 0.6)
    assert p.cause.cause == "dispatch"
    assert p.cause.text.startswith("handing out tasks took 33% of the batch (199 µs per task")


def test_idle_cpus_with_no_recorded_reason_say_so():
    p = _explained(_record(_run(), "thread", 2, 0.8, cpus_busy=1.25, paired_s=1.0))
    assert p.cause.cause == "idle"
    assert p.cause.text == "threads kept 1.2 of 2 CPUs busy: CPUs stood idle for a reason not recorded"


def test_io_work_is_bounded_by_its_waiting():
    p = _explained(_record(_run(), "thread", 2, 0.8, kind="io", cpus_busy=0.01, paired_s=1.0))
    assert p.cause.cause == "io"


def test_a_speedup_above_the_ideal_names_faults_the_baseline_paid():
    pool = _record(_run(), "thread", 1, 0.7, cpus_busy=1.0, paired_s=1.0)
    p = _explained(pool, serial_faults=3000)
    assert p.efficiency > 1 and p.defect  # above its limit with no spread to blame: a measurement defect
    assert p.cause.cause == "allocator"
    assert p.cause.text.startswith(
        "serial took 3,000 page faults per task, threads 0: the allocator slowed the baseline"
    )


def test_a_point_at_its_ideal_has_no_cause_and_one_short_of_it_beyond_its_noise_has_one():
    at = _explained(_record(_run(), "process", 2, 0.5, variant="fork", cpus_busy=2.0, paired_s=1.0))
    assert at.efficiency == pytest.approx(1.0) and at.cause is None and not at.defect
    # every round alike: no spread, so a 4 % shortfall is measured, not noise, and gets its cause
    short = _explained(_record(_run(), "process", 2, 0.52, variant="fork", cpus_busy=2.0, paired_s=1.0))
    assert short.efficiency == pytest.approx(1 / 0.52 / 2) and short.efficiency_hi < 1
    assert short.cause.cause == "contention"


def test_a_point_above_its_ideal_is_a_measurement_defect_named_as_one():
    p = _explained(_record(_run(), "process", 2, 0.45, variant="fork", cpus_busy=2.0, paired_s=1.0))
    assert p.efficiency > 1 and p.defect
    assert p.cause.cause == "defect" and p.cause.text.startswith("above its physical limit beyond this run's noise")


def test_recommendations_claims_and_summary_json_carry_the_cause(tmp_path):
    run = _run()
    serial = _record(run, "serial", 1, 1.0, workload="cpu_python", kind="cpu-python", gil="holds", cpus_busy=1.0)
    thread = _record(
        run, "thread", 2, 1.0, workload="cpu_python", kind="cpu-python", gil="holds", cpus_busy=1.0, paired_s=1.0
    )  # fmt: skip
    ev = claims.Evidence([serial, thread])
    (row,) = claims.recommend(ev)
    assert row[2].startswith("no pool (serial)")
    assert row[4] == "thread w2 at 50% of its ideal: threads used 1.0 of 2 CPUs: the GIL"
    gil = claims.claim_gil(ev)
    assert "cpu_python (holds) 1.00× [1.00–1.00] (threads used 1.0 of 2 CPUs: the GIL)" in gil.measured
    table = report.summary(Analysis([serial, thread]))
    (record,) = [r for r in table["records"] if r["executor"] == "thread"]
    assert record["cause"] == {"cause": "gil", "text": "threads used 1.0 of 2 CPUs: the GIL", "share": 0.5}
    assert record["signals"]["cpus_used"] == pytest.approx(1.0)
    assert record["signals"]["gil_bound"] is True
    json.dumps(table)  # plain data


@pytest.mark.parametrize(
    ("malloc", "expected"),
    [
        ({"policy": "neutral", "applied": True}, None),
        ({"policy": "fixed", "applied": True}, "`--malloc fixed`: every buffer of 128 KiB"),
        ({"policy": "dynamic", "applied": True}, "`--malloc dynamic`: glibc's own threshold"),
        ({"policy": "neutral", "applied": False, "note": "not glibc (musl)"}, "was not applied (not glibc (musl))"),
        (
            {"policy": "neutral", "applied": True, "huge_pages": {"host": "madvise", "off": False, "note": "refused"}},
            "transparent huge pages stayed on (refused)",
        ),
        ({"policy": "neutral", "applied": True, "huge_pages": {"host": "never", "off": False, "note": None}}, None),
        ({"policy": "neutral", "applied": True, "huge_pages": {"host": "always", "off": True, "note": None}}, None),
    ],
)
def test_the_report_cautions_on_an_allocator_policy_that_is_not_neutral(malloc, expected):
    lines = report._cautions({"malloc": malloc, "io_fstype": "ext4", "cpu_time_source": "schedstat"})
    if expected is None:
        assert lines == []
    else:
        assert len(lines) == 1 and expected in lines[0]
    # results of schema 3 and older pinned the threshold by default: they read as fixed
    (old,) = report._cautions({"malloc_mmap_threshold": 131072, "cpu_time_source": "schedstat"})
    assert "`--malloc fixed`" in old
