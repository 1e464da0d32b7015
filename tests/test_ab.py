"""The A/B gate (scripts/ab.py) and its bars (scripts/ab_noise.py): the statistics on made-up pairs, the
decision on pairs of real runs (a results fixture, and evidence/ab's saved runs), bad input, and a short
A/B run end to end."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from scripts import ab, ab_noise
from scripts.gating import BY_NAME, METRICS
from scripts.results import load
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "quick-2cpus.json"
PAIRS = ROOT / "evidence" / "ab" / "pairs"
BARS = {m: 0.05 for m in METRICS}


def _args(**over):
    return ab.parse_args(
        ["a", "b", "--workload-file", "w.py", *(f"--{k.replace('_', '-')}={v}" for k, v in over.items())]
    )


def series(metric: str, base: list[float], head: list[float]) -> dict:
    s = ab.Series(BY_NAME[metric], f"{metric}[x]", 1, list(base), list(head))
    return {(metric, s.key): s}


def test_a_pairs_ratio_is_the_geometric_mean_and_its_interval_students_t():
    s = ab.Series(BY_NAME["work"], "work[x]", 3, [1.0, 1.0, 1.0, 1.0], [1.10, 1.12, 1.08, 1.10])
    ratio, lo, hi = s.estimate(0.95)
    assert math.log(ratio / lo) == pytest.approx(math.log(hi / ratio))  # symmetric in log
    logs = [math.log(x) for x in (1.10, 1.12, 1.08, 1.10)]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    assert ratio == pytest.approx(math.exp(mean))
    assert math.log(hi / ratio) == pytest.approx(3.182446 * sd / 2, rel=1e-4)  # t(0.975, 3)
    assert s.estimate(0.95, pairs=2)[0] == pytest.approx(math.sqrt(1.10 * 1.12))  # the first pairs only


def test_a_steady_slowdown_past_the_bar_is_a_time_regression_and_noise_is_not():
    rows = ab.verdicts(series("work", [1.0] * 4, [1.10, 1.11, 1.09, 1.10]), BARS, 0.95, 4)
    assert [r.verdict for r in rows] == ["regression"]
    gate = ab.decide(rows, _args(), ({}, {}))
    assert gate.outcome == "regression" and gate.verdict.startswith("time regression: work[x]")
    noisy = ab.verdicts(series("work", [1.0] * 4, [1.10, 0.92, 1.06, 0.95]), BARS, 0.95, 4)
    assert [r.verdict for r in noisy] == ["same"]  # 1.0 inside the interval: not significant
    small = ab.verdicts(series("work", [1.0] * 4, [1.02, 1.03, 1.02, 1.03]), BARS, 0.95, 4)
    assert [r.verdict for r in small] == ["same"]  # significant, under the bar
    assert ab.decide(small, _args(), ({}, {})).outcome == "pass"


def test_a_scaling_regression_is_named_as_one_and_a_run_denied_cpu_makes_it_inconclusive():
    rows = ab.verdicts(series("index", [1.9] * 3, [1.3, 1.32, 1.31]), BARS, 0.95, 3)
    gate = ab.decide(rows, _args(), ({}, {}))
    assert gate.outcome == "regression" and gate.verdict.startswith("scaling regression: index[x]")
    busy = ab.decide(rows, _args(), ({}, {"denied": True, "wait_share": 0.2}))
    assert busy.outcome == "inconclusive" and busy.exit_code == 3


def _raised_waits(path: Path, tmp: Path, factor: float) -> list:
    """A saved run with every case's run-queue wait ``factor`` times what it measured (a burst of load)."""
    body = json.loads(path.read_text())
    for bench in body["benchmarks"]:
        if bench["extra_info"].get("cpu_wait_s") is not None:
            bench["extra_info"]["cpu_wait_s"] *= factor
    out = tmp / path.name
    out.write_text(json.dumps(body))
    return load([out])


def test_an_arm_is_judged_denied_over_all_its_runs_as_one_run(tmp_path):
    """On evidence/ab's saved BASE runs (an idle machine): one run pushed just past the threshold by a burst
    names that run, not the arm; a burst through every run denies the arm."""
    runs = [load([PAIRS / f"base-{i}.json"]) for i in range(1, 4)]
    calm = ab.arm_denied(runs)
    assert not calm["denied"] and [r["denied"] for r in calm["runs"]] == [False] * 3
    factor = next(  # the least burst that denies the last run on its own
        f
        for f in (1.25, 1.5, 2.0, 3.0, 4.0, 6.0)
        if ab.arm_denied([_raised_waits(PAIRS / "base-3.json", tmp_path, f)])["denied"]
    )
    one = ab.arm_denied([*runs[:2], _raised_waits(PAIRS / "base-3.json", tmp_path, factor)])
    assert one["runs"][2]["denied"] and calm["wait_share"] < one["wait_share"] < one["runs"][2]["wait_share"]
    if one["wait_share"] < one["wait_threshold"]:  # the whole under the threshold: the arm was not denied
        assert not one["denied"]
    every = [_raised_waits(PAIRS / f"base-{i}.json", tmp_path, 6.0) for i in range(1, 4)]
    assert ab.arm_denied(every)["denied"]
    rows = ab.verdicts(series("work", [1.0] * 3, [1.2, 1.21, 1.19]), BARS, 0.95, 3)
    assert ab.decide(rows, _args(), (calm, calm)).outcome == "regression"
    assert ab.decide(rows, _args(), (calm, ab.arm_denied(every))).outcome == "inconclusive"


def test_the_job_is_denied_cpu_when_both_arms_were_and_one_arms_own_waits_are_its_code():
    """Interleaved arms share the machine's minutes: a neighbour denies both; HEAD waiting more than BASE
    (a lock's wake-ups) is HEAD's code, not the machine."""
    calm = {"denied": False, "wait_share": 0.083, "steal_share": 0.0, "cases": 15, "denied_cases": 2}
    own = {"denied": True, "wait_share": 0.103, "steal_share": 0.0, "cases": 15, "denied_cases": 6}
    job = ab.job_denied(calm, own)
    assert not job["denied"] and job["wait_share"] == 0.083 and job["arms"] == {"base": calm, "head": own}
    rows = ab.verdicts(series("index", [1.9] * 3, [1.5, 1.52, 1.51]), BARS, 0.95, 3)
    assert ab.decide(rows, _args(), (job, job)).verdict.startswith("scaling regression")
    busy = ab.job_denied({**calm, "denied": True, "wait_share": 0.2}, {**own, "wait_share": 0.25})
    assert busy["denied"] and busy["wait_share"] == 0.2
    assert ab.decide(rows, _args(), (busy, busy)).outcome == "inconclusive"


def test_by_default_the_aggregates_fail_and_a_single_cases_speedup_is_shown():
    rows = ab.verdicts(series("speedup", [1.0] * 4, [0.86, 0.87, 0.85, 0.86]), BARS, 0.95, 4)
    assert [r.verdict for r in rows] == ["regression"]
    shown = ab.decide(rows, _args(), ({}, {}))
    assert (shown.outcome, [r.name for r in shown.shown]) == ("pass", ["speedup[x]"])
    named = ab.decide(rows, _args(fail_on="index,work,speedup"), ({}, {}))
    assert named.outcome == "regression" and named.verdict.startswith("scaling regression: speedup[x]")


def test_the_budget_stops_before_a_pair_as_slow_as_the_slowest_would_pass_it(tmp_path, monkeypatch):
    clock = [0.0]
    took = iter([10.0, 20.0, 40.0, 10.0, 5.0, 5.0])  # each run's seconds: pairs of 30 s and 50 s

    def fake_run(arm, args, out, sizes_from):
        clock[0] += next(took)
        return load([FIXTURE])

    monkeypatch.setattr(ab, "run_arm", fake_run)
    monkeypatch.setattr(ab.time, "monotonic", lambda: clock[0])
    (tmp_path / "w.py").write_text(TASKS.format(slow="1.0"))
    args = ab.parse_args([str(tmp_path), str(tmp_path), "--workload-file", "w.py", "--budget", "120"])
    found: dict = {}
    pairs, stopped, runs, _ = ab.collect(args, ab.arms(args), tmp_path, {"bars": BARS}, found, say=lambda line: None)
    # after 80 s, a third pair as slow as the slowest (50 s) would end at 130 s; the mean pair (40 s) at 120 s
    assert (pairs, stopped, clock[0]) == (2, "--budget 120 s", 80.0)
    assert runs == ["base-1.json", "head-1.json", "head-2.json", "base-2.json"]


def test_an_improvement_passes_and_says_so():
    rows = ab.verdicts(series("index", [1.5] * 3, [1.9, 1.91, 1.92]), BARS, 0.95, 3)
    gate = ab.decide(rows, _args(), ({}, {}))
    assert (gate.outcome, gate.exit_code) == ("improvement", 0)


def test_a_run_stops_once_every_failing_metric_is_settled():
    settled = ab.verdicts(series("work", [1.0] * 3, [1.001, 0.999, 1.0]), BARS, 0.95, 3)
    assert ab.clear(settled, BARS, ("work",))  # well within the bar
    open_ = ab.verdicts(series("work", [1.0] * 3, [1.04, 0.97, 1.05]), BARS, 0.95, 3)
    assert not ab.clear(open_, BARS, ("work",))  # could still be a 5 % change either way
    assert ab.clear(open_, BARS, ("index",))  # ... but work does not fail this gate


def _slowed(data: dict, by: float) -> dict:
    out = copy.deepcopy(data)
    for bench in out["benchmarks"]:
        bench["stats"]["data"] = [x * by for x in bench["stats"]["data"]]
        for key in ("serial_samples_s",):
            if key in bench["extra_info"]:
                bench["extra_info"][key] = [x * by for x in bench["extra_info"][key]]
    return out


def test_one_pair_of_real_runs_gives_every_metric_its_ratio(tmp_path):
    data = json.loads(FIXTURE.read_text())
    (tmp_path / "slow.json").write_text(json.dumps(_slowed(data, 1.1)))
    values = ab.pair_values(load([FIXTURE]), load([tmp_path / "slow.json"]))
    assert {name for name, _ in values} == {"index", "work", "time", "speedup", "efficiency"}
    for (name, key), (base, head, members) in values.items():
        expected = 1.1 if BY_NAME[name].quantity == "time" else 1.0  # every time 10 % longer, speedups as they were
        assert head / base == pytest.approx(expected, rel=1e-6), (name, key)
        assert members >= 1


def test_an_index_weighs_its_cases_by_one_over_their_aa_spread_squared(tmp_path):
    data = json.loads(FIXTURE.read_text())
    noisy = "test_scaling[cpu_python-process-fork-w4]"
    for bench in data["benchmarks"]:
        if bench["name"] == noisy:  # HEAD: only the noisy case 20 % slower
            bench["stats"]["data"] = [x * 1.2 for x in bench["stats"]["data"]]
    (tmp_path / "head.json").write_text(json.dumps(data))
    base, head = load([FIXTURE]), load([tmp_path / "head.json"])
    cases = [r.name for r in BY_NAME["work"].members(base)["work[cpu_python]"]]
    spread = {name: [0.05 if name == noisy else 0.01, 10, 0.0, 1] for name in cases}

    def work(body: dict) -> float:
        b, h, members = ab.pair_values(base, head, ab.member_weights(body))[("work", "work[cpu_python]")]
        assert members == 7
        return h / b

    weighted = {"kind": "ab", "weighted": True, "key_spread": {"time": spread}}
    share = (1 / 0.05**2) / (6 / 0.01**2 + 1 / 0.05**2)  # its weight over all seven's
    assert work(weighted) == pytest.approx(1.2**share, rel=1e-9)
    assert work({**weighted, "weighted": False}) == pytest.approx(1.2 ** (1 / 7), rel=1e-9)  # as it was measured
    del spread[cases[0]]  # one case the A/A runs never measured: equal shares for every case of the key
    assert work(weighted) == pytest.approx(1.2 ** (1 / 7), rel=1e-9)
    assert ab.shares(ab.member_weights(weighted), "work", ["x", "y"]) == [0.5, 0.5]


@pytest.mark.skipif(not PAIRS.is_dir(), reason="evidence/ab/pairs not measured yet (evidence/measure.sh topic ab)")
def test_the_decision_on_a_saved_real_ab_run_of_a_10_percent_slowdown():
    # evidence/ab/pairs: the runs of one A/B run whose HEAD did 10 % more work per task, as measured
    # (how close each ratio came to 1.10 over ten such runs is docs/gate.md's block, not a test's matter)
    pairs = sorted(int(p.stem.split("-")[1]) for p in PAIRS.glob("base-*.json"))
    body = ab.load_bars(str(ROOT / "evidence" / "ab" / "bars.json"))
    found: dict = {}
    for i in pairs:
        pair = load([PAIRS / f"base-{i}.json"]), load([PAIRS / f"head-{i}.json"])
        ab.add_pair(found, ab.pair_values(*pair, ab.member_weights(body)))
    rows = ab.verdicts(found, ab.bars_at(body, len(pairs)), 0.95, len(pairs), ab.key_bars_at(body, len(pairs)))
    work = {r.name.split(" ")[0]: r for r in rows if r.metric == "work"}
    assert set(work) == {"work[ab_python]", "work[ab_hash]", "work[ab_numpy]"}
    assert all(r.current > r.baseline for r in work.values())  # every workload measured slower
    gate = ab.decide(rows, _args(), ({}, {}))
    assert gate.outcome == "regression" and gate.verdict.startswith("time regression: work[")
    assert all(r.metric in ("work", "time") for r in gate.regressions)  # named a time regression, not scaling
    assert all(r.ratio_lo > 1.0 and r.change > r.bar for r in gate.regressions)  # beyond its interval and its bar


def _saved_pairs(folder: Path) -> tuple[list[ab.Row], dict]:
    """Rows and the job's denied-CPU summary of one A/B run's saved pairs, as scripts.ab decided them."""
    n = len(list(folder.glob("base-*.json")))
    found: dict = {}
    runs: dict = {"base": [], "head": []}
    body = ab.load_bars(str(ROOT / "evidence" / "ab" / "bars.json"))
    for i in range(1, n + 1):
        for arm, done in runs.items():
            done.append(load([folder / f"{arm}-{i}.json"]))
        ab.add_pair(found, ab.pair_values(runs["base"][-1], runs["head"][-1], ab.member_weights(body)))
    rows = ab.verdicts(found, ab.bars_at(body, n), 0.95, n, ab.key_bars_at(body, n))
    return rows, ab.job_denied(ab.arm_denied(runs["base"]), ab.arm_denied(runs["head"]))


@pytest.mark.skipif(not (PAIRS.parent / "pairs-lock").is_dir(), reason="evidence/ab not measured with pairs-lock yet")
def test_the_decision_on_saved_real_ab_runs_of_a_lock_and_of_the_same_code():
    # evidence/ab/pairs-lock: HEAD hashes three quarters of ab_hash under a lock; pairs-same: A/A
    rows, job = _saved_pairs(PAIRS.parent / "pairs-lock")
    gate = ab.decide(rows, _args(), (job, job))
    assert gate.outcome == "regression" and gate.verdict.startswith("scaling")
    assert any(r.name.startswith("index[thread-w2]") for r in gate.regressions)
    assert not any(r.name.startswith("index[process") for r in gate.regressions)  # processes take no lock
    rows, job = _saved_pairs(PAIRS.parent / "pairs-same")
    gate = ab.decide(rows, _args(), (job, job))
    assert gate.outcome in ("pass", "inconclusive") and not gate.regressions, gate.verdict


def test_each_key_is_held_to_its_own_bar_where_the_aa_runs_measured_it():
    body = ab_noise.bars_file(
        {m: (0.04, 30) for m in METRICS},
        {"work": {"work[quiet]": (0.01, 10, 5), "work[noisy]": (0.08, 10, 5)}},
        kind="ab",
        at_pairs=3,
    )
    assert body["key_spread"]["work"]["work[quiet]"][:2] == [0.01, 10]
    keyed = ab.key_bars_at(body, 3)
    bar, members = keyed[("work", "work[quiet]")]
    assert bar == pytest.approx(math.expm1(4.1437 * 0.01), rel=1e-3) and members == 5  # t(0.999, 10)
    both = {
        ("work", key): ab.Series(BY_NAME["work"], key, 5, [1.0] * 3, [1.10, 1.11, 1.09])
        for key in ("work[quiet]", "work[noisy]")
    }
    rows = {r.name.split(" ")[0]: r for r in ab.verdicts(both, ab.bars_at(body, 3), 0.95, 3, keyed)}
    assert rows["work[quiet]"].verdict == "regression" and rows["work[quiet]"].bar == bar
    assert rows["work[noisy]"].verdict == "same"  # the same 10 % is within a noisy workload's bar (39 %)
    pooled = ab.verdicts(both, {**ab.bars_at(body, 3), "work": 0.124}, 0.95, 3)
    assert all(r.verdict == "same" for r in pooled)  # one bar for both: the quiet one's 10 % was not seen
    assert ab.clear(list(rows.values()), ab.bars_at(body, 3), ("work",))  # each settled against its own bar
    other = {("work", "work[quiet]"): ab.Series(BY_NAME["work"], "work[quiet]", 2, [1.0] * 3, [1.10, 1.11, 1.09])}
    (fewer,) = ab.verdicts(other, ab.bars_at(body, 3), 0.95, 3, keyed)  # 2 cases, not the 5 the A/A runs had
    assert fewer.bar == ab.bars_at(body, 3)["work"] and fewer.verdict == "same"  # the metric's bar: 13 %


def test_bars_are_rederived_from_aa_runs_already_measured(tmp_path):
    (tmp_path / "w.py").write_text(TASKS.format(slow="1.0"))
    data = json.loads(FIXTURE.read_text())
    for run_, by in (("aa-1", 1.02), ("aa-2", 0.98)):
        (tmp_path / "noise" / run_).mkdir(parents=True)
        for k in range(1, ab.MIN_PAIRS + 1):
            (tmp_path / "noise" / run_ / f"base-{k}.json").write_text(json.dumps(data))
            (tmp_path / "noise" / run_ / f"head-{k}.json").write_text(json.dumps(_slowed(data, by)))
    out = tmp_path / "bars.json"
    argv = [str(tmp_path), "--workload-file", "w.py", "--results", str(tmp_path / "noise"), "--out", str(out)]
    assert ab_noise.main([*argv, "--rederive"]) == 0
    body = json.loads(out.read_text())
    assert body["rederived"] and body["runs"] == 2 and body["seconds"] is None and body["weighted"]
    expected = math.sqrt((math.log(1.02) ** 2 + math.log(0.98) ** 2) / 2)
    assert body["spread"]["work"] == pytest.approx(expected, rel=1e-4)  # every time 2 % longer, then shorter
    assert all(v[:2] == [pytest.approx(expected, rel=1e-4), 2] for v in body["key_spread"]["work"].values())
    assert body["spread"]["speedup"] == 0.0  # speedups as they were
    (tmp_path / "noise" / "aa-2" / "head-3.json").unlink()
    done = run_module("scripts.ab_noise", *argv, "--rederive", timeout=60)
    assert done.returncode == 2 and "--rederive: 1 A/A run(s)" in done.stderr and "Traceback" not in done.stderr


def test_bars_come_from_the_aa_spread_at_the_fewest_pairs():
    s = ab.Series(BY_NAME["work"], "work[x]", 1, [1.0] * 5, [1.02, 0.98, 1.0, 1.5, 1.5])
    spread = ab_noise.spreads([{("work", "work[x]"): s}], at=3)
    assert spread["work"][0] == pytest.approx(abs(math.log(1.02) + math.log(0.98)) / 3)  # pairs 4-5 not counted
    assert spread["work"][1] == 1


def test_a_bar_from_aa_runs_shrinks_as_one_over_the_root_of_the_pairs_and_a_fixed_bar_holds():
    spread = {m: 0.02 for m in METRICS}
    body = ab_noise.bars_file({m: (0.02, 10) for m in METRICS}, kind="ab", at_pairs=3)
    assert body["spread"] == spread
    at3, at12 = ab.bars_at(body, 3), ab.bars_at(body, 12)
    assert at3["work"] == pytest.approx(body["bars"]["work"], abs=1e-5)  # the file's bar is the one at its pairs
    assert math.log1p(at12["work"]) == pytest.approx(math.log1p(at3["work"]) / 2)  # 4x the pairs: half the bar
    fixed = {"kind": "apart", "bars": dict.fromkeys(METRICS, 0.3), "spread": spread, "at_pairs": 1, "z": 3.09}
    assert ab.bars_at(fixed, 12) == fixed["bars"]  # the two-file gate's bars are not a mean of pairs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nowhere", ".", "--workload-file", "x.py"], "BASE nowhere: not a folder"),
        ([".", ".", "--workload-file", "missing.py"], "--workload-file missing.py: no such file in BASE"),
        ([".", "."], "no --workload-file"),
        ([".", ".", "--workload-file", "examples/hashing.py", "--fail-on", "speed"], "--fail-on: 'speed'"),
        ([".", ".", "--workload-file", "examples/hashing.py", "--min-pairs", "1"], "need 2 <= min <= max"),
        ([".", ".", "--workload-file", "examples/hashing.py", "--bars", "README.md"], "not a bars file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message):
    done = run_module("scripts.ab", *argv, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # argparse's usage line, then the one line


TASKS = """from workloads import Size, Workload

SLOWDOWN = {slow}

def summing(n):
    return sum(range(round(n * SLOWDOWN))) >= 0

WORKLOADS = [Workload(name="summing", func=summing, kind="cpu-python", gil="holds",
                      sizes={{p: Size(200_000, 4, scale=1) for p in ("quick", "default", "full")}})]
"""


@pytest.mark.slow
@pytest.mark.e2e  # four runs of the suite: .ci/run runs it (pytest -m e2e)
def test_a_short_ab_run_measures_both_arms_interleaved_and_writes_its_decision(tmp_path):
    for arm, slow in (("base", "1.0"), ("head", "1.3")):
        (tmp_path / arm).mkdir()
        (tmp_path / arm / "mytasks.py").write_text(TASKS.format(slow=slow))
    bars = tmp_path / "bars.json"
    bars.write_text(json.dumps({"bars": dict.fromkeys(METRICS, 0.10)}))
    out = tmp_path / "out"
    done = run_module(
        "scripts.ab", str(tmp_path / "base"), str(tmp_path / "head"), "--workload-file", "mytasks.py",
        "--bars", str(bars), "--min-pairs", "2", "--max-pairs", "2", "--out", str(out), "--format", "json",
        "--", "--workers", "1,2", "--executors", "serial,process",
        timeout=600,
    )  # fmt: skip
    assert done.returncode in (0, 1, 3), done.stderr
    decided = json.loads(done.stdout)
    assert decided["exit_code"] == done.returncode and decided["ab"]["pairs"] == 2
    # ABBA: base then head, then head then base; the first base run calibrated, every other reused its sizes
    assert decided["ab"]["runs"] == ["base-1.json", "head-1.json", "head-2.json", "base-2.json"]
    sizes = [json.loads((out / n).read_text())["machine_info"]["poolbench"]["sizes"] for n in decided["ab"]["runs"]]
    assert {s["summing"]["param"] for s in sizes} == {sizes[0]["summing"]["param"]}
    assert all(s["summing"]["method"].startswith("from ") for s in sizes[1:])
    work = next(r for r in decided["rows"] if r["metric"] == "work")  # HEAD sums 30 % more numbers per task
    lo, hi = work["ratio_interval"]
    assert lo <= work["change"] + 1 <= hi  # (what a live run measured is the evidence's matter, not a test's)
    assert (out / "ab.md").read_text().startswith(("❌", "✅", "⚠️"))
