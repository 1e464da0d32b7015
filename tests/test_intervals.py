"""Speedups with intervals: paired serial rounds cancel drift, intervals are reproducible and hold
their point, a point's spread borrows from its group's (common/reference.py), recommendations treat
overlapping intervals as equal, summary.json and the agreement tool report them. Fixtures are the
real runs of tests/fixtures, edited where a case needs it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from common import reference, stats
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


def test_t_quantiles_match_the_table():
    table = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 30: 2.042}
    for df, t in table.items():
        assert reference.t_quantile(0.975, df) == pytest.approx(t, abs=1e-3)
    assert reference.t_quantile(0.975, math.inf) == pytest.approx(1.960, abs=1e-3)


def test_a_prediction_interval_is_wider_than_the_confidence_interval_by_root_two():
    e = reference.Estimate.of(2.0, 3, (0.0009, 12))
    half = math.log(e.high / e.value)
    assert math.log(e.prediction_high / e.value) == pytest.approx(half * math.sqrt(2))
    assert half == pytest.approx(reference.t_quantile(0.975, 12) * math.sqrt(0.0009 / 3))
    assert reference.Estimate.of(2.0, 1, None).low == 2.0  # no spread: the figure itself


def test_points_alike_take_their_groups_pooled_spread():
    w, other = reference.SpreadGroup("run", "w"), reference.SpreadGroup("run", "other")
    est = reference.estimates(
        {
            "a": (w, 1.0, [0.0, 0.1]),  # variance 0.005, 1 df
            "b": (w, 1.0, [0.0, 0.0, 0.0]),  # variance 0, 2 df: no log variance, so no scatter seen
            "c": (other, 1.0, [0.0, 0.2]),
        }
    )
    assert est["a"].df == est["b"].df == 3 and est["c"].df == 1
    assert est["a"].log_se == pytest.approx(math.sqrt(0.005 / 3 / 2))
    assert est["b"].log_se == pytest.approx(math.sqrt(0.005 / 3 / 3))


def _spread_points(group, sds):
    """Points of three passes whose log values have exactly the standard deviation ``sd`` (−sd, 0, sd)."""
    return {(group, i): (group, 1.0, [-sd, 0.0, sd]) for i, sd in enumerate(sds)}


def test_points_unlike_keep_part_of_their_own_spread():
    # one run, one workload: four quiet points (1 %) and four noisy ones (4 %)
    g = reference.SpreadGroup("run", "w")
    points = _spread_points(g, [0.01] * 4 + [0.04] * 4)
    d0 = reference.prior_df([[reference.spread_of(v) for _, _, v in points.values()]])
    assert 0 < d0 < 20
    est = reference.estimates(points)
    quiet, noisy = est[(g, 0)], est[(g, 7)]
    pooled_variance = (0.01**2 + 0.04**2) / 2
    assert quiet.df == noisy.df == pytest.approx(d0 + 2)
    assert quiet.log_se**2 * 3 == pytest.approx((d0 * pooled_variance + 2 * 0.01**2) / (d0 + 2))
    assert quiet.log_se < math.sqrt(pooled_variance / 3) < noisy.log_se
    # the same eight points alike (all 2.5 %): the pooled spread for each, its df the group's
    alike = reference.estimates(_spread_points(g, [0.025] * 8))
    assert alike[(g, 0)].df == 16 and alike[(g, 0)].log_se == pytest.approx(0.025 / math.sqrt(3))


def test_the_prior_weight_is_estimated_per_run():
    noisy_run = _spread_points(reference.SpreadGroup("a", "w"), [0.01] * 4 + [0.04] * 4)
    calm_run = _spread_points(reference.SpreadGroup("b", "w"), [0.02] * 8)
    est = reference.estimates({**noisy_run, **calm_run})
    assert est[(reference.SpreadGroup("b", "w"), 0)].df == 16  # run b's points are alike: pooled, as alone
    assert est[(reference.SpreadGroup("a", "w"), 0)].df < 16


def test_a_point_alone_in_its_group_keeps_its_own_spread():
    run = _spread_points(reference.SpreadGroup("run", "w"), [0.01] * 4 + [0.04] * 4)
    lone = reference.SpreadGroup("run", "w", crowded=True)
    est = reference.estimates({**run, "lone": (lone, 1.0, [-0.03, 0.0, 0.03])})
    assert est["lone"].df == 2 and est["lone"].log_se == pytest.approx(0.03 / math.sqrt(3))


def test_a_crowded_pool_borrows_only_from_crowded_pools():
    assert reference.spread_group("r", "w", "thread", 4, 2.0) == reference.SpreadGroup("r", "w", True)
    assert reference.spread_group("r", "w", "process", 2, 2.0).crowded is False
    assert reference.spread_group("r", "w", "thread", 2, 1.5).crowded is False  # ⌈1.5⌉ CPUs
    assert reference.spread_group("r", "w", "serial", 1, 1.0).crowded is False


def test_the_special_functions_against_known_values():
    assert stats.digamma(1.0) == pytest.approx(-0.5772156649, abs=1e-9)
    assert stats.digamma(0.5) == pytest.approx(-1.9635100260, abs=1e-9)
    assert stats.trigamma(1.0) == pytest.approx(math.pi**2 / 6, abs=1e-9)
    assert stats.trigamma(0.5) == pytest.approx(math.pi**2 / 2, abs=1e-9)
    for x in (0.05, 0.7, 3.0, 40.0):
        assert stats.trigamma_inverse(stats.trigamma(x)) == pytest.approx(x, rel=1e-6)
