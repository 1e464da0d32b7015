"""``--case-timeout``: a case still running after its limit fails, and its pools are stopped on the way out.

The limit is a SIGALRM timer in the main thread: the exception it raises unwinds the case like any
other, through the cases' ``finally`` blocks that terminate their pools (bench/executors.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CaseTimeout(Exception):
    """A case ran past --case-timeout."""


@contextmanager
def case_deadline(limit: float | None) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread if the block runs past ``limit`` seconds (0/None: no limit)."""
    if not limit or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case ran past --case-timeout {limit:g} s; its pool's workers were stopped")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
