"""Tiny tasks that measure the pool itself rather than the work: dispatch, payload transfer, start-up.

Module-level functions only, so they pickle by reference under every start method.
"""

from __future__ import annotations

import os
import time


def noop(x: int) -> int:
    """Return the argument: all of the task's cost is the executor's (submit, queue, pickle, wake-up)."""
    return x


def echo(payload: bytes) -> bytes:
    """Return the payload: a process pool pickles it both ways, a thread pool passes a reference."""
    return payload


def whoami(hold_s: float) -> int:
    """Hold the worker for ``hold_s`` seconds and return its process id.

    Submitting one of these per worker makes every worker of a pool start and take a task, so a
    pool counts as warm (all workers spawned, modules imported) before anything is timed.
    """
    time.sleep(hold_s)
    return os.getpid()


def extend_path(entries: tuple[str, ...]) -> None:
    """Interpreter-pool initializer: add the suite's import path (bench.interpreters.make), then freeze
    the subinterpreter's start-up heap out of garbage collection, as every worker does (bench/workers.py
    ``freeze_heap``; a subinterpreter collects its own heap)."""
    import gc  # noqa: PLC0415
    import sys  # noqa: PLC0415

    sys.path[:0] = [e for e in entries if e not in sys.path]
    gc.collect()
    gc.freeze()


def import_error(module: str) -> str | None:
    """Import ``module`` here; None if it imported, else the exception as one line."""
    import importlib  # noqa: PLC0415

    try:
        importlib.import_module(module)
    except Exception as exc:  # what the import gave is the finding
        root: BaseException = exc
        while (root.__cause__ or root.__context__) is not None:  # NumPy wraps the real cause in advice
            root = root.__cause__ or root.__context__  # type: ignore[assignment]
        lines = [line.strip() for line in str(root).splitlines() if line.strip()]
        return f"{type(root).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return None


def import_files_here(paths: tuple[str, ...]) -> list[tuple[str, str | None, str | None]]:
    """Import each workload file in this worker as the run's process did; (path, problem, sha256) each.

    A worker that starts fresh (spawn, forkserver, a dask worker, a container) imports a user's
    task function by its module's name when the first task arrives; this does it first, so that a
    file that cannot be found or imported there is named in one line before any case. ``problem``
    is None when the file imported; ``sha256`` is that of the bytes this worker sees.
    """
    import hashlib  # noqa: PLC0415
    import importlib  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import traceback  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    found: list[tuple[str, str | None, str | None]] = []
    for raw in paths:
        path = Path(raw)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            found.append((raw, f"cannot be read there ({exc.strerror or exc})", None))
            continue
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))  # as the run's process does (workloads.user)
        try:
            module = importlib.import_module(path.stem)
        except BaseException as exc:  # whatever importing it raised is the finding
            tb = traceback.extract_tb(exc.__traceback__)
            line = next((f.lineno for f in reversed(tb) if Path(f.filename) == path), None)
            at = f" (line {line})" if line else ""
            found.append((raw, f"importing it raised {type(exc).__name__}: {exc}{at}".splitlines()[0], digest))
            continue
        where = Path(getattr(module, "__file__", "") or "")
        if where.resolve() != path.resolve():
            found.append((raw, f"its module name {path.stem!r} is taken there by {where}", digest))
            continue
        found.append((raw, None, digest))
    return found
