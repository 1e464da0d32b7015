"""The GitHub workflows do what docs/gate.md says: gate, report into the job summary, upload results.

Their syntax is checked against GitHub's workflow schema by `.ci/run`
(`check-jsonschema --builtin-schema vendor.github-workflows`); this checks what they run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_there_are_the_two_gates():
    assert {p.name for p in WORKFLOWS} == {"perf-gate.yml", "env-gate.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_gate_reports_into_the_job_summary_and_uploads_its_results(path):
    text = path.read_text()
    assert "-m scripts.compare" in text
    assert "set -o pipefail" in text  # the gate's exit code survives the tee into the summary
    assert '>> "$GITHUB_STEP_SUMMARY"' in text
    assert "--format markdown" in text and "results/report.md" in text  # the gate as Markdown in the summary
    assert "-m scripts.export" in text and "--format github-action-benchmark" in text
    assert "actions/upload-artifact@" in text
    assert "pip install -r requirements.txt" in text


def test_the_environment_gate_keeps_its_baseline_from_main():
    text = (ROOT / ".github" / "workflows" / "env-gate.yml").read_text()
    assert "actions/cache/save@" in text and "actions/cache/restore@" in text
    assert "github.ref == 'refs/heads/main'" in text
    assert "restore-keys: poolbench-baseline-${{ runner.os }}-" in text


def test_ci_checks_every_workflow_against_the_schema():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "check-jsonschema==" in ci
    assert "--builtin-schema vendor.github-workflows .github/workflows/*.yml" in ci


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_gate_runs_the_baselines_task_sizes(path):
    # calibrating the current side afresh would size a slowed task back to the target time
    text = path.read_text()
    assert "--sizes-from baseline" in text
    if path.name == "env-gate.yml":  # the baseline is restored before the run that reuses its sizes
        assert text.index("Restore the newest main baseline") < text.index("--sizes-from baseline")
