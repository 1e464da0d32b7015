"""The loader, derived metrics, plots and report, on JSON fixtures trimmed from real runs.

tests/fixtures/quick-2cpus.json: `pytest bench --profile quick --workers 1,2,4
--workloads cpu_python,io_sleep,numpy_ufunc` on a 2-CPU machine (every case type).
tests/fixtures/quick-1cpu-affinity.json: the same scaling cases under `taskset -c 0`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
from pathlib import Path

import pytest

from common import reference
from scripts import analysis, causes, claims, costs, plot, report
from scripts.results import ResultsError, latest_runs, load
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"
ONE = FIXTURES / "quick-1cpu-affinity.json"


@pytest.fixture(scope="module")
def records():
    return load([TWO])


# --- loader ---------------------------------------------------------------------------------------


def test_loader_reads_every_benchmark_with_its_samples(records):
    raw = json.loads(TWO.read_text())
    assert len(records) == len(raw["benchmarks"])
    first = raw["benchmarks"][0]
    rec = next(r for r in records if r.name == first["name"])
    assert rec.samples == tuple(first["stats"]["data"])
    assert rec.median == pytest.approx(statistics.median(first["stats"]["data"]))
    assert rec.run.effective_cpus == 2.0
    assert rec.run.label == "2 CPUs"
    assert {r.case for r in records} == {"scaling", "cold_start", "dispatch", "payload", "memory"}


def test_loader_reads_folders_recursively_and_keeps_the_newest_run_per_label(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(TWO, tmp_path / "a" / "0001_old.json")
    newer = json.loads(TWO.read_text())
    newer["datetime"] = "2999-01-01T00:00:00"
    (tmp_path / "a" / "b" / "0002_new.json").write_text(json.dumps(newer))
    shutil.copy(ONE, tmp_path / "one.json")
    everything = load([tmp_path])
    kept = latest_runs(everything)
    assert {r.run.source for r in kept} == {str(tmp_path / "a/b/0002_new.json"), str(tmp_path / "one.json")}
    assert {r.run.label for r in kept} == {"2 CPUs", "1 CPU"}


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = json.loads(TWO.read_text())
    no_poolbench = json.loads(TWO.read_text())
    del no_poolbench["machine_info"]["poolbench"]
    future = json.loads(TWO.read_text())
    future["machine_info"]["poolbench"]["schema_version"] = 99
    lacking = json.loads(TWO.read_text())
    del lacking["benchmarks"][0]["extra_info"]["workers"]
    files = {
        "empty": ("", "is empty"),
        "truncated": (TWO.read_text()[: len(TWO.read_text()) // 2], "not valid JSON"),
        "text": ("hello, world\n", "not valid JSON"),
        "other_tool": (json.dumps({"results": [1, 2, 3]}), "not pytest-benchmark JSON"),
        "list": (json.dumps([good]), "not pytest-benchmark JSON"),
        "no_poolbench": (json.dumps(no_poolbench), "not from poolbench"),
        "future": (json.dumps(future), "schema 99"),
        "lacking": (json.dumps(lacking), "lacks extra_info 'workers'"),
    }
    out = {}
    for name, (text, message) in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        out[name] = (path, message)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(bytes(range(256)) * 4)
    out["garbage"] = (garbage, "binary")
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    out["empty_dir"] = (empty_dir, "no .json results")
    out["missing"] = (tmp_path / "nope.json", "no such file")
    return out


BAD = ["empty", "truncated", "text", "other_tool", "list", "no_poolbench", "future", "lacking", "garbage"]
BAD += ["empty_dir", "missing"]


@pytest.mark.parametrize("kind", BAD)
def test_loader_refuses_bad_input_with_one_line_naming_the_file(tmp_path, kind):
    path, message = _bad_inputs(tmp_path)[kind]
    with pytest.raises(ResultsError) as err:
        load([path])
    text = str(err.value)
    assert str(path) in text
    assert message in text
    assert "\n" not in text


# --- metrics --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "workers", "tasks", "cpus", "ideal"),
    [
        ("cpu-python", 1, 16, 2.0, 1.0),
        ("cpu-python", 4, 16, 2.0, 2.0),
        ("cpu-python", 3, 8, 2.0, 2.0),
        ("cpu-python", 3, 8, 8.0, 8 / 3),  # uneven last batch: ceil(8/3) = 3 rounds of tasks
        ("cpu-native", 2, 16, 0.5, 1.0),  # serial had 0.5 CPUs too: nothing to gain
        ("cpu-native", 2, 16, 1.5, 1.5),
        ("io", 8, 16, 2.0, 8.0),
        ("io", 32, 16, 2.0, 16.0),
    ],
)
def test_ideal_speedup(kind, workers, tasks, cpus, ideal):
    assert reference.ideal_speedup(kind, workers, tasks, cpus) == pytest.approx(ideal)


def test_speedup_and_efficiency_come_from_the_same_run(records):
    points = analysis.scaling_points(records)
    serial = next(r for r in records if r.case == "scaling" and r.workload == "cpu_python" and r.executor == "serial")
    pool = next(r for r in records if r.case == "scaling" and r.workload == "cpu_python" and r.pool == "process/fork")
    point = analysis.find(points, "cpu_python", "process", pool.workers)
    assert point.speedup == pytest.approx(serial.median / pool.median)
    assert point.speedup_lo <= point.speedup <= point.speedup_hi
    assert point.efficiency == pytest.approx(point.speedup / min(pool.workers, 2.0))
    assert point.cpu_busy == pytest.approx(pool.extra["cpu_time_s"] / sum(pool.samples))
    sleep = analysis.find(points, "io_sleep", "thread", 4)
    assert sleep.ideal == 4.0  # I/O is not bound by the CPU count


def test_pool_costs(records):
    per_mib = costs.payload_ms_per_mib(records)
    assert set(per_mib) == {"serial", "thread", "process/fork"}
    cold = costs.cold_start_ms(records)
    assert set(cold) == {"thread", "process/fork"}
    dispatch = causes.per_task_us(records, "dispatch")
    assert {c for (pool, c) in dispatch if pool == "process/fork"} == {1, 16, 256}
    uss = costs.memory_per_worker(records)
    assert set(uss) == {"thread", "process/fork"}
    assert all(math.isfinite(v) for v in uss.values())


# --- plots ----------------------------------------------------------------------------------------


def test_plot_writes_png_and_svg_per_workload_and_prints_paths(tmp_path, capsys):
    assert plot.main([str(TWO), "--out", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in printed)
    expected = sorted(
        f"{stem}.{ext}"
        for stem in ("scaling-cpu_python", "scaling-io_sleep", "scaling-numpy_ufunc", "summary")
        for ext in ("png", "svg")
    )
    assert names == expected
    for p in printed:
        assert Path(p).stat().st_size > 1000
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_plot_panels(monkeypatch, tmp_path):
    figures = {}

    def keep(fig, out, stem):
        figures[stem] = fig
        return []

    monkeypatch.setattr(plot, "save", keep)
    plot.main([str(TWO), str(ONE), "--out", str(tmp_path)])
    fig = figures["scaling-cpu_python-2_CPUs"]
    speed, eff = fig.axes
    assert speed.get_ylabel().startswith("speedup") and eff.get_ylabel().startswith("efficiency")
    assert speed.get_xlabel() == "max_workers"
    legend = [t.get_text() for t in speed.get_legend().get_texts()]
    assert {"thread", "process/fork", "serial"} <= set(legend)
    assert any(t.startswith("ideal") for t in legend)
    assert "effective CPUs = 2" in legend
    by_limit = figures["scaling-cpu_python-by-limit"]
    assert [ax.get_title() for ax in by_limit.axes] == ["process/fork", "thread"]
    assert {t.get_text() for t in by_limit.axes[0].get_legend().get_texts()} == {"1 CPU", "2 CPUs"}
    assert "summary-1_CPU" in figures and "summary-2_CPUs" in figures


# --- report ---------------------------------------------------------------------------------------


def _verdicts(records) -> dict[str, claims.Verdict]:
    """The claims' verdicts as scripts.claims gives them (the objects the report renders)."""
    ev = claims.Evidence(records)
    return {v.topic: v for v in (check(ev) for check in claims.CLAIMS)}


def test_each_claim_carries_the_fixture_numbers_and_a_verdict(records):
    verdicts = _verdicts(records)
    assert list(verdicts) == [
        "concurrency type",
        "ideal workload",
        "GIL",
        "memory",
        "communication",
        "start-up",
        "crash isolation",
        "parallelism",
    ]
    for topic, v in verdicts.items():
        assert v.verdict.split(":")[0] in ("confirmed", "refuted", "depends", "not measured"), topic
        if topic != "crash isolation":
            assert any(ch.isdigit() for ch in v.measured), topic
    assert verdicts["crash isolation"].verdict.startswith("not measured")
    points = analysis.scaling_points(records)
    gil = analysis.find(points, "cpu_python", "thread", 2)
    assert f"cpu_python (holds) {gil.speedup:.2f}×" in verdicts["GIL"].measured
    cold = costs.cold_start_ms(records)
    assert f"threads {cold['thread']:.2f} ms" in verdicts["start-up"].measured


def test_the_report_renders_every_verdict_and_links_its_plots(tmp_path, records, capsys):
    assert report.main([str(TWO), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1] == str(tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    for v in _verdicts(records).values():
        assert f"| {v.topic} | {v.claim} | {v.measured or '—'} | **{v.verdict}** |" in text, v.topic
    assert "## Stale claims corrected" in text
    assert "not 10" in text  # 2 CPUs × 5 = 10, while the default was min(32, 2 + 4) = 6
    assert "](plots/summary.png)" in text
    for link in [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]:
        assert (tmp_path / link).is_file()


def test_a_missing_claim_names_the_case_that_would_measure_it():
    verdicts = _verdicts(load([ONE]))
    assert "`--cases memory`" in verdicts["memory"].verdict
    assert "`--cases cold_start`" in verdicts["start-up"].verdict
    assert verdicts["parallelism"].verdict.startswith("depends: 1 effective CPUs")


# --- command lines: one line, exit code 2, nothing half-written --------------------------------------


@pytest.mark.parametrize("tool", ["scripts.plot", "scripts.report"])
@pytest.mark.parametrize("kind", ["missing", "truncated", "empty_dir", "other_tool"])
def test_tools_refuse_bad_input_in_one_line(tmp_path, tool, kind):
    path, message = _bad_inputs(tmp_path)[kind]
    out = tmp_path / "out"
    done = run_module(tool, str(path), "--out", str(out), timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr
    assert not out.exists()


def test_results_without_scaling_cases_are_refused(tmp_path):
    only_dispatch = json.loads(TWO.read_text())
    only_dispatch["benchmarks"] = [b for b in only_dispatch["benchmarks"] if b["extra_info"]["case"] == "dispatch"]
    path = tmp_path / "dispatch.json"
    path.write_text(json.dumps(only_dispatch))
    for tool in (plot, report):
        with pytest.raises(ResultsError, match="no scaling cases"):
            tool.main([str(path), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_bad_arguments_are_one_line():
    done = run_module("scripts.plot", "--bogus", timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_recommendation_does_not_chase_speedups_above_the_ideal(records):
    ev = claims.Evidence(records)
    base = analysis.find(ev.points, "cpu_python", "process", 2)
    noisy = [
        p for p in ev.points if not (p.workload == "cpu_python" and p.pool.startswith("process") and p.workers > 1)
    ]
    # two CPUs: 1.85× at 2 workers is as good as a noisy 2.4× at 4 workers (capped at the ideal of 2)
    noisy.append(dataclasses.replace(base, workers=2, speedup=1.85, ideal=2.0))
    noisy.append(dataclasses.replace(base, workers=4, speedup=2.4, ideal=2.0))
    ev.points = noisy
    row = next(r for r in claims.recommend(ev) if r[0] == "cpu_python")
    assert row[2] == "`process/fork`, max_workers=2"


def test_report_cautions_against_rounds_shorter_than_ten_quota_periods(tmp_path):
    data = json.loads(TWO.read_text())
    data["machine_info"]["poolbench"].update(cpu_quota=0.5, cpu_period_us=100_000, label="cpus-0.5")
    path = tmp_path / "quota.json"
    path.write_text(json.dumps(data))
    periods = costs.short_rounds_under_quota(load([path]))
    assert periods is not None and periods < costs.MIN_PERIODS_PER_ROUND
    report.main([str(path), "--out", str(tmp_path / "out")])
    assert f"the median scaling round lasted {periods:.1f} CFS periods" in (tmp_path / "out" / "report.md").read_text()
    assert costs.short_rounds_under_quota(load([TWO])) is None  # no quota, no caution
