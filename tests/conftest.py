"""The suite's own tests: a warning raised in a test is an error (``filterwarnings = error``, for tests/ only).

Not in pyproject.toml's ini options: those apply to ``pytest bench`` too, and a benchmark run must
not fail because a library warns (dask warns of every large payload the payload case sends on
purpose). A warning that must stay is listed in ``EXPECTED`` with why; there is none today.
"""

from __future__ import annotations

import pytest

#: ``filterwarnings`` entries for warnings a test may raise, each with why it cannot be avoided.
EXPECTED: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.filterwarnings("error", *EXPECTED))
