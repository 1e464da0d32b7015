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
