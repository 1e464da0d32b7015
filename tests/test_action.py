"""The reusable CI step (action.yml) and its logic (scripts/action.py), end to end on this machine:
no baseline yet, an unchanged rerun, a slowed workload; where a baseline may come from; bad input.

action.yml itself is checked against GitHub's action schema by .ci/run (check-jsonschema
``vendor.github-actions``); here, that it runs the script, passes its inputs through the
environment (never pasted into a shell script) and keeps the baseline only when the script says so.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from scripts import action
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"

#: A user's workload file; MYTASKS_SLOW=4 makes every task do four times the work (a slowed release).
TASKS = """import os
from workloads import Size, Workload

SLOW = int(os.environ.get("MYTASKS_SLOW", "1"))

def task(n):
    return sum(range(n * SLOW)) > 0

SIZES = {p: Size(200_000, 4, scale=1) for p in ("quick", "default", "full")}
WORKLOADS = [Workload(name="summing", func=task, kind="cpu-python", gil="holds", sizes=SIZES)]
"""


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _step(tmp_path: Path, name: str, *, event: str, ref: str, slow: int = 1):
    out = tmp_path / name
    outputs, summary = tmp_path / f"{name}.out", tmp_path / f"{name}.md"
    done = run_module(
        "scripts.action",
        *("--workload-files", "tasks/mytasks.py", "--workdir", str(tmp_path)),  # relative to the workspace
        *("--baseline", str(tmp_path / "baseline"), "--out", str(out), "--executors", "serial,process"),
        *("--event", event, "--ref", ref, "--default-branch", "main"),
        *("--summary", str(summary), "--github-output", str(outputs)),
        env={**os.environ, "MYTASKS_SLOW": str(slow)},
        timeout=600,
    )
    return done, _outputs(outputs) if outputs.exists() else {}, summary.read_text() if summary.exists() else ""


def _gate(tmp_path: Path, current: Path) -> dict:
    """The gate of ``current`` against the kept baseline, as ``scripts.compare --format json`` has it."""
    done = run_module("scripts.compare", str(tmp_path / "baseline" / "baseline.json"), str(current), "--format", "json")
    return json.loads(done.stdout)


def _denied(gate: dict) -> bool:
    """Whether either side was measured denied CPU (its run-queue wait: common/denied.py)."""
    return any(side.get("denied") for side in (gate["denied"] or {}).values())


@pytest.mark.slow
@pytest.mark.e2e  # four runs of the suite in a row: .ci/run runs it (pytest -m e2e)
def test_a_baseline_from_main_then_an_unchanged_rerun_passes_and_a_slowed_workload_fails(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mytasks.py").write_text(TASKS)

    # a pull request with no baseline: runs, passes, and never becomes the baseline
    done, out, summary = _step(tmp_path, "pr0", event="pull_request", ref="refs/pull/7/merge")
    assert done.returncode == 0, done.stdout + done.stderr
    assert out == {"verdict": "recorded", "save-baseline": "false", "results": str(tmp_path / "pr0")}
    assert not (tmp_path / "baseline").exists()
    assert "a baseline is kept only from a push, schedule or manual run on main" in summary
    assert "# poolbench report" in summary  # the report goes to the job summary too

    # the first push to main: recorded as the baseline, passes
    done, out, summary = _step(tmp_path, "main1", event="push", ref="refs/heads/main")
    assert done.returncode == 0, done.stdout + done.stderr
    assert out["verdict"] == "recorded" and out["save-baseline"] == "true"
    assert (tmp_path / "baseline" / "baseline.json").read_bytes() == (tmp_path / "main1" / "current.json").read_bytes()
    assert "this run is kept as the baseline (push on main)" in summary

    # an unchanged rerun on a pull request: passes; only a side measured denied CPU makes it inconclusive
    done, out, summary = _step(tmp_path, "pr1", event="pull_request", ref="refs/pull/7/merge")
    assert done.returncode == 0, done.stdout + done.stderr
    expected = "inconclusive" if _denied(_gate(tmp_path, tmp_path / "pr1" / "current.json")) else "pass"
    assert out["verdict"] == expected and out["save-baseline"] == "false", done.stdout
    assert summary.startswith(f"## poolbench gate: {out['verdict']}") and "| verdict |" in summary.lower()
    current = json.loads((tmp_path / "pr1" / "current.json").read_text())
    baseline = json.loads((tmp_path / "baseline" / "baseline.json").read_text())
    sized, base_sized = current["machine_info"]["poolbench"]["sizes"], baseline["machine_info"]["poolbench"]["sizes"]
    assert (
        sized["summing"]["param"] == base_sized["summing"]["param"]
    )  # the baseline's task sizes, not a new calibration
    assert sized["summing"]["method"] == f"from {tmp_path / 'baseline' / 'baseline.json'}"

    # a release that made every task 4x slower: the gate finds it in the work index
    done, out, summary = _step(tmp_path, "pr2", event="pull_request", ref="refs/pull/8/merge", slow=4)
    gate = _gate(tmp_path, tmp_path / "pr2" / "current.json")
    work = [r for r in gate["rows"] if r["metric"] == "work"]
    assert work and work[0]["verdict"] == "regression", work  # found whatever the machine was doing
    if _denied(gate):  # a side measured denied CPU: inconclusive, re-run (the code is not blamed)
        assert (out["verdict"], done.returncode) == ("inconclusive", 0) and "denied CPU" in done.stdout
    else:
        assert (out["verdict"], done.returncode) == ("regression", 1), done.stdout
        assert summary.startswith("## poolbench gate: regression")
    assert out["save-baseline"] == "false" and (tmp_path / "pr2" / "report" / "report.md").is_file()


@pytest.mark.parametrize(
    ("event", "ref", "keep"),
    [
        ("push", "refs/heads/main", True),
        ("schedule", "refs/heads/main", True),
        ("workflow_dispatch", "refs/heads/main", True),
        ("push", "refs/heads/feature", False),
        ("pull_request", "refs/heads/main", False),  # a pull request never, whatever ref it names
        ("pull_request_target", "refs/heads/main", False),
        ("", "", False),  # a local run
    ],
)
def test_only_trusted_runs_on_the_default_branch_may_keep_a_baseline(event, ref, keep):
    assert action.may_keep_baseline(event, ref, "main") is keep


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no workload file given"),
        (["--workload-files", "nowhere.py"], "workload file {tmp}/nowhere.py: no such file"),
        (["--workload-files", "t.py", "--limit", "cpus-1"], "a CPU quota needs a container"),
        (["--workload-files", "t.py", "--limit", "fast"], "service 'fast' does not say its limit"),
        (["--workload-files", "t.py", "--fail-on-regression", "yes"], "'yes' is not true or false"),
        (["--workload-files", "t.py", "--min-effect", "25"], "is not a fraction in [0, 1)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "t.py").write_text(TASKS)
    done = run_module(
        "scripts.action",
        *("--workdir", str(tmp_path), "--baseline", str(tmp_path / "b"), "--out", str(tmp_path / "o"), *args),
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(tmp=tmp_path.resolve()) in lines[0], lines
    assert not (tmp_path / "b").exists()


def test_action_yml_runs_the_script_with_its_inputs_through_the_environment():
    text = ACTION.read_text()
    assert "using: composite" in text and "-m scripts.action" in text
    # inputs reach the shell as environment variables, never pasted into a script (injection)
    for block in re.findall(r"run: \|\n((?:        .*\n)+)", text):
        assert "${{ inputs." not in block, block
    assert "steps.gate.outputs.save-baseline == 'true'" in text  # the cache is written only when allowed
    assert "actions/cache/restore@" in text and "actions/cache/save@" in text
    assert "actions/upload-artifact@" in text and "GITHUB_STEP_SUMMARY" in text
    assert "${{ github.event.repository.default_branch }}" in text


def test_the_gate_page_documents_every_input_of_the_action():
    readme = (ROOT / "docs" / "gate.md").read_text()
    inputs = re.findall(r"^  ([a-z][a-z-]+):\n    description:", ACTION.read_text(), re.M)
    assert {"workload-files", "profile", "workers", "executors", "python", "fail-on-regression", "min-effect"} <= set(
        inputs
    )
    for name in inputs:
        assert f"`{name}`" in readme, f"docs/gate.md does not document the action's input {name}"
    assert "permissions:" in readme and "contents: read" in readme
