"""One analysis per invocation (scripts/analysis.py): drawn once, read by every tool alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import analysis, compare, gating, report
from scripts.analysis import Analysis
from scripts.results import load

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"


def _two_sides(tmp_path: Path, base_name: str, cur_name: str) -> tuple[Path, Path]:
    """The fixture run copied to two results files (a gate's baseline and current side)."""
    base, cur = tmp_path / "base" / base_name, tmp_path / "cur" / cur_name
    for path in (base, cur):
        path.parent.mkdir()
        shutil.copy(TWO, path)
    return base, cur


def test_a_report_draws_each_interval_once(tmp_path, monkeypatch):
    calls = []
    real = analysis.estimate_draws

    def counted(estimate, rng, resamples=analysis.RESAMPLES):
        calls.append(estimate)
        return real(estimate, rng, resamples)

    monkeypatch.setattr(analysis, "estimate_draws", counted)
    assert report.main([str(TWO), "--out", str(tmp_path / "r")]) == 0
    pools = [r.name for r in load([TWO]) if r.case == "scaling" and r.executor != "serial"]
    assert len(calls) == len(pools)  # each pool's draws once, though report, plots and claims read them


def test_the_analysis_gives_the_same_points_as_scaling_points_alone():
    records = load([TWO])
    assert Analysis(records).points == analysis.scaling_points(records)


def test_the_gate_shows_each_side_the_interval_the_report_states(tmp_path):
    base, cur = _two_sides(tmp_path, "run-a.json", "run-b.json")
    args = compare.parse_args([str(base), str(cur)])
    gate = compare.decide(args, compare.one_run(str(base)), compare.one_run(str(cur)))
    points = {(p.workload, p.pool, p.workers): p for p in Analysis(load([base])).points}
    rows = [r for r in gate.rows if r.metric == "speedup"]
    assert rows
    for row in rows:
        rec = next(r for r in load([base]) if r.name == row.name)
        p = points[(rec.workload, rec.pool, rec.workers)]
        assert row.baseline_ci == pytest.approx((p.speedup_lo, p.speedup_hi))


def test_two_sides_of_one_file_name_draw_independently(tmp_path):
    base, cur = _two_sides(tmp_path, "results.json", "results.json")
    bs, cs = compare.samplers(load([base]), load([cur]), None)
    rec_b = next(r for r in bs.an.records if r.case == "scaling" and r.executor != "serial")
    rec_c = next(r for r in cs.an.records if r.name == rec_b.name)
    speedup = gating.BY_NAME["speedup"]
    assert not (bs.draws(speedup, rec_b) == cs.draws(speedup, rec_c)).all()
