"""scripts.export: a run as github-action-benchmark's custom JSON (customBiggerIsBetter for speedups,
customSmallerIsBetter for times).

The format, from github-action-benchmark's README ("Examples", custom tools) and its TypeScript
type: a JSON list of objects with ``name`` (string), ``unit`` (string), ``value`` (number) and the
optional strings ``range`` and ``extra``; nothing else is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.analysis import scaling_points
from scripts.results import load
from tests.clirun import run_module

FIXTURES = Path(__file__).parent / "fixtures"
TWO = FIXTURES / "quick-2cpus.json"
ONE = FIXTURES / "quick-1cpu-affinity.json"
FIELDS = {"name": str, "unit": str, "value": (int, float), "range": str, "extra": str}
REQUIRED = {"name", "unit", "value"}


def export(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "bench.json"
    done = run_module("scripts.export", *args, "--format", "github-action-benchmark", "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    return json.loads(out.read_text())


def assert_custom_format(entries: list) -> None:
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert REQUIRED <= set(entry) <= set(FIELDS), entry
        for key, kind in FIELDS.items():
            if key in entry:
                assert isinstance(entry[key], kind) and not isinstance(entry[key], bool), (key, entry)
    names = [e["name"] for e in entries]
    assert len(set(names)) == len(names)


def test_speedups_are_exported_bigger_is_better_with_their_interval(tmp_path):
    entries = export(tmp_path, str(TWO))
    assert_custom_format(entries)
    points = [p for p in scaling_points(load([TWO])) if p.pool != "serial"]
    assert len(entries) == len(points)
    by_name = {e["name"]: e for e in entries}
    entry = by_name["poolbench/2 CPUs/scaling/cpu_python/process/fork/w2"]
    point = next(p for p in points if (p.workload, p.pool, p.workers) == ("cpu_python", "process/fork", 2))
    assert entry["unit"] == "x"
    assert entry["value"] == pytest.approx(point.speedup, abs=1e-4)
    assert entry["range"] == f"± {(point.speedup_hi - point.speedup_lo) / 2:.4f}"
    assert f"95% interval {point.speedup_lo:.3f}-{point.speedup_hi:.3f}" in entry["extra"]


def test_times_are_exported_smaller_is_better_for_every_case(tmp_path):
    entries = export(tmp_path, str(TWO), "--metric", "time")
    assert_custom_format(entries)
    assert len(entries) == len(load([TWO]))
    assert {e["unit"] for e in entries} == {"ms"}
    names = {e["name"] for e in entries}
    assert "poolbench/2 CPUs/dispatch/noop/process/fork/w2/c16" in names
    assert "poolbench/2 CPUs/payload/echo/thread/w2/16MiB" in names


def test_names_are_stable_across_runs_and_distinct_across_limits(tmp_path):
    data = json.loads(TWO.read_text())
    data["datetime"] = "2999-01-01T00:00:00"
    for bench in data["benchmarks"]:
        bench["stats"]["data"] = [x * 1.1 for x in bench["stats"]["data"]]
    later = tmp_path / "later.json"
    later.write_text(json.dumps(data))
    first = {e["name"] for e in export(tmp_path, str(TWO))}
    second = {e["name"] for e in export(tmp_path, str(later))}
    assert first == second
    both = export(tmp_path, str(TWO), str(ONE))
    assert {e["name"].split("/")[1] for e in both} == {"2 CPUs", "1 CPU"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "/nonexistent/x.json"], "no such folder"),
        (["--metric", "latency", "--out", "x.json"], "invalid choice"),
        (["--format", "bencher", "--out", "x.json"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    done = run_module("scripts.export", str(TWO), *args, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
