"""Your own workloads: a Python file whose module-level ``WORKLOADS`` lists :class:`Workload` records.

    # mytasks.py
    from workloads import Size, Workload

    def sha_task(n: int) -> str: ...
    def check_sha(n: int, result) -> bool: ...

    WORKLOADS = [Workload(name="sha", func=sha_task, kind="cpu-native", gil="releases",
                          sizes={"quick": Size(8 << 20, 8, scale=1), "default": Size(32 << 20, 16, scale=1),
                                 "full": Size(64 << 20, 32, scale=1)},
                          check=check_sha, models="hashing")]

``Size(param, tasks, scale)``: with ``scale`` (the exponent of work ~ param**scale, or a function
``(param, factor) -> param``) the parameter is calibrated so one serial task takes the profile's
target time on the host (bench/calibration.py); without it the parameter runs as given. A scaling batch
holds k tasks per busy CPU whatever ``tasks`` says (common/plan.batch_tasks).

``pytest bench --workload-file mytasks.py`` (or ``POOLBENCH_WORKLOAD_FILES=a.py:b.py``) loads it
before anything else: its workloads join the sweep under their own names, exactly as the built-ins.

Process pools started by spawn or forkserver import a task function by its module's name in a fresh
interpreter, so the file is imported as a top-level module named after it (``mytasks``), with its
folder appended to ``sys.path``; multiprocessing hands ``sys.path`` on to those workers. A file whose
name is already taken by another module is refused rather than shadowed.

Every problem ends in :class:`WorkloadFileError`, one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.schema import PROFILES
from workloads import registry

#: The variable a workload file must define.
VARIABLE = "WORKLOADS"
#: Kinds a user workload may declare (the others are the suite's own probes).
USER_KINDS = ("io", "cpu-python", "cpu-native")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class WorkloadFileError(ValueError):
    """A workload file cannot be used; ``str()`` is the one line to show."""


def _fail(path: Path, problem: str, fix: str) -> WorkloadFileError:
    return WorkloadFileError(f"workload file {path}: {problem}; {fix}")


def _import(path: Path) -> Any:
    if not path.is_file():
        raise _fail(path, "no such file", "give the path of a Python file that defines WORKLOADS")
    if path.suffix != ".py":
        raise _fail(path, "not a .py file", "give a Python source file")
    name = path.stem
    if not name.isidentifier():
        raise _fail(path, f"{name!r} is not a module name", "rename the file to a Python identifier (letters, _)")
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return loaded  # loaded already (the same file given twice)
    taken = loaded if loaded is not None else importlib.util.find_spec(name)
    if taken is not None and Path(getattr(taken, "origin", None) or "").resolve() != path:
        raise _fail(
            path,
            f"its module name {name!r} is already taken by {getattr(taken, 'origin', None) or name}",
            "rename the file (worker processes import it by that name)",
        )
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)  # spawn and forkserver workers receive sys.path from this process
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _fail(path, "cannot be imported", "give a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise _fail(path, f"syntax error on line {exc.lineno}: {exc.msg}", "fix the file") from None
    except BaseException as exc:  # whatever importing it raised, the user sees one line
        del sys.modules[name]
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise _fail(
            path, f"importing it raised {type(exc).__name__}: {exc} (line {where.lineno})", "fix the file"
        ) from None
    return module


def _picklable(path: Path, workload: str, what: str, obj: Any) -> None:
    """Workers receive functions by reference: module and name, which must find the same object again."""
    try:
        same = pickle.loads(pickle.dumps(obj)) is obj if callable(obj) else pickle.dumps(obj) is not None
    except Exception as exc:  # pickle raises many kinds
        raise _fail(
            path,
            f"workload {workload!r}: its {what} cannot be pickled ({type(exc).__name__}: {exc})",
            "define functions at module level (no lambda or nested function) and use picklable arguments",
        ) from None
    if not same:
        raise _fail(path, f"workload {workload!r}: its {what} does not pickle to itself", "define it at module level")


def _check_scale(path: Path, workload: str, profile: str, size: registry.Size) -> None:
    """``Size.scale``: None, a positive exponent of a numeric parameter, or a function (param, factor) -> param."""
    scale = size.scale
    numeric = isinstance(scale, int | float) and not isinstance(scale, bool)
    if scale is not None and not callable(scale) and not (numeric and scale > 0):
        raise _fail(
            path,
            f"workload {workload!r}: sizes[{profile!r}].scale is {scale!r}",
            "leave it None (a fixed size), give the exponent e of work ~ param**e (1 for a byte count), "
            "or a function (param, factor) -> param",
        )
    if numeric and not isinstance(size.param, int | float):
        raise _fail(
            path,
            f"workload {workload!r}: sizes[{profile!r}] scales a {type(size.param).__name__} parameter by a number",
            "use a numeric parameter, or give scale as a function (param, factor) -> param",
        )


def _validate(path: Path, w: Any, index: int, taken: Mapping[str, str]) -> registry.Workload:
    if not isinstance(w, registry.Workload):
        raise _fail(
            path,
            f"WORKLOADS[{index}] is a {type(w).__name__}, not a Workload",
            "build each entry with `from workloads import Size, Workload`",
        )
    if not isinstance(w.name, str) or not NAME.fullmatch(w.name):
        raise _fail(path, f"WORKLOADS[{index}]: name {w.name!r} is not a plain name", "use letters, digits and _")
    if w.name in taken:
        raise _fail(path, f"workload {w.name!r} clashes with {taken[w.name]}", "give it another name")
    if not callable(w.func):
        raise _fail(path, f"workload {w.name!r}: func is not callable", "give the task function")
    if w.kind not in USER_KINDS:
        raise _fail(path, f"workload {w.name!r}: kind {w.kind!r}", f"choose one of {', '.join(USER_KINDS)}")
    if w.gil not in registry.GIL:
        raise _fail(path, f"workload {w.name!r}: gil {w.gil!r}", f"choose one of {', '.join(registry.GIL)}")
    if not isinstance(w.sizes, Mapping) or set(w.sizes) != set(PROFILES):
        have = sorted(w.sizes) if isinstance(w.sizes, Mapping) else type(w.sizes).__name__
        raise _fail(
            path,
            f"workload {w.name!r}: sizes has {have}",
            f"give a Size(param, tasks) for each profile: {', '.join(PROFILES)}",
        )
    for profile, size in w.sizes.items():
        if not isinstance(size, registry.Size) or not isinstance(size.tasks, int) or size.tasks < 1:
            raise _fail(
                path,
                f"workload {w.name!r}: sizes[{profile!r}] is {size!r}",
                "give Size(param, tasks) with a whole number of tasks, 1 or more",
            )
        _picklable(path, w.name, f"{profile} parameter", size.param)
        _check_scale(path, w.name, profile, size)
    if w.check is not None and not callable(w.check):
        raise _fail(path, f"workload {w.name!r}: check is not callable", "give a function (param, result) -> bool")
    if not isinstance(w.models, str):
        raise _fail(path, f"workload {w.name!r}: models is not text", "say in words what the workload models")
    _picklable(path, w.name, "func", w.func)
    return w


def load_files(paths: list[str]) -> list[registry.Workload]:
    """Import each file, validate its WORKLOADS and register them; returns what was registered.

    Nothing is registered unless every file is usable.
    """
    taken = {name: "a built-in workload" for name in (*registry.SCALING, *registry.PROBES)}
    found: list[tuple[registry.Workload, Path]] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        module = _import(path)
        entries = getattr(module, VARIABLE, None)
        if entries is None:
            raise _fail(path, f"defines no {VARIABLE}", f"add a module-level {VARIABLE} = [Workload(...), ...]")
        if not isinstance(entries, list | tuple) or not entries:
            raise _fail(path, f"{VARIABLE} is not a non-empty list", "make it a list of Workload records")
        for i, w in enumerate(entries):
            found.append((_validate(path, w, i, taken), path))
            taken[w.name] = f"the workload of that name in {path}"
    for w, path in found:
        registry.register_user(w, str(path))
    return [registry.USER[w.name] for w, _ in found]
