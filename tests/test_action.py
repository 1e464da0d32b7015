"""The reusable CI step (action.yml) and its logic (scripts/action.py), end to end on this machine: a push
recorded as history; a pull request's head against its base, measured in one job (scripts/ab.py), unchanged
and made 10 % slower; bad input.

action.yml itself is checked against GitHub's action schema by .ci/run (check-jsonschema
``vendor.github-actions``); here, that it runs the script, passes its inputs through the environment
(never pasted into a shell script) and checks out the pull request's base beside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"

#: A user's workload file; its SLOWDOWN is what a pull request changes (1.10: every task does 10 % more work).
TASKS = """from workloads import Size, Workload

SLOWDOWN = {slow}

def task(n):
    return sum(range(round(n * SLOWDOWN))) > 0

SIZES = {{p: Size(200_000, 4, scale=1) for p in ("quick", "default", "full")}}
WORKLOADS = [Workload(name="summing", func=task, kind="cpu-python", gil="holds", sizes=SIZES)]
"""


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _checkout(tmp_path: Path, name: str, slow: str) -> Path:
    """A checkout of the user's repository whose tasks do ``slow`` times the work."""
    (tmp_path / name / "tasks").mkdir(parents=True)
    (tmp_path / name / "tasks" / "mytasks.py").write_text(TASKS.format(slow=slow))
    return tmp_path / name


def _step(tmp_path: Path, name: str, *, head: Path, base: Path | None, event: str):
    out = tmp_path / name
    outputs, summary = tmp_path / f"{name}.out", tmp_path / f"{name}.md"
    done = run_module(
        "scripts.action",
        *("--workload-files", "tasks/mytasks.py", "--workdir", str(head), "--base-dir", str(base or "")),
        *("--out", str(out), "--executors", "serial,process", "--event", event),
        *("--summary", str(summary), "--github-output", str(outputs)),
        timeout=600,
    )
    return done, _outputs(outputs) if outputs.exists() else {}, summary.read_text() if summary.exists() else ""


def _decided(out: Path) -> dict:
    return json.loads((out / "ab" / "ab.json").read_text())


def _denied(decided: dict) -> bool:
    """Whether either arm measured a run denied CPU (its run-queue wait: common/denied.py)."""
    return any(side.get("denied") for side in (decided["denied"] or {}).values())


@pytest.mark.slow
@pytest.mark.e2e  # a recorded run and two A/B runs of the suite: .ci/run runs it (pytest -m e2e)
def test_a_push_is_recorded_and_a_pull_request_is_gated_against_its_base_measured_beside_it(tmp_path):
    base = _checkout(tmp_path, "base", "1.0")

    # a push: one run, kept as history, no gate
    done, out, summary = _step(tmp_path, "push", head=base, base=None, event="push")
    assert done.returncode == 0, done.stdout + done.stderr
    assert out == {"verdict": "recorded", "results": str(tmp_path / "push")}
    assert (tmp_path / "push" / "current.json").is_file() and "# poolbench report" in summary

    # a pull request that changes nothing: the same code in both arms, gated, its verdict the exit code and
    # the summary's first line. How often unchanged code passes is a rate of this noisy machine, measured in
    # docs/gate.md's ab block (A/A: 10 of 10 passed in its evidence of 2026-12-06, per-key bars; a one-workload
    # scaling index, as here, is held to the bars file's pooled bar, and once read a false regression in CI),
    # not a live run's matter
    same = _checkout(tmp_path, "same", "1.0")
    done, out, summary = _step(tmp_path, "pr1", head=same, base=base, event="pull_request")
    decided = _decided(tmp_path / "pr1")
    assert out["verdict"] == decided["outcome"], done.stdout + done.stderr
    assert done.returncode == (1 if out["verdict"] == "regression" else 0)  # the action fails on a regression only
    assert summary.startswith(f"## poolbench gate: {out['verdict']}") and "| `work[summing] (" in summary
    runs = decided["ab"]["runs"]
    assert runs[:2] == ["base-1.json", "head-1.json"] and len(runs) == 2 * decided["ab"]["pairs"]

    # a pull request whose every task does 10 % more work: a time regression of that workload
    slow = _checkout(tmp_path, "slow", "1.10")
    done, out, summary = _step(tmp_path, "pr2", head=slow, base=base, event="pull_request")
    decided = _decided(tmp_path / "pr2")
    assert any(r["metric"] == "work" for r in decided["rows"])  # (how near 10 % it measured: docs/gate.md's block)
    assert out["verdict"] == decided["outcome"]
    assert done.returncode == (1 if out["verdict"] == "regression" else 0)
    if _denied(decided):  # a side measured denied CPU: never a regression blamed on the code
        assert out["verdict"] in ("inconclusive", "pass")
    elif out["verdict"] == "regression":  # as it was in 10 of 10 evidence runs: named by what rose
        assert summary.startswith("## poolbench gate: regression") and "time regression" in summary
    assert (tmp_path / "pr2" / "report" / "report.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no workload file given"),
        (["--workload-files", "nowhere.py"], "workload file {tmp}/nowhere.py: no such file"),
        (["--workload-files", "t.py", "--limit", "cpus-1"], "a CPU quota needs a container"),
        (["--workload-files", "t.py", "--limit", "fast"], "service 'fast' does not say its limit"),
        (["--workload-files", "t.py", "--fail-on-regression", "yes"], "'yes' is not true or false"),
        (["--workload-files", "t.py", "--budget", "soon"], "'soon' is not a number of seconds"),
        (["--workload-files", "t.py", "--base-dir", "{tmp}/nowhere"], "not a folder; give the base commit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "t.py").write_text(TASKS.format(slow="1.0"))
    args = [a.format(tmp=tmp_path) for a in args]
    done = run_module("scripts.action", *("--workdir", str(tmp_path), "--out", str(tmp_path / "o"), *args), timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(tmp=tmp_path.resolve()) in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_action_yml_runs_the_script_with_its_inputs_through_the_environment():
    text = ACTION.read_text()
    assert "using: composite" in text and "-m scripts.action" in text
    # inputs reach the shell as environment variables, never pasted into a script (injection)
    for block in re.findall(r"run: \|\n((?:        .*\n)+)", text):
        assert "${{ inputs." not in block, block
    # a pull request's base commit is checked out beside the head and given as --base-dir; nothing cached
    assert "ref: ${{ github.event.pull_request.base.sha }}" in text and "--base-dir" in text
    assert "actions/cache" not in text
    assert "actions/upload-artifact@" in text and "GITHUB_STEP_SUMMARY" in text


def test_the_gate_page_documents_every_input_of_the_action():
    readme = (ROOT / "docs" / "gate.md").read_text()
    inputs = re.findall(r"^  ([a-z][a-z-]+):\n    description:", ACTION.read_text(), re.M)
    assert {"workload-files", "profile", "workers", "executors", "python", "fail-on-regression", "bars"} <= set(inputs)
    for name in inputs:
        assert f"`{name}`" in readme, f"docs/gate.md does not document the action's input {name}"
    assert "permissions:" in readme and "contents: read" in readme
