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


def _modules_imported(path: Path, package: str) -> set[str]:
    """The ``package`` modules a module imports when it runs, at the top or inside a function (not under
    ``if TYPE_CHECKING:``, which never runs)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(f"{package}.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == package:
                found |= {f"{package}.{a.name}" for a in node.names}
            elif node.module.startswith(f"{package}."):
                found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["bench", "scripts", "common", "workloads"])
def test_no_module_imports_itself_back_through_others(package):
    graph = {f"{package}.{p.stem}": _modules_imported(p, package) for p in sorted((ROOT / package).glob("*.py"))}
    circles = set()

    def walk(module: str, path: tuple[str, ...]) -> None:
        for dep in graph.get(module, ()):
            if dep in path:
                circle = path[path.index(dep) :]
                start = circle.index(min(circle))  # one spelling per circle
                circles.add(" -> ".join((*circle[start:], *circle[:start], min(circle))))
            elif dep in graph:
                walk(dep, (*path, dep))

    for module in graph:
        walk(module, (module,))
    assert not circles, sorted(circles)


@pytest.mark.parametrize("room", ["bench", "scripts", "common", "workloads"])
def test_no_module_holds_more_than_one_files_worth(room):
    # issue #31: a file of one job stays under about 500 lines; past it, it is two jobs
    long = {p.name: n for p in (ROOT / room).glob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"{room}: {long}: split by job"
