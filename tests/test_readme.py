"""README.md and docs/ stay true: README's test command is what CI runs, the schema page names every
recorded key, the recommendation order is the code's wherever it is stated, and the front page is a
front page (its links lead to pages that exist)."""

from __future__ import annotations

import re
from pathlib import Path

from common.schema import REQUIRED_EXTRA, REQUIRED_MACHINE

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


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


def test_schema_documents_the_keys_the_loader_requires():
    # the keys of a real run are checked against the page in tests/test_suite_run.py
    schema = (DOCS / "results-schema.md").read_text()
    for key in (*REQUIRED_EXTRA, *REQUIRED_MACHINE):
        assert f"`{key}`" in schema, key


def test_the_recommendation_order_is_the_codes_wherever_it_is_stated():
    from scripts.claims import COST_RANK, recommendation_order  # noqa: PLC0415

    order = recommendation_order()
    assert order == "no pool, then threads, subinterpreters, processes, a dask cluster"
    assert list(COST_RANK) == sorted(COST_RANK, key=COST_RANK.__getitem__)  # the words follow the ranks
    guide = " ".join((DOCS / "guide.md").read_text().split())  # as one line: the phrase wraps there
    assert f"({order}; fewer workers before more)" in guide
    # wherever the order is spelled out, it is this one
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = " ".join(page.read_text().split())
        for found in re.findall(r"no pool, then [a-z ,]+?(?=[;).])", text):
            assert found == order, f"{page.name}: {found!r}"


def test_the_front_page_is_short_and_its_links_lead_somewhere():
    assert len(README.splitlines()) < 150
    links = re.findall(r"\]\(([^)#]+\.(?:md|png))\)", README)
    assert {"docs/guide.md", "docs/results-schema.md", "docs/architecture.md"} <= set(links)
    for link in links:
        assert (ROOT / link).is_file(), link
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / link).resolve().is_file(), f"{page.name}: {link}"
