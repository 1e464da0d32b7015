"""The keys docs/results-schema.md documents, read from the page itself: what a run is checked against.

Tests compare a real run's keys with these in both directions, so a key recorded and not documented,
or documented and no longer recorded, fails a test; no list of keys is copied into the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "results-schema.md").read_text()
NAME = re.compile(r"`([a-z][a-z_0-9]*)`")


def _rows(intro: str) -> list[str]:
    """The body rows of the table right after the line ``intro``."""
    rest = PAGE[PAGE.index(intro) + len(intro) :].lstrip("\n").split("\n")
    rows = []
    for line in rest:
        if not line.startswith("|"):
            break
        if not line.startswith(("| key", "| ---")):
            rows.append(line)
    assert rows, f"no table after {intro!r} in docs/results-schema.md"
    return rows


def keys(intro: str) -> set[str]:
    """The keys a table names in its first column: each one recorded in every result (or record)."""
    return {k for row in _rows(intro) for k in NAME.findall(row.split("|")[1])}


def named(intro: str) -> set[str]:
    """Every key a table names anywhere in its rows (a raw counter named beside its key, too)."""
    return {k for row in _rows(intro) for k in NAME.findall(row)}


def case_specific() -> set[str]:
    """The extra_info keys the page names as recorded by some cases only."""
    start = PAGE.index("Case-specific keys:")
    return set(NAME.findall(PAGE[start : PAGE.index("\n\n", start)]))


MACHINE_INTRO = '`machine_info["poolbench"]`:'
EXTRA_INTRO = "`extra_info` on every benchmark:"
