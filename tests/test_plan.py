"""The sampling plan (common/plan.py; bench/calibration.py): calibration on a scripted clock, the batch
and sweep rules at several CPU counts, --sizes-from, the joined passes and their hierarchical interval, the cost model,
and what scripts.compare does with runs of different sizes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import calibration, cases
from bench.config import OptionError, build_config
from bench.cpus import CgroupCpu, CpuInfo
from common import plan as rules
from common import reference
from scripts import analysis, gating
from scripts.results import load
from tests.clirun import run_module
from workloads import registry
from workloads.registry import Size, Workload

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"
TWO_CPUS = CpuInfo(2, 2, None, CgroupCpu())
POOL = "test_scaling[cpu_python-process-fork-w2]"


class ScriptedClock:
    """A clock that moves only when a scripted task says it ran for so long."""

    def __init__(self) -> None:
        self.now = 100.0
        self.calls: list[object] = []

    def __call__(self) -> float:
        return self.now

    def task(self, seconds_for):
        def run(param):
            self.calls.append(param)
            self.now += seconds_for(param)
            return param

        return run


# --- calibration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("true_exponent", "declared"),
    [(1.5, 1.5), (2.0, 1.5), (1.0, 1), (3.0, 3)],  # a declared exponent that is wrong still converges
)
def test_calibration_lands_within_the_band_of_the_target(true_exponent, declared):
    clock = ScriptedClock()
    # the registry's size takes 3× the target on this "host"
    task = clock.task(lambda p: 0.060 * (p / 25_000) ** true_exponent)
    sized = calibration.calibrate(task, 25_000, declared, 0.020, clock)
    assert sized.method == "calibrated" and isinstance(sized.param, int)
    assert calibration.BAND[0] <= sized.task_s / 0.020 <= calibration.BAND[1]
    assert sized.param < 25_000
    assert 1 <= sized.tries <= calibration.MAX_TRIES
    # every measurement: one warm call, then CALLS timed calls, all at the parameter measured
    assert len(clock.calls) == sized.tries * (1 + calibration.CALLS)


def test_calibration_steps_on_a_ladder_anchored_at_the_registry_size():
    clock = ScriptedClock()
    sized = calibration.calibrate(clock.task(lambda p: 0.010 * p / 1000), 1000, 1, 0.020, clock)
    steps = math.log2(sized.param / 1000) * calibration.STEPS_PER_OCTAVE
    assert steps == pytest.approx(round(steps), abs=0.01)  # a whole step of 2^(1/8) from the anchor
    assert sized.param == calibration.scaled(1000, 1, round(steps))


def test_calibration_of_a_parameter_that_cannot_move_keeps_the_closest():
    clock = ScriptedClock()
    sized = calibration.calibrate(clock.task(lambda p: 0.001 * p), 1, 3, 0.020, clock)  # 1 is as small as it gets
    assert sized.param >= 1 and sized.tries <= calibration.MAX_TRIES


def test_a_scale_function_chooses_the_parameter():
    clock = ScriptedClock()

    def whole_mib(n: int, factor: float) -> int:
        return max(1, round(n * factor / 2**20)) * 2**20

    sized = calibration.calibrate(clock.task(lambda n: 0.005 * n / 2**20), 2**20, whole_mib, 0.020, clock)
    assert sized.param % 2**20 == 0
    assert calibration.BAND[0] <= sized.task_s / 0.020 <= calibration.BAND[1]


def _fake_workload(clock: ScriptedClock, scale) -> Workload:
    return Workload(
        "scripted",
        clock.task(lambda p: 0.002 * p / 100),
        "cpu-python",
        "holds",
        {profile: Size(100, 8, scale) for profile in ("quick", "default", "full")},
    )


@pytest.fixture
def scripted_workload():
    clock = ScriptedClock()
    registry.USER["scripted"] = _fake_workload(clock, 1)
    yield clock
    registry.USER.pop("scripted", None)


@pytest.mark.parametrize(("blas", "expected"), [(None, time.thread_time), ("2", time.process_time)])
def test_a_cpu_bound_task_is_sized_by_its_own_threads_clock_while_blas_runs_on_it(monkeypatch, blas, expected):
    # capping BLAS at session start restarts OpenBLAS's helper thread, which spins for about 0.1 s; the
    # process's clock counted that spin into the first workload calibrated (bench/calibration.py)
    registry.USER["scripted"] = _fake_workload(ScriptedClock(), 1)
    seen = []

    def calibrate(func, base, scale, target_s, clock):
        seen.append(clock)
        return rules.Sizing(base, "calibrated", target_s, target_s, 1)

    monkeypatch.setattr(calibration, "calibrate", calibrate)
    options = {"workloads": "scripted", "cases": "scaling"} | ({"blas_threads": blas} if blas else {})
    try:
        sizes = calibration.size_workloads(build_config(options, TWO_CPUS))
    finally:
        registry.USER.pop("scripted", None)
    assert seen == [expected] and sizes["scripted"].clock == "cpu"
    assert calibration.clock_for("io", 1) is time.perf_counter  # a wait is sized by the wall clock


def test_the_suite_calibrates_what_scales_and_records_how(scripted_workload):
    cfg = build_config({"workloads": "scripted", "cases": "scaling"}, TWO_CPUS)
    sizes = calibration.size_workloads(cfg, scripted_workload)
    assert list(sizes) == ["scripted"]
    s = sizes["scripted"]
    assert s.method == "calibrated" and s.target_s == rules.TARGET_TASK_S["default"] == 0.020
    assert calibration.BAND[0] <= s.task_s / s.target_s <= calibration.BAND[1]
    assert s.as_dict()["param"] == s.param and s.as_dict()["tries"] == s.tries
    fixed_cfg = build_config({"workloads": "scripted", "cases": "scaling", "sizes": "fixed"}, TWO_CPUS)
    fixed = calibration.size_workloads(fixed_cfg, scripted_workload)
    assert fixed["scripted"].param == 100 and fixed["scripted"].method == "fixed"
    assert fixed["scripted"].task_s is None  # --sizes fixed runs no task at start


def test_sizes_from_a_saved_run_are_reused_exactly(scripted_workload, tmp_path):
    saved = tmp_path / "run.json"
    saved.write_text(
        json.dumps(
            {
                "benchmarks": [],
                "machine_info": {
                    "poolbench": {
                        "config": {"profile": "default"},
                        "sizes": {"scripted": {"param": 777, "method": "calibrated", "task_s": 0.02}},
                    }
                },
            }
        )
    )
    cfg = build_config({"workloads": "scripted", "cases": "scaling", "sizes_from": str(saved)}, TWO_CPUS)
    assert cfg.sizes_mode == "from" and cfg.param("scripted") == 777
    calls = len(scripted_workload.calls)
    sizes = calibration.size_workloads(cfg, scripted_workload)
    assert sizes["scripted"].param == 777 and sizes["scripted"].method == f"from {saved}"
    assert len(scripted_workload.calls) == calls  # reused, not re-measured
    with pytest.raises(OptionError, match="profile 'default', this one is 'quick'"):
        build_config({"workloads": "scripted", "cases": "scaling", "sizes_from": str(saved), "profile": "quick"},
                     TWO_CPUS)  # fmt: skip
    with pytest.raises(OptionError, match="holds no size for workload 'cpu_python'"):
        build_config({"workloads": "scripted,cpu_python", "cases": "scaling", "sizes_from": str(saved)}, TWO_CPUS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ("[]", "not a poolbench result that recorded its task sizes"),
        (TWO.read_text(), "not a poolbench result that recorded its task sizes"),  # schema before 5
    ],
)
def test_sizes_from_a_missing_broken_or_foreign_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "given.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OptionError) as err:
        build_config({"sizes_from": str(path)}, TWO_CPUS)
    text = str(err.value)
    assert text.startswith(f"--sizes-from {path}: {message}") and "\n" not in text


def test_a_task_that_hangs_or_raises_during_calibration_keeps_its_size(scripted_workload):
    def boom(param):
        raise ValueError("no")

    registry.USER["scripted"] = Workload("scripted", boom, "cpu-python", "holds",
                                         {p: Size(100, 8, 1) for p in ("quick", "default", "full")})  # fmt: skip
    cfg = build_config({"workloads": "scripted", "cases": "scaling"}, TWO_CPUS)
    sized = calibration.size_workloads(cfg)["scripted"]
    assert sized.param == 100 and sized.method == "fixed: calibration stopped, the task raised ValueError"
    # a task that would sleep 30 s: without the limit, calibration would finish and call it calibrated
    registry.USER["scripted"] = Workload("scripted", lambda p: time.sleep(30), "cpu-python", "holds",
                                         {p: Size(100, 8, 1) for p in ("quick", "default", "full")})  # fmt: skip
    cfg = build_config({"workloads": "scripted", "cases": "scaling", "case_timeout": "0.2"}, TWO_CPUS)
    sized = calibration.size_workloads(cfg)["scripted"]
    assert sized.method == "fixed: calibration ran past --case-timeout 0.2 s" and sized.task_s is None


def test_sizes_and_sizes_from_together_are_refused():
    with pytest.raises(OptionError, match="choose one"):
        build_config({"sizes": "fixed", "sizes_from": "x.json"}, TWO_CPUS)
    with pytest.raises(OptionError, match="--sizes: unknown 'huge'"):
        build_config({"sizes": "huge"}, TWO_CPUS)


@pytest.mark.slow
def test_pytest_bench_with_a_broken_sizes_file_stops_before_any_case(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmarks": [')
    done = run_module("pytest", "bench", "-p", "no:cacheprovider", "--sizes-from", str(broken), timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: --sizes-from {broken}: not valid JSON"), lines


# --- the batch and sweep rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        (1, (1, 2, 4)),
        (2, (1, 2, 4, 8)),
        (6, (1, 2, 4, 6, 8, 16)),
        (16, (1, 2, 4, 8, 16, 32, 64)),
        (64, (1, 2, 4, 8, 16, 32, 64, 128, 256)),
        (128, (1, 2, 4, 8, 16, 32, 64, 128, 256)),  # capped at SWEEP_CAP
    ],
)
def test_the_sweep_is_powers_of_two_to_four_times_the_cpus_and_the_cpus(cpus, expected):
    assert rules.sweep(cpus) == expected
    cfg = build_config({}, CpuInfo(cpus, cpus, None, CgroupCpu()))  # a pretended CPU count
    assert cfg.workers == expected


@pytest.mark.parametrize("cpus", [2, 3, 16, 64])
@pytest.mark.parametrize("per_cpu", [4, 5, 6, 8])
def test_every_swept_worker_count_can_reach_its_ideal_at_a_bounded_round_cost(cpus, per_cpu):
    for w in rules.sweep(cpus):
        n = rules.batch_tasks(w, cpus, per_cpu)
        assert n % w == 0  # a whole number of tasks per worker: no uneven last wave
        assert reference.ideal_speedup("cpu-python", w, n, cpus) == min(w, cpus)
        assert reference.ideal_speedup("io", w, n, cpus) == w
        if w <= cpus:
            assert n == per_cpu * w  # k tasks per worker, each on a CPU of its own
        else:  # at most k tasks per CPU (a round at most about k task times), at least one per worker
            assert w <= n <= per_cpu * cpus and n > per_cpu * cpus - w
    assert rules.batch_tasks(1, cpus, per_cpu) == per_cpu  # the serial baseline: k tasks


def test_past_the_cpus_the_batch_rounds_down_to_whole_tasks_per_worker():
    assert [rules.batch_tasks(w, 2, 6) for w in (1, 2, 4, 8)] == [6, 12, 12, 8]  # W = 8 once took 16
    assert [rules.batch_tasks(w, 2, 4) for w in (1, 2, 4, 8)] == [4, 8, 8, 8]
    assert rules.batch_tasks(256, 64, 6) == 256  # 1.5 a worker: one each


def test_tasks_per_cpu_is_an_option_and_a_bad_value_is_one_line():
    cfg = build_config({"workloads": "cpu_python", "tasks_per_cpu": "4", "passes": "2"}, TWO_CPUS)
    assert cfg.settings["tasks_per_cpu"] == 4 and cfg.settings["passes"] == 2
    assert cfg.settings["rounds"] == rules.PROFILE_SETTINGS["default"]["rounds"]  # the rest is the profile's
    assert rules.PROFILE_SETTINGS["default"]["tasks_per_cpu"] == 6  # the profile itself untouched
    assert {c.workers: c.tasks for c in cases.scaling_cases(cfg) if c.executor != "serial"} == {1: 4, 2: 8, 4: 8, 8: 8}
    for bad in ("0", "two", "-3"):
        with pytest.raises(OptionError, match=rf"--tasks-per-cpu: '{bad}' is not a whole number >= 1; use 6 "):
            build_config({"tasks_per_cpu": bad}, TWO_CPUS)


def test_cases_carry_their_batch_and_repeat_per_pass():
    cfg = build_config({"workloads": "cpu_python", "executors": "serial,thread"}, CpuInfo(16, 16, None, CgroupCpu()))
    scaling = cases.scaling_cases(cfg)
    passes = cfg.settings["passes"]
    assert passes >= 2
    assert len(scaling) == passes * (1 + len(cfg.workers))
    for c in scaling:
        assert c.tasks == rules.batch_tasks(c.workers, 16, cfg.settings["tasks_per_cpu"])
    second = [c for c in scaling if c.pass_no == 2]
    assert [c.id for c in second][-1] == "cpu_python-serial-w1-p2"  # each workload's cases in reverse
    assert all(c.id.endswith("-p2") for c in second)


def test_cost_model_arithmetic():
    # 2 CPUs, one workload of 10 ms tasks, k = 2, one pool, one timed round after its warm batch of one task
    # per CPU (10), two probes of a warm and a timed task each (40): W=1: warm 1 task (10) + 10 + 2 tasks
    # (20) + 40; W=2: warm 2 on 2 CPUs (10) + 10 + 4 tasks on 2 (20) + 40; W=4: warm 4 on 2 (20) + 10 + 4
    # tasks (20) + 40; W=8: warm 8 on 2 (40) + 10 + 8 tasks (40) + 40; serial case (no warm batch): warm 1 +
    # 2 tasks (30) + 40 -> 450 ms
    cost = rules.main_job_seconds(
        2,
        task_s={"a": 0.010},
        pools=1,
        rounds=1,
        passes=1,
        per_cpu=2,
        case_overhead_s=0.0,
        start_per_worker_s=0.0,
        other_s=0.0,
    )
    assert cost == pytest.approx(0.450)
    io = rules.main_job_seconds(
        2, task_s={"a": -0.010}, pools=1, rounds=1, passes=2, per_cpu=2,
        case_overhead_s=0.0, start_per_worker_s=0.0, other_s=1.0,
    )  # fmt: skip
    # waits (warm-up: one wave, 10; the round's warm batch, one wave, 10; probes 40): W=1 2 waves (20) + 60;
    # W=2 4 tasks, 2 waves (20) + 60; W=4 1 wave (10) + 60; W=8 1 (10) + 60; serial 30 + 40 -> 370 ms a pass
    assert io == pytest.approx(2 * 0.370 + 1.0)


# --- passes joined, and their interval ------------------------------------------------------------


def _with_passes(tmp_path: Path, name: str, shift: float, passes: int = 2) -> Path:
    """The 2-CPU fixture with its cpu_python process point measured in ``passes`` passes.

    Pass 1 is exactly 2× faster than its serial probes; each later pass is ``shift`` slower.
    """
    data = json.loads(TWO.read_text())
    benches = data["benchmarks"]
    pool = next(b for b in benches if b["name"] == POOL)
    rounds = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    pool["extra_info"].update({"pass": 1, "passes": passes, "serial_tasks": 1, "tasks": 8})
    pool["stats"]["data"] = [0.05 * r for r in rounds]
    pool["extra_info"]["serial_samples_s"] = [0.10 / 8 * r for r in rounds]
    pool["extra_info"]["serial_cpu_samples_s"] = [0.012] * len(rounds)
    for p in range(2, passes + 1):
        again = json.loads(json.dumps(pool))
        again["name"] = POOL[:-1] + f"-p{p}]"
        again["extra_info"]["pass"] = p
        again["extra_info"]["serial_cpu_samples_s"] = [0.013] * len(rounds)
        again["stats"]["data"] = [0.05 * shift * r for r in rounds]
        benches.append(again)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_the_loader_joins_a_points_passes_into_one_record(tmp_path):
    records = load([_with_passes(tmp_path, "p.json", 1.25)])
    joined = [r for r in records if r.name.startswith(POOL[:-1])]
    assert [r.name for r in joined] == [POOL]
    r = joined[0]
    assert r.passes == (6, 6) and len(r.samples) == 12
    assert r.extra["pass"] == [1, 2]
    assert r.paired_serial == pytest.approx([0.10 * x for x in [1.0, 1.01, 0.99, 1.0, 1.02, 0.98] * 2])
    one = json.loads(TWO.read_text())
    cpu = next(b for b in one["benchmarks"] if b["name"] == POOL)["extra_info"]["cpu_time_s"]
    assert r.extra["cpu_time_s"] == pytest.approx(2 * cpu)  # counters add up over the passes
    assert r.by_pass["cpu_time_s"] == (cpu, cpu)  # and each pass's own is kept
    assert r.extra["serial_cpu_samples_s"] == [0.012] * 6 + [0.013] * 6  # per round: joined as the rounds are


def test_the_hierarchical_interval_covers_a_shift_between_passes_that_one_pass_does_not(tmp_path):
    shift = 1.25  # pass 2 ran 25 % slower: a host phase, a pool that drew a slow layout
    point = analysis.find(analysis.scaling_points(load([_with_passes(tmp_path, "p.json", shift)])),
                         "cpu_python", "process/fork", 2)  # fmt: skip
    first = analysis.find(analysis.scaling_points(load([_with_passes(tmp_path, "one.json", 1.0, passes=1)])),
                         "cpu_python", "process/fork", 2)  # fmt: skip
    assert point.passes == 2 and first.passes == 1
    pass_two = 2.0 / shift
    assert point.speedup_lo <= pass_two and point.speedup_hi >= 2.0 * 0.99  # both passes inside
    assert not first.speedup_lo <= pass_two <= first.speedup_hi  # pass 1 alone excludes pass 2
    assert first.speedup == pytest.approx(2.0)


def test_probe_serial_reference_still_cancels_drift(tmp_path):
    # the 3× drift of tests/test_intervals.py, with a one-task probe after each round of an 8-task batch
    drift = [1.0, 3.0, 1.5]
    data = json.loads(TWO.read_text())
    pool = next(b for b in data["benchmarks"] if b["name"] == POOL)
    pool["stats"]["data"] = [0.05 * d for d in drift]
    pool["extra_info"].update(tasks=8, serial_tasks=1, serial_samples_s=[0.10 / 8 * d for d in drift])
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(data))
    (record,) = [r for r in load([path]) if r.name == POOL]
    assert record.paired.values() == pytest.approx([math.log(2.0)] * 3)  # every round: exactly twice as fast
    p = analysis.find(analysis.scaling_points(load([path])), "cpu_python", "process/fork", 2)
    assert p.speedup == pytest.approx(2.0) and p.speedup_lo <= 2.0 <= p.speedup_hi


# --- compare with other sizes ---------------------------------------------------------------------


def test_compare_refuses_other_sizes_unless_told_and_then_leaves_times_out(tmp_path):
    base = json.loads(TWO.read_text())
    other = json.loads(TWO.read_text())
    for b in other["benchmarks"]:
        if b["extra_info"]["workload"] == "cpu_python":
            b["extra_info"]["task_param"] = 12_345
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "c.json").write_text(json.dumps(other))
    b, c = str(tmp_path / "b.json"), str(tmp_path / "c.json")
    done = run_module("scripts.compare", b, c, timeout=60)
    assert done.returncode == gating.EXIT_UNUSABLE, done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "ran different task sizes (cpu_python:" in err[0] and f"--sizes-from {b}" in err[0]
    told = run_module("scripts.compare", b, c, "--allow-size-change", "--format", "json", timeout=60)
    assert told.returncode in (gating.EXIT_OK, gating.EXIT_REGRESSION), told.stderr
    out = json.loads(told.stdout)
    assert not [r for r in out["rows"] if r["metric"] in ("time", "work")]
    assert any("task sizes differ" in n for n in out["notes"])


# --- calibration kept between runs -------------------------------------------------------------------


def test_calibration_on_a_scripted_clock_is_kept_across_runs_through_a_host_phase():
    # a host whose speed moves between runs: run 2 finds every task 1.3× slower (a slow phase), run 3
    # 2.5× slower (another machine, in effect); the remembered size is kept through the phase, and only a
    # task outside an octave of the target is calibrated anew
    clock = ScriptedClock()
    speed = {"factor": 1.0}
    registry.USER["scripted"] = Workload(
        "scripted",
        clock.task(lambda p: speed["factor"] * 0.002 * p / 100),
        "cpu-python",
        "holds",
        {profile: Size(100, 8, 1) for profile in ("quick", "default", "full")},
    )
    try:
        cfg = build_config({"workloads": "scripted", "cases": "scaling"}, TWO_CPUS)
        remembered: dict = {}
        first = calibration.size_workloads(cfg, clock, remembered)["scripted"]
        assert first.method == "calibrated" and remembered["scripted"]["param"] == first.param
        speed["factor"] = 1.3
        second = calibration.size_workloads(cfg, clock, remembered)["scripted"]
        assert (second.method, second.param) == ("kept", first.param)  # the same work as run 1
        assert second.task_s == pytest.approx(1.3 * first.task_s)  # measured again, and said
        speed["factor"] = 2.5
        third = calibration.size_workloads(cfg, clock, remembered)["scripted"]
        assert third.method == "calibrated" and third.param < first.param
        fresh = build_config({"workloads": "scripted", "cases": "scaling", "sizes": "fresh"}, TWO_CPUS)
        speed["factor"] = 1.0
        assert calibration.size_workloads(fresh, clock, dict(remembered))["scripted"].method == "calibrated"
        # another code for the task function: what was remembered is not for it
        other = dict(remembered, scripted={**remembered["scripted"], "code": "0" * 16})
        assert calibration.size_workloads(cfg, clock, other)["scripted"].method == "calibrated"
    finally:
        registry.USER.pop("scripted", None)


def test_a_task_functions_code_digest_is_the_same_in_every_process():
    # what a kept calibration is keyed by must not change between runs: marshal's bytes did (zlib's task
    # was calibrated anew in every run), because they depend on reference counts
    script = "; ".join(
        (
            "from bench.calibration import code_digest",
            "from workloads import SCALING",
            "print([code_digest(n) for n in SCALING])",
        )
    )
    digests = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        digests.add(done.stdout)
    assert len(digests) == 1 and "[" in next(iter(digests))
