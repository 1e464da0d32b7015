"""The interpreter pool: ``concurrent.futures.InterpreterPoolExecutor`` (Python 3.14+).

One worker thread per worker, each running its own subinterpreter with its own GIL: pure-Python
tasks run in parallel on a Python with a GIL, inside one process. Tasks, arguments and results are
pickled between interpreters, as for a process pool, and an extension module must declare support
for several interpreters to be imported in one (NumPy 2.4 does not: "module
numpy._core._multiarray_umath does not support loading in subinterpreters").

So a workload runs under this pool only if every module it ``needs`` (``Workload.needs``) imports
in a subinterpreter here; :func:`probe_imports` asks one at start, and the cases left out are named
in one line with the error the import gave.

Its backend (bench/backend.py, named by its record in common/executors.py) is :data:`BACKEND`.
Only the standard library, ``workloads`` and bench.backend are imported here, so that this module
loads anywhere.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from bench.backend import Backend
from workloads import get, overhead

if TYPE_CHECKING:
    from bench.config import SuiteConfig

#: How long the probe waits for a subinterpreter to answer.
PROBE_TIMEOUT_S = 60


def available() -> bool:
    """Whether this Python has InterpreterPoolExecutor (3.14 and newer)."""
    return hasattr(concurrent.futures, "InterpreterPoolExecutor")


def missing_line() -> str | None:
    """Why the interpreter pool cannot run here (one phrase), or None when it can."""
    if available():
        return None
    version = ".".join(map(str, sys.version_info[:3]))
    return f"InterpreterPoolExecutor needs Python 3.14 or newer, and this is Python {version}"


def make(workers: int | None) -> Executor:
    """A new InterpreterPoolExecutor; each subinterpreter gets this interpreter's ``sys.path``.

    A subinterpreter starts with the path the interpreter was configured with, which need not hold
    the folder the suite runs from (pytest adds it at run time): without it, the task functions
    could not be unpickled there.
    """
    pool_class: Any = concurrent.futures.InterpreterPoolExecutor  # type: ignore[attr-defined]
    return pool_class(
        max_workers=workers,
        thread_name_prefix="poolbench-interp",
        initializer=overhead.extend_path,
        initargs=(tuple(sys.path),),
    )


def probe_imports(modules: Iterable[str]) -> dict[str, str | None]:
    """Import each module in a fresh subinterpreter; None where it imported, else the error's line.

    Empty without InterpreterPoolExecutor. A module that crashes the subinterpreter would crash
    the suite, but importing is what every worker does anyway; no such module is known.
    """
    names = sorted(set(modules))
    if not names or not available():
        return {}
    pool = make(1)
    try:
        found = {name: pool.submit(overhead.import_error, name).result(timeout=PROBE_TIMEOUT_S) for name in names}
    except Exception as exc:  # the probe itself failed (its task could not run there): nothing counts as imported
        pool.shutdown(wait=False, cancel_futures=True)
        return dict.fromkeys(names, f"the import probe failed: {type(exc).__name__}: {exc}".splitlines()[0])
    pool.shutdown(wait=True)
    return found


def runnable(needs: Iterable[str], imports: Mapping[str, str | None] | None) -> str | None:
    """None when every module in ``needs`` imported in a subinterpreter; else why not (one phrase)."""
    for name in needs:
        error = (imports or {}).get(name, "not probed")
        if error is not None:
            return f"{name} does not import in a subinterpreter ({error})"
    return None


def _leaves_out(cfg: SuiteConfig, workload: str) -> str | None:
    return runnable(get(workload).needs, cfg.state("interpreter"))


def _prepare(cfg: SuiteConfig, _state: Any) -> dict[str, str | None]:
    """Its state: which workloads' modules a subinterpreter can load here (asked once, at start)."""
    needs = [m for name in cfg.workloads for m in get(name).needs]
    return probe_imports(needs)


def machine_info(cfg: SuiteConfig) -> dict[str, Any] | None:
    """machine_info["poolbench"]["interpreter"]: what a subinterpreter could import, and the
    workloads the interpreter pool left out for it; None when that pool did not run."""
    if "interpreter" not in cfg.executors:
        return None
    left = {} if "scaling" not in cfg.cases else {w: why for w in cfg.workloads if (why := _leaves_out(cfg, w))}
    return {"imports": dict(cfg.state("interpreter") or {}), "left_out": left}


BACKEND = Backend(
    make=lambda workers, _variant, _setup, _state: make(workers),
    missing=missing_line,
    leaves_out=_leaves_out,
    prepare=_prepare,
    machine_info=machine_info,
)
