"""README's figures against the result files they were measured in (evidence/, scripts/evidence.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from scripts import evidence
from scripts.results import ResultsError, load
from tests.clirun import run_module

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "quick-2cpus.json"


def test_every_figure_block_of_readme_and_docs_matches_its_result_files():
    done = run_module("scripts.evidence", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    pages = evidence.doc_files()
    assert ROOT / "README.md" in pages and ROOT / "docs" / "guide.md" in pages
    assert done.stdout.count("every evidence block matches") == len(pages)


def test_readme_and_docs_hold_every_block_once_and_no_unknown_one():
    names = [n for page in evidence.doc_files() for n in re.findall(r"<!-- evidence:([a-z]+) -->", page.read_text())]
    assert sorted(names) == sorted(evidence.BLOCKS)


def test_a_stale_block_is_found_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.setitem(evidence.BLOCKS, "demo", lambda: ["measured: 3 s"])
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- evidence:demo -->\nmeasured: 2 s\n<!-- /evidence:demo -->\nend\n")
    text, changed = evidence.rewrite(readme.read_text())
    assert changed == ["demo"]
    assert text == "intro\n<!-- evidence:demo -->\nmeasured: 3 s\n<!-- /evidence:demo -->\nend\n"
    assert evidence.rewrite(text) == (text, [])
    with pytest.raises(ResultsError, match="evidence:nosuch: no such block"):
        evidence.rewrite("<!-- evidence:nosuch -->\nx\n<!-- /evidence:nosuch -->\n")


def test_trimmed_files_keep_what_the_loader_reads(tmp_path):
    data = json.loads(FIXTURE.read_text())
    small = evidence.trimmed(data)
    assert "cpu" not in small["machine_info"] and "commit_info" not in small
    path = tmp_path / "run.json"
    path.write_text(json.dumps(small))
    full, cut = load([str(FIXTURE)]), load([str(path)])
    assert [(r.name, r.samples, r.extra) for r in cut] == [(r.name, r.samples, r.extra) for r in full]


def test_steady_state_faults_are_the_median_of_the_passes_and_the_table_keeps_every_round():
    """A new thread arena's one growth (one array's pages) lands in a point's first pass: the fault target reads
    the passes' median, the table every round (scripts/evidence_faults.py)."""
    from scripts.evidence_faults import _per_task_faults, _steady_faults  # noqa: PLC0415

    base = load([str(FIXTURE)])[0]
    three = dataclasses.replace(
        base,
        tasks=12,
        samples=(0.1,) * 9,
        passes=(3, 3, 3),
        extra={**base.extra, "minor_faults": 2931 + 3 + 6},
        by_pass={"minor_faults": (2931, 3, 6)},
    )
    assert _steady_faults(three) == pytest.approx(6 / 36)
    assert _per_task_faults(three) == pytest.approx(2940 / 108)
    one = dataclasses.replace(
        three, samples=(0.1,) * 3, passes=(), extra={**base.extra, "minor_faults": 2931}, by_pass={}
    )
    assert _steady_faults(one) == _per_task_faults(one) == pytest.approx(2931 / 36)
