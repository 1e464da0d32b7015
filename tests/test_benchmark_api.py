"""The one adapter to pytest-benchmark's internals (bench/benchmark_api.py): the pinned version has all it
needs, and a version that lacks one stops the run with one line and exit 4 instead of dropping a guarantee."""

from __future__ import annotations

import logging
import os
import re
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import benchmark_api
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]


def _session_like(tmp_path: Path) -> SimpleNamespace:
    from pytest_benchmark.storage.file import FileStorage  # noqa: PLC0415

    storage = FileStorage(str(tmp_path), default_machine_id="m", logger=logging.getLogger("t"))
    return SimpleNamespace(**{**dict.fromkeys(benchmark_api.SESSION_NEEDS), "storage": storage})


def test_the_adapter_is_written_for_the_pinned_version_and_finds_all_it_needs_there(tmp_path):
    pinned = re.search(r"^pytest-benchmark==(\S+)$", (ROOT / "requirements-measure.txt").read_text(), re.M)
    assert pinned is not None and pinned.group(1) == benchmark_api.WRITTEN_FOR == metadata.version("pytest-benchmark")
    assert benchmark_api.missing(_session_like(tmp_path)) == []


def test_what_is_missing_is_named(tmp_path, monkeypatch):
    from pytest_benchmark.storage.file import FileStorage  # noqa: PLC0415

    monkeypatch.delattr(FileStorage, "_next_num")
    session = _session_like(tmp_path)
    del session.get_machine_info
    assert benchmark_api.missing(session) == ["BenchmarkSession.get_machine_info", "FileStorage._next_num"]


@pytest.mark.slow
def test_a_pytest_benchmark_without_what_poolbench_needs_stops_the_run_in_one_line_with_exit_4(tmp_path):
    # a plugin that takes away the attribute atomic autosaves need, as a future release might
    (tmp_path / "older_benchmark.py").write_text(
        "from pytest_benchmark.storage.file import FileStorage\ndel FileStorage._next_num\n"
    )
    done = run_module(
        "pytest", "bench", "-p", "no:cacheprovider", "-p", "older_benchmark", "-q",
        "--profile", "quick", "--passes", "1",
        "--cases", "scaling", "--workloads", "io_sleep", "--executors", "serial",
        "--benchmark-autosave", "--benchmark-storage", str(tmp_path / "store"),
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [
        f"ERROR: pytest-benchmark {benchmark_api.version()} lacks FileStorage._next_num, which poolbench needs "
        f"(written for pytest-benchmark {benchmark_api.WRITTEN_FOR}); install the pinned version: "
        "pip install -r requirements.txt"
    ], errors
    assert "passed" not in done.stdout and not list((tmp_path / "store").rglob("*.json"))


#: Attributes of pytest-benchmark's session, storage, records and fixtures, and of pytest's internals, that
#: are not their documented API: only bench/benchmark_api.py may touch them.
INTERNALS = {
    "_benchmarksession", "storage", "_next_num", "save_json", "benchmarks", "logger", "disabled", "autosave",
    "has_error", "get_machine_info", "benchmark_save_data", "_tw", "poolbench_passed", "poolbench_saved",
}  # fmt: skip


def test_pytest_benchmarks_internals_are_reached_only_through_the_adapter():
    import ast  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1] / "bench"
    found = []
    for path in sorted(root.glob("*.py")):
        if path.name == "benchmark_api.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            through_adapter = isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "benchmark_api"
            if isinstance(node, ast.Attribute) and node.attr in INTERNALS and not through_adapter:
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_benchmark"):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
    assert not found, found
