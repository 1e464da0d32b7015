"""The serial reference (common/reference.py): measured as the pool's tasks are, checked against the physical
limit in every run, one computation for every reader.

On a scripted clock and synthetic data, so that nothing here depends on how fast this machine is.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import harness, measure, terminal
from bench.cases import Case
from bench.config import build_config
from bench.cpus import CgroupCpu, CpuInfo
from common import checks, reference
from scripts import claims, report
from scripts.analysis import Analysis
from scripts.results import load

FIXTURES = Path(__file__).parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"
TWO_CPUS = CpuInfo(2, 2, None, CgroupCpu())

# --- a synthetic cold penalty ----------------------------------------------------------------------------


class ColdClock:
    """A scripted clock, and a task that takes 5 ms, plus 5 ms when its thread was idle for more than 3 ms:
    the first task after a pool round runs cold, as measured on real hosts (shared/ANCHORS.md)."""

    WORK, PENALTY, IDLE = 0.005, 0.005, 0.003

    def __init__(self) -> None:
        self.now = 1000.0
        self.last_end: dict[int, float] = {}
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def task(self, param: int) -> int:
        with self.lock:
            me = threading.get_ident()
            idle = self.now - self.last_end.get(me, -1e9)
            self.now += self.WORK + (self.PENALTY if idle > self.IDLE else 0.0)
            self.last_end[me] = self.now
        return param


class ScriptedBenchmark:
    """pytest-benchmark's ``pedantic`` on a scripted clock: setup, the timed target, teardown, per round."""

    def __init__(self, clock: ColdClock) -> None:
        self.clock = clock
        self.extra_info: dict = {}
        self.samples: list[float] = []

    def pedantic(self, target, setup, teardown, rounds, warmup_rounds):
        for i in range(warmup_rounds + rounds):
            setup()
            started = self.clock()
            target()
            if i >= warmup_rounds:
                self.samples.append(self.clock() - started)
            teardown()


def _one_worker_speedup(monkeypatch, warm: bool, round_warm: bool = False) -> float:
    clock = ColdClock()
    scripted = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(**{**scripted, "perf_counter": clock}))
    suite = build_config({"workloads": "cpu_python", "cases": "scaling"}, TWO_CPUS)
    case = Case("scaling", "cpu_python", "thread", 1, tasks=6)
    bench = ScriptedBenchmark(clock)
    with ThreadPoolExecutor(1) as pool:
        info = harness.run_batches(
            bench,
            suite,
            case,
            pool,
            func=clock.task,
            args=[1] * 6,
            check=lambda _, result: result == 1,
            rounds=3,
            warmup_rounds=0,
            probe_args=[1],
            probe_warm_args=[1] if warm else (),
            warm_args=[1],
            round_warm_args=[1] if round_warm else (),
        )
    assert info["round_warm_tasks"] == (1 if round_warm else 0)
    pairing = reference.case_paired(info, bench.samples, 6)
    assert pairing is not None and pairing.bracketed
    return pairing.speedup()


def test_a_cold_first_task_makes_a_lone_probe_beat_serial_and_the_warm_probe_does_not(monkeypatch):
    # a lone timed probe pays the cold penalty (10 ms) that the pool pays once per round of six (35 ms):
    # the one-worker pool "beats serial" by 1.7×; after an untimed warm task the probe takes 5 ms, and the
    # pool reads below 1 by the penalty its own worker paid after the idle gap of the probe
    cold = _one_worker_speedup(monkeypatch, warm=False)
    warm = _one_worker_speedup(monkeypatch, warm=True)
    assert cold == pytest.approx(0.010 / (0.035 / 6))
    assert reference.above_limit(cold, 1.0)
    assert warm == pytest.approx(0.005 / (0.035 / 6)) and not reference.above_limit(warm, 1.0)


def test_a_warm_batch_before_each_round_makes_the_one_worker_pool_read_serial(monkeypatch):
    # the worker's first task after the probe's idle gap pays the penalty in the warm batch, untimed: every
    # timed task of the round takes 5 ms, as the probe's timed task does, and the A/A test reads exactly 1
    both = _one_worker_speedup(monkeypatch, warm=True, round_warm=True)
    assert both == pytest.approx(1.0)


def test_the_warm_batch_holds_one_task_per_cpu_the_pool_can_use():
    assert [reference.round_warm_tasks(w, 2.0) for w in (1, 2, 4, 8)] == [1, 2, 2, 2]
    assert reference.round_warm_tasks(4, 1.5) == 2  # a quota of 1.5 CPUs: two can run at once
    assert reference.round_warm_tasks(1, 0.5) == 1


# --- pairing, intervals, the check ----------------------------------------------------------------------


def test_the_three_layouts_of_probes_pair_with_their_rounds():
    rounds = [0.05, 0.05, 0.05, 0.05]
    bracketed = reference.paired(rounds, 8, [0.01] * 6, 1, (2, 2))  # 2 passes of 2 rounds, 3 probes each
    assert bracketed.bracketed and [len(p) for p in bracketed.probes] == [3, 3]
    assert bracketed.speedup() == pytest.approx(0.08 / 0.05)
    after = reference.paired(rounds, 8, [0.01] * 4, 1, (2, 2))  # schema 5-6: one probe after each round
    assert not after.bracketed and after.speedup() == pytest.approx(0.08 / 0.05)
    batch = reference.paired(rounds, 8, [0.08] * 4, None, (2, 2))  # schema 2-4: the whole batch serially
    assert batch.speedup() == pytest.approx(0.08 / 0.05)
    assert reference.paired(rounds, 8, [0.01] * 5, 1, (2, 2)) is None  # fits no layout
    assert reference.paired(rounds, 8, [0.01, -1.0, 0.01, 0.01], 1, (2, 2)) is None


def test_rates_not_times_are_averaged_on_a_host_whose_cpus_run_at_two_speeds():
    # one CPU runs tasks in 10 ms, the other in 15 ms; a two-worker round uses both (8 tasks: 48 ms at the
    # sum of their rates), the probes land on one or the other: the mean of their rates is a CPU's rate, and
    # the pool does exactly twice that, where averaging the probes' times reads above 2
    fast, slow = 0.010, 0.015
    round_s = 8 / (1 / fast + 1 / slow)
    pairing = reference.paired([round_s], 8, [fast, slow], 1)
    assert pairing.speedup() == pytest.approx(2.0)
    by_times = (fast + slow) / 2 * 8 / round_s
    assert by_times > 2.0


def test_the_check_flags_a_planted_point_above_its_limit_and_leaves_noise_alone():
    quiet = reference.Estimate.of(1.01, 3, (0.0004, 20))  # 1 % above, a 2 % spread: noise
    planted = reference.Estimate.of(1.15, 3, (0.0004, 20))  # 15 % above with the same spread
    io = reference.Estimate.of(1.98, 3, (0.0001, 20))
    points = [("w thread w1", 1, "cpu-native", quiet, 1.0), ("w process w1", 1, "cpu-native", planted, 1.0)]
    points.append(("io thread w2", 2, "io", io, 2.0))
    found = checks.run_defects(points)
    assert [d.name for d in found] == ["w process w1", "one-worker pools together (2)"]
    line = checks.defects_line(found)
    assert line.startswith("measurement defect: 2 figures above the physical limit")
    assert "w process w1 1.15× [" in line and "> 1;" in line
    # the probes slower than the serial batch, across workloads: the reference itself is named
    slow = [(f"w{i}", "cpu-native", reference.Estimate.of(1.06, 3, (0.0004, 20))) for i in range(4)]
    assert checks.run_defects([points[0]], slow)[-1].name == "serial probes against the serial batch (4 workloads)"
    calm = [(f"w{i}", "cpu-native", quiet) for i in range(4)]
    assert checks.run_defects([points[0]], calm) == []
    # an I/O-bound workload's probes are tested alone, on their own interval, not in the CPU-bound mean
    noisy = ("disk", "io", reference.Estimate.of(1.30, 3, (0.09, 20)))  # 30 % above, its own spread 30 %
    assert checks.run_defects([points[0]], [*calm, noisy]) == []
    slow_io = ("disk", "io", reference.Estimate.of(1.15, 3, (0.0009, 20)))
    names = [d.name for d in checks.run_defects([points[0]], [*calm, slow_io])]
    assert names == ["serial probes against the serial batch (disk)"]


def _solo(value: float) -> reference.Estimate:
    return reference.Estimate.of(value, 3, (0.0004, 20))  # a 2 % spread between passes


def test_a_one_worker_pool_far_below_the_runs_others_is_named_and_their_spread_is_not():
    others = [0.97, 0.99, 1.0, 0.98, 1.01, 0.985, 0.995, 0.975, 1.005, 0.99, 0.98]
    solo = [(f"w{i} thread w1", _solo(v), 1.0) for i, v in enumerate(others)]
    (found,) = checks.solo_outliers([*solo, ("cpu_python process/fork w1", _solo(0.5), 1.0)])
    assert found.below and found.name == "cpu_python process/fork w1"
    assert found.limit == pytest.approx(0.99, abs=0.005)  # where the run's other one-worker pools point
    line = checks.defects_line([found])
    assert line.startswith("measurement defect: 1 one-worker pool below the run's other one-worker pools")
    assert "cpu_python process/fork w1 0.50× [" in line and "< 0.99;" in line
    # within the run's own spread: a pool a few percent slower than the others is no defect
    assert checks.solo_outliers([*solo, ("numpy_ufunc process/fork w1", _solo(0.95), 1.0)]) == []
    # a pool's own cost is expected of it (the dispatch case): 0.80 where t / (t + c) is 0.80 is no defect
    costly = ("dask w1", _solo(0.80), checks.solo_expected(0.020, 0.005))
    assert checks.solo_outliers([*solo, costly]) == []
    assert [d.name for d in checks.solo_outliers([*solo, ("dask w1", _solo(0.80), 1.0)])] == ["dask w1"]
    # fewer than SOLO_MIN one-worker pools: no spread to judge by, no test
    assert checks.solo_outliers([*solo[:3], ("cpu_python process/fork w1", _solo(0.5), 1.0)]) == []
    # run_defects tests the one-worker pools of CPU-bound work only, with the expectation given by name
    points = [(n, 1, "cpu-python", e, 1.0) for n, e, _ in solo] + [("io process/fork w1", 1, "io", _solo(0.5), 1.0)]
    assert checks.run_defects(points) == []
    planted = [*points, ("p w1", 1, "cpu-python", _solo(0.8), 1.0)]
    assert [d.name for d in checks.run_defects(planted, expected={"p w1": 0.8})] == []
    assert [d.name for d in checks.run_defects(planted)] == ["p w1"]


def test_a_pools_cost_comes_from_the_dispatch_case():
    dispatch = {("serial", 1): 2.0, ("thread", 1): 12.0, ("process/fork", 1): 102.0, ("thread", 16): 1.0}
    costs = checks.pool_costs(dispatch)
    assert costs == pytest.approx({"serial": 0.0, "thread": 10e-6, "process/fork": 100e-6})
    assert checks.solo_expected(0.0099, costs["process/fork"]) == pytest.approx(0.99)
    assert checks.solo_expected(0.0099, None) == 1.0


# --- one computation for every reader ------------------------------------------------------------------


def _planted(tmp_path: Path) -> Path:
    """The 2-CPU fixture's cpu_python pools given one probe after each round, each pool as fast as its ideal
    within a few percent, but the one-worker process pool 30 % faster than its own probes."""
    data = json.loads(TWO.read_text())
    data["benchmarks"] = [
        b
        for b in data["benchmarks"]
        if b["extra_info"]["case"] != "scaling" or b["extra_info"]["workload"] == "cpu_python"
    ]
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if info["case"] != "scaling" or info["executor"] == "serial":
            continue
        planted = b["name"] == "test_scaling[cpu_python-process-fork-w1]"
        speed = 1.3 if planted else min(info["workers"], 2) * 0.95
        wobble = [1.0] * 3 if planted else [1.0, 1.03, 0.97]
        info["serial_samples_s"] = [
            x / info["tasks"] * speed * w for x, w in zip(b["stats"]["data"], wobble, strict=True)
        ]
        info["serial_tasks"] = 1
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(data))
    return path


class _Fixture:
    """A pytest-benchmark fixture as the end-of-run table reads it, built from a saved record."""

    def __init__(self, bench: dict) -> None:
        self.extra_info = bench["extra_info"]
        self.stats = types.SimpleNamespace(stats=types.SimpleNamespace(data=bench["stats"]["data"]))
        self.has_error = False


def test_the_terminal_table_the_report_and_summary_json_state_the_same_figures_and_defects(tmp_path):
    path = _planted(tmp_path)
    data = json.loads(path.read_text())
    fixtures = [_Fixture(b) for b in data["benchmarks"]]
    info = data["machine_info"]["poolbench"]
    points, _ = terminal.scaling_estimates(fixtures, info)
    an = Analysis(load([path]))
    assert points  # the paired ones: a table is made of those
    for p in an.points:
        if not p.paired:
            continue
        e, ideal, _, _ = points[(p.workload, p.pool, p.workers)]
        assert (e.value, e.low, e.high, e.prediction_low) == pytest.approx(
            (p.speedup, p.speedup_lo, p.speedup_hi, p.prediction_lo)
        )
        assert ideal == p.ideal
    line = terminal.defects(fixtures, info)
    assert line is not None and "cpu_python process/fork w1 1.30×" in line
    assert line == checks.defects_line(an.defects(an.runs[0]))
    table = report.summary(an)
    (check,) = table["checks"]
    assert "cpu_python process/fork w1" in [d["figure"] for d in check["defects"]]
    (rec,) = [
        r for r in table["records"] if (r["workload"], r["executor"], r["workers"]) == ("cpu_python", "process", 1)
    ]
    assert rec["defect"] is True and rec["cause"]["cause"] == "defect"


def _planted_slow_workers(tmp_path: Path) -> Path:
    """The 2-CPU fixture's CPU-bound workloads, with copies of cpu_python under four more names (ten one-worker
    pools: enough for a run's A/A spread), every pool paired with probes at 97 % of its ideal, a few
    percent apart, but every process pool of cpu_python at half of it: its workers ran the tasks at
    twice the reference's time, as in a fresh clone's main job here (common/checks.py)."""
    data = json.loads(TWO.read_text())
    keep = [b for b in data["benchmarks"] if b["extra_info"]["case"] != "scaling" or b["extra_info"]["kind"] != "io"]
    copies = [
        json.loads(json.dumps(b).replace("cpu_python", name))
        for name in ("copy_a", "copy_b", "copy_c", "copy_d")
        for b in keep
        if b["extra_info"]["case"] == "scaling" and b["extra_info"]["workload"] == "cpu_python"
    ]
    data["benchmarks"] = keep + copies
    for i, b in enumerate(data["benchmarks"]):
        info = b["extra_info"]
        if info["case"] != "scaling" or info["executor"] == "serial":
            continue
        slow = info["workload"] == "cpu_python" and info["executor"] == "process"
        speed = min(info["workers"], 2) * (0.5 if slow else 0.97 + 0.01 * (i % 4))
        info["serial_samples_s"] = [
            x / info["tasks"] * speed * w for x, w in zip(b["stats"]["data"], [1.0, 1.02, 0.98], strict=True)
        ]
        info["serial_tasks"] = 1
    path = tmp_path / "slow-workers.json"
    path.write_text(json.dumps(data))
    return path


def test_a_failed_one_worker_aa_test_marks_its_pool_and_no_claim_is_judged_on_it(tmp_path):
    path = _planted_slow_workers(tmp_path)
    data = json.loads(path.read_text())
    line = terminal.defects([_Fixture(b) for b in data["benchmarks"]], data["machine_info"]["poolbench"])
    assert line is not None and "1 one-worker pool below the run's other one-worker pools" in line
    assert "cpu_python process/fork w1 0.50× [" in line and "above the physical limit" not in line
    an = Analysis(load([path]))
    assert line == checks.defects_line(an.defects(an.runs[0]))
    flagged = {(p.workload, p.pool, p.workers) for p in an.points if p.defect}
    assert flagged == {("cpu_python", "process/fork", w) for w in (1, 2, 4)}  # the pool's whole curve
    two = next(p for p in an.points if (p.workload, p.pool, p.workers) == ("cpu_python", "process/fork", 2))
    assert two.cause.cause == "defect" and "failed the A/A test" in two.cause.text
    ev = claims.evidence_of(an)[an.runs[0].run.source]
    verdict = claims.judge(claims.claim_parallelism, ev)
    assert verdict.verdict.startswith("not judged: a measurement defect in this run (cpu_python process/fork w2")
    assert not claims.judge(claims.claim_gil, ev).verdict.startswith("not judged")  # threads only: judged
    assert all(p.workload != "cpu_python" or p.pool == "thread" for p in _chosen(claims.recommend(ev), an))
    (check,) = report.summary(an)["checks"]
    assert [(d["figure"], d["side"]) for d in check["defects"]] == [("cpu_python process/fork w1", "below")]


def _chosen(rows, an):
    """The points the recommendations chose, by their `pool`, max_workers=W text."""
    out = []
    for workload, _, choice, _, _ in rows:
        for p in an.points:
            if p.workload == workload and f"`{p.pool}`, max_workers={p.workers}" in choice:
                out.append(p)
    return out


# --- the suite's own process out of the measurement ------------------------------------------------------


def test_code_that_a_free_threaded_build_left_mortal_is_named(monkeypatch):
    from bench import workers  # noqa: PLC0415

    def fresh(x):
        return x

    if not workers.sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert workers.contended_code({"fresh": fresh}) == []  # nothing to contend on with the GIL
    monkeypatch.setattr(workers.sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else None)
    # on a build with the GIL nothing is immortalized by a thread's start: every code object reads as mortal
    assert workers.contended_code({"fresh": fresh}) == ["fresh"]


def test_a_probe_runs_on_each_cpu_in_turn_and_gives_the_thread_its_cpus_back():
    before = os.sched_getaffinity(0)
    seen = []
    for _ in range(2 * len(before)):
        with measure.on_next_cpu() as cpu:
            assert os.sched_getaffinity(0) == {cpu}
            seen.append(cpu)
        assert os.sched_getaffinity(0) == before
    assert set(seen) == before  # every CPU of the process, in turn


def test_a_probe_follows_the_cpus_its_rounds_ran_on(monkeypatch):
    """The placer's rule (bench/measure.py ProbePlacer) on planted busy ticks: a round on one CPU sends the probes
    there, rounds spread evenly send them round the CPUs in turn, an uneven spread in its shares."""
    ticks = {0: 0, 1: 0}
    monkeypatch.setattr(measure, "cpu_busy_ticks", lambda: dict(ticks))
    monkeypatch.setattr(measure.os, "sched_getaffinity", lambda pid: {0, 1})

    def rounds(placer, per_round, n):
        chosen = []
        for _ in range(n):
            placer.round_started()
            for cpu, busy in per_round.items():
                ticks[cpu] += busy
            placer.round_ended()
            chosen.append(placer.next_cpu([0, 1]))
        return chosen

    assert rounds(measure.ProbePlacer(), {0: 1, 1: 15}, 6) == [1] * 6  # a lone worker on CPU 1
    assert rounds(measure.ProbePlacer(), {0: 15, 1: 14}, 6) == [0, 1, 0, 1, 0, 1]  # a round on both
    assert rounds(measure.ProbePlacer(), {0: 10, 1: 5}, 6).count(0) == 4  # two thirds on CPU 0
    placer = measure.ProbePlacer()  # nothing read (no /proc/stat): the rotation
    assert placer.round_ended() is None and placer.next_cpu([0, 1]) in (0, 1)


def test_the_first_probe_of_a_case_follows_its_warm_up_batch(monkeypatch):
    """A lone worker that runs every task on CPU 1 (planted busy ticks): every probe, the one before the first
    timed round included, runs on CPU 1, where the rotation would have put that first one on CPU 0."""
    if not hasattr(os, "sched_setaffinity") or not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1 and sched_setaffinity")
    ticks = {0: 0, 1: 0}
    monkeypatch.setattr(measure, "cpu_busy_ticks", lambda: dict(ticks))
    monkeypatch.setattr(measure, "_probe_turn", itertools.count(0))  # the rotation's next CPU: 0

    def task(x):
        if threading.current_thread() is not threading.main_thread():  # the pool's worker, not a probe
            ticks[1] += 10
        return x

    suite = build_config({"workloads": "cpu_python", "cases": "scaling"}, TWO_CPUS)
    bench = ScriptedBenchmark(time.perf_counter)
    with ThreadPoolExecutor(1) as pool:
        info = harness.run_batches(
            bench, suite, Case("scaling", "cpu_python", "thread", 1, tasks=4), pool,
            func=task, args=[1] * 4, check=lambda _, result: result == 1, rounds=3, warmup_rounds=0,
            probe_args=[1], probe_warm_args=[1], warm_args=[1],
        )  # fmt: skip
    assert info["serial_cpus"] == [1, 1, 1, 1]
    assert info["round_cpu_shares"] == [{"0": 0.0, "1": 1.0}] * 3  # the warm-up batch is no timed round


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to tell pinned from not")
def test_an_io_bound_probe_is_not_held_on_one_cpu():
    """I/O-bound work wakes where the scheduler puts it, in the pool's threads and in the probes alike."""
    allowed = os.sched_getaffinity(0)
    seen = []

    def task(x):
        if threading.current_thread() is threading.main_thread():
            seen.append(os.sched_getaffinity(0))
        return x

    suite = build_config({"workloads": "io_file", "cases": "scaling"}, TWO_CPUS)
    bench = ScriptedBenchmark(time.perf_counter)
    with ThreadPoolExecutor(1) as pool:
        info = harness.run_batches(
            bench, suite, Case("scaling", "io_file", "thread", 1, tasks=2), pool,
            func=task, args=[1] * 2, check=lambda _, result: result == 1, rounds=2, warmup_rounds=0,
            probe_args=[1], probe_warm_args=[1], warm_args=[1], pin_probes=False,
        )  # fmt: skip
    assert info["serial_cpus"] == [None, None, None]
    assert seen and all(cpus == allowed for cpus in seen)  # every probe task ran with every CPU open to it


def test_the_placer_reads_this_machines_busy_ticks():
    ticks = measure.cpu_busy_ticks()
    assert set(os.sched_getaffinity(0)) <= set(ticks) and all(t >= 0 for t in ticks.values())
    placer = measure.ProbePlacer()
    placer.round_started()
    deadline = time.perf_counter() + 0.1
    while time.perf_counter() < deadline:  # keep a CPU busy for ten ticks
        pass
    shares = placer.round_ended()
    assert shares is not None and set(shares) == os.sched_getaffinity(0)
    assert abs(sum(shares.values()) - 1) < 1e-9


def test_the_gate_names_a_measurement_defect_on_either_side(tmp_path):
    from scripts import compare  # noqa: PLC0415

    path = _planted(tmp_path)
    args = compare.parse_args([str(path), str(path)])
    gate = compare.decide(args, compare.one_run(str(path)), compare.one_run(str(path)))
    named = [n for n in gate.notes if "measurement defect" in n]
    assert [n.split(":")[0] for n in named] == ["baseline", "current"]
    assert all("cpu_python process/fork w1 1.30×" in n for n in named)
