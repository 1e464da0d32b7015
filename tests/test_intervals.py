"""Speedups with intervals: paired serial rounds cancel drift, intervals are reproducible and hold
their point, recommendations treat overlapping intervals as equal, summary.json and the agreement
tool report them. Fixtures are the real runs of tests/fixtures, edited where a case needs it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from common.executors import Pool
from scripts import analysis, claims, report
from scripts.results import load
from tests.clirun import run_module

FIXTURES = Path(__file__).parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"


def edited(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the 2-CPU fixture with ``edit(data)`` applied, saved as ``name``."""
    data = json.loads(TWO.read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def bench_named(data: dict, name: str) -> dict:
    return next(b for b in data["benchmarks"] if b["name"] == name)


POOL = "test_scaling[cpu_python-process-fork-w2]"


def test_paired_serial_rounds_cancel_drift_that_hits_both_sides(tmp_path):
    # A host whose speed drifts by 3× across the rounds, hitting each pool round and the serial round
    # right after it alike: the pool is exactly twice as fast in every pair.
    drift = [1.0, 3.0, 1.5]

    def make(data, paired: bool):
        pool = bench_named(data, POOL)
        pool["stats"]["data"] = [0.05 * d for d in drift]
        if paired:
            pool["extra_info"]["serial_samples_s"] = [0.10 * d for d in drift]
        serial = bench_named(data, "test_scaling[cpu_python-serial-w1]")
        serial["stats"]["data"] = [0.10 * d for d in reversed(drift)]  # measured at other moments

    paired = analysis.find(analysis.scaling_points(load([edited(tmp_path, "p.json", lambda d: make(d, True))])),
                          "cpu_python", "process/fork", 2)  # fmt: skip
    unpaired = analysis.find(analysis.scaling_points(load([edited(tmp_path, "u.json", lambda d: make(d, False))])),
                            "cpu_python", "process/fork", 2)  # fmt: skip
    assert paired.paired and not unpaired.paired
    assert paired.speedup == pytest.approx(2.0) and paired.speedup_lo <= 2.0 <= paired.speedup_hi
    # the same drift, unpaired: a wide interval, however much of the run's spread it is pooled with
    assert (paired.speedup_hi / paired.speedup_lo) < (unpaired.speedup_hi / unpaired.speedup_lo) / 1.5
    assert paired.serial_s == pytest.approx(0.15)  # the median paired serial round


def test_intervals_repeat_exactly_and_follow_the_spread_of_their_own_workloads_rounds(tmp_path):
    first = analysis.scaling_points(load([TWO]))
    again = analysis.scaling_points(load([TWO]))
    assert [(p.speedup_lo, p.speedup_hi) for p in first] == [(p.speedup_lo, p.speedup_hi) for p in again]
    for p in first:
        assert p.efficiency_lo == pytest.approx(p.speedup_lo / p.ideal)

    def spread_out(data):  # the same median round, its neighbours twice as far off it
        bench_named(data, POOL)["stats"]["data"] = [0.0103, 0.0206183, 0.0412]

    wider = analysis.scaling_points(load([edited(tmp_path, "wider.json", spread_out)]))
    before = {(p.workload, p.pool, p.workers): p for p in first}
    after = {(p.workload, p.pool, p.workers): p for p in wider}
    point = ("cpu_python", "process/fork", 2)
    assert after[point].speedup == pytest.approx(before[point].speedup)  # the median did not move
    width = {k: p.speedup_hi / p.speedup_lo for k, p in after.items()}
    assert width[point] > 1.5 * before[point].speedup_hi / before[point].speedup_lo
    # a point's spread borrows from its group's (common/reference.py estimates): cpu_python's other pools
    # at W <= C widen by a third or more; the rest (its crowded pools at W = 4 > C, the other workloads)
    # move only through the run's prior weight, by a few percent
    ratio = {k: width[k] / (before[k].speedup_hi / before[k].speedup_lo) for k in after}
    same_group = [k for k in after if k[0] == "cpu_python" and k[1] != "serial" and k[2] <= 2 and k != point]
    assert same_group and all(ratio[k] > 1.3 for k in same_group)
    for key in set(after) - set(same_group) - {point}:
        assert ratio[key] == pytest.approx(1.0, abs=0.03), key


def test_a_paired_record_of_the_wrong_length_is_not_used(tmp_path):
    def edit(data):
        bench_named(data, POOL)["extra_info"]["serial_samples_s"] = [0.1]  # one value for three rounds

    (rec,) = [r for r in load([edited(tmp_path, "bad.json", edit)]) if r.name == POOL]
    assert rec.paired_serial is None


def _point(pool: str, workers: int, speedup: float, lo: float, hi: float, ideal: float = 2.0):
    base = analysis.scaling_points(load([TWO]))[0]
    return dataclasses.replace(
        base, workload="w", pool=pool, workers=workers, speedup=speedup, speedup_lo=lo, speedup_hi=hi, ideal=ideal
    )


def _recommend(points):
    ev = claims.Evidence(load([TWO]))
    ev.points = points
    (row,) = claims.recommend(ev)
    return row[2]


def test_overlapping_intervals_count_as_equal_and_the_cheaper_pool_wins():
    thread = _point("thread", 2, 1.70, 1.55, 1.85)
    process = _point("process/fork", 2, 1.80, 1.70, 1.90)
    assert _recommend([thread, process]) == "`thread`, max_workers=2"
    apart = _point("thread", 2, 1.30, 1.20, 1.40)
    assert _recommend([apart, process]) == "`process/fork`, max_workers=2"
    fewer = _point("process/fork", 2, 1.9, 1.8, 2.0)
    more = _point("process/fork", 4, 2.6, 1.85, 3.0)  # above its ideal of 2: capped, and overlapping
    assert _recommend([fewer, more]) == "`process/fork`, max_workers=2"
    unsure = _point("thread", 2, 1.2, 0.95, 1.5)
    assert _recommend([unsure]).startswith("no pool (serial)")


def test_report_writes_summary_json_with_every_point_and_its_interval(tmp_path):
    done = run_module("scripts.report", str(TWO), "--out", str(tmp_path / "r"), timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["confidence"] == 0.95 and summary["summary_schema"] == report.SUMMARY_SCHEMA == 5
    points = analysis.scaling_points(load([TWO]))
    assert len(summary["records"]) == len(points)
    keys = {"label", "python", "workload", "executor", "start_method", "workers", "speedup", "speedup_low"}
    keys |= {"speedup_high", "prediction_low", "prediction_high", "defect", "efficiency", "ideal", "rounds", "run"}
    by_identity = {(p.workload, p.pool, p.workers): p for p in points}
    for rec in summary["records"]:
        assert keys <= set(rec)
        # each record states its point's figures as the analysis has them (rounded for the file)
        p = by_identity[(rec["workload"], str(Pool(rec["executor"], rec["start_method"])), rec["workers"])]
        assert (rec["speedup_low"], rec["speedup"], rec["speedup_high"]) == pytest.approx(
            (p.speedup_lo, p.speedup, p.speedup_hi), rel=1e-3
        )
        assert (rec["prediction_low"], rec["prediction_high"]) == pytest.approx(
            (p.prediction_lo, p.prediction_hi), rel=1e-3
        )
        assert rec["run"]["source"] == str(TWO)
    assert [c["source"] for c in summary["checks"]] == [str(TWO)]
    identities = {(r["label"], r["python"], r["workload"], r["executor"], r["start_method"], r["workers"])
                  for r in summary["records"]}  # fmt: skip
    assert len(identities) == len(summary["records"])
    text = (tmp_path / "r" / "report.md").read_text()
    assert "95% confidence interval for this run, from the spread of the rounds" in text
    assert "] (best measured:" in text  # recommendations show intervals


def test_agreement_of_identical_runs_is_total_and_of_different_runs_is_measured(tmp_path):
    same = run_module("scripts.agreement", str(TWO), str(TWO), timeout=120)
    assert same.returncode == 0, same.stderr
    assert "spread within 5% of their mean" in same.stdout
    assert "= 100% (goal 90%)" in same.stdout

    def slower(data):
        for b in data["benchmarks"]:
            if b["name"] == POOL:
                b["stats"]["data"] = [x * 3 for x in b["stats"]["data"]]

    other = edited(tmp_path, "slower.json", slower)
    done = run_module("scripts.agreement", str(TWO), str(other), timeout=120)
    assert done.returncode == 0
    line = next(x for x in done.stdout.splitlines() if x.startswith("cpu_python process/fork w2 "))
    assert "0/2" in line and "100.0%" in line  # 3× slower: speedups 2/3 of the first apart, their mean 2/3 of it
    bad = run_module("scripts.agreement", str(TWO), timeout=60)
    assert bad.returncode == 2 and "at least two runs" in bad.stderr


def test_compare_shows_each_side_with_its_interval(tmp_path):
    done = run_module("scripts.compare", str(TWO), str(TWO), timeout=120)
    assert done.returncode == 0, done.stdout
    row = next(x for x in done.stdout.splitlines() if x.startswith(POOL) and " speedup " in x)
    assert row.removeprefix(POOL).count("[") == 3  # baseline interval, current interval, ratio interval
    assert "carry their own 95% interval" in done.stdout
