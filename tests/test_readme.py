"""README.md stays true: its test command is what CI runs, and its schema names every recorded key."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_suite_run import EXTRA_INFO_KEYS, MACHINE_KEYS, SCALING_POOL_KEYS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_after(heading: str) -> str:
    """The first fenced bash command after the bold ``heading`` in README.md."""
    block = re.search(re.escape(heading) + r".*?```bash\n(.+?)\n```", README, re.S)
    assert block, heading
    return block.group(1).strip()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    assert command_after("**Run the tests**") in ci.splitlines()


def test_main_job_runs_the_benchmarks_then_the_report():
    main_job = command_after("**Main job**")
    assert main_job.index("-m pytest bench --benchmark-autosave") < main_job.index("-m scripts.report .benchmarks")


def test_schema_documents_every_recorded_key():
    for key in EXTRA_INFO_KEYS | MACHINE_KEYS | SCALING_POOL_KEYS:
        assert f"`{key}`" in README, key


def test_the_recommendation_order_is_the_codes_wherever_it_is_stated():
    from scripts.claims import COST_RANK, cost_order  # noqa: PLC0415

    order = cost_order()
    assert order == "no pool, then threads, subinterpreters, processes, a dask cluster"
    assert list(COST_RANK) == sorted(COST_RANK, key=COST_RANK.__getitem__)  # the words follow the ranks
    readme = " ".join((ROOT / "README.md").read_text().split())  # as one line: the phrase wraps there
    assert f"({order}; fewer workers before more)" in readme
