"""Each folder imports only what its room may (docs/architecture.md, "Rooms and what each may import")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
#: Third-party and project top-level modules each folder may import, beside the standard library.
ALLOWED = {
    "common": {"common"},
    # common is standard library only itself: the profiles' names and the schema's keys
    "workloads": {"workloads", "common", "numpy"},
    # the dask executor's own module imports dask and distributed (optional: requirements-cluster.txt)
    "bench": {"bench", "workloads", "common", "pytest", "pytest_benchmark", "psutil", "threadpoolctl", "numpy"}
    | {"dask", "distributed"},
    # PyYAML reads compose files for the affinity backend (the matrix driver runs the suite as a command)
    "scripts": {"scripts", "common", "numpy", "matplotlib", "yaml"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_what_it_may(room):
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / room).glob("*.py"))
        for name in _imports(path) - STDLIB - ALLOWED[room]
    }
    assert not wrong, sorted(wrong)
