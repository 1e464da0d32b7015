"""Tasks that fail on purpose: the crash-isolation case, and fault injection in the suite's own tests.

Module-level functions, so they pickle by reference under every start method. Each kills or stalls
whatever process or thread runs it; the harness only ever runs the killing ones inside a child
process of its own (bench/crash_probe.py), never in the suite's process.
"""

from __future__ import annotations

import ctypes
import os
import time


def exit_now(code: int) -> None:
    """``os._exit``: the process ends at once, no cleanup, no exception to catch."""
    os._exit(code)


def abort_now(_: object = None) -> None:
    """``abort()``: SIGABRT, as a failed assertion in C code or a corrupted heap would raise."""
    os.abort()


def segfault_now(_: object = None) -> None:
    """Read address 0: SIGSEGV, as a crash in a C extension would raise."""
    ctypes.string_at(0)


def hog(mib: int, _: object = None) -> int:
    """Allocate and touch ``mib`` MiB: a task that runs over its container's memory limit."""
    block = bytearray(mib * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


CRASHES = {"exit": exit_now, "abort": abort_now, "segfault": segfault_now}


def hang_forever(_: object = None) -> None:
    """Block for an hour, whatever the task's argument: stands in for a task that never returns."""
    time.sleep(3600)
