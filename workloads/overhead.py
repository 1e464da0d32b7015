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
    """Interpreter-pool initializer: add the suite's import path (bench.interpreters.make)."""
    import sys  # noqa: PLC0415

    sys.path[:0] = [e for e in entries if e not in sys.path]


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
