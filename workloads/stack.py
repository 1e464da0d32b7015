"""Each task at the next of a cycle of C-stack offsets, on both sides of a speedup.

How fast the same Python code runs can depend on where its C stack lies in memory: measured on a
2-vCPU Intel Xeon guest (2026-12-07, Python 3.11.7, ``count_primes``), in 14 of 82 processes the
worker thread of a one-thread pool ran every task 1.05-1.11x as long as the suite's own
thread did, for the whole run; one C frame deeper in the same thread the same task ran at the main
thread's speed, and shifting the stack about 140 bytes at a time moved a task in and out of a
slow window 1-1.5 KiB wide. A new thread's stack started on a 2 MiB boundary in every process there,
so its tasks ran at the same place within a page, while the main thread's stack starts at a random
one; a one-thread pool read 0.93-0.94x "of serial" in those runs: a layout lottery, not a cost of
the pool (the kind of effect Mytkowicz et al., "Producing wrong data without doing anything
obviously wrong!" (ASPLOS 2009), measured with the size of the environment; pyperf answers it with
many processes, STABILIZER by moving the stack at random).

:class:`Rotated` runs each call at the next of :data:`OFFSETS` stack positions spread over
:data:`SPAN_BYTES` (the period of a cache's set index and of 4 KiB aliasing), in a scrambled order
so that a few calls in a row are spread over the span. The serial reference and the pool's tasks
go through it alike (bench/harness.py), so a slow window costs both sides the same share of their
tasks, and a run cannot draw a layout that favours one side.

The shift is a call through ctypes with padding arguments passed by value (the stack moves
by twice their size: the arguments are copied once by the call and once by the callback), with the
GIL held throughout (``PYFUNCTYPE``). Where that cannot run (no ctypes, or a subinterpreter, whose
threads a ctypes callback would hand to the main interpreter) the call is a plain one.

The padding is cut into :data:`PADS` arguments of at most :data:`MAX_PAD_BYTES` each, because the
callback gets a Python copy of every argument, and ctypes takes a copy's buffer from Python's
small-object allocator up to 512 bytes and from ``malloc`` above. One argument of up to 2 KiB was a
``malloc`` in the task's thread for every task, held while the task ran: measured on a 2-vCPU Intel
Xeon guest (2026-12-07, Python 3.11.7, NumPy 2.4.6, ``ufunc_chain`` at 1 500 000 elements, faults of
the task's thread from ``getrusage(RUSAGE_THREAD)``, evidence/task_faults.py four times), a dask worker's
thread grew its malloc arena by one 12 MiB array in its second task and again in its third (2 930 faults
each, 8 of 8 workers); with the padding cut no worker grew (0 of 8), with a plain call 3 of 8 grew once
(a new arena's own one-off growth, docs/guide.md).
The suite measures the allocator as a condition (docs/guide.md); its own call must not move it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

#: The stack span the offsets cover, in bytes.
SPAN_BYTES = 4096
#: How many offsets the span is cut into (64 bytes apart: one cache line).
OFFSETS = 64
#: Each call takes the offset ``(n × STRIDE) mod OFFSETS``: coprime to OFFSETS, so every offset comes once
#: in each OFFSETS calls, and consecutive calls land far apart.
STRIDE = 27
#: The smallest padding argument (bytes); ctypes passes smaller structures in registers.
_MIN_PAD = 24
#: Padding arguments per call (the same number at every offset, so only their sizes move the stack).
PADS = 5
#: The largest padding argument: a callback's copy of it stays in Python's small-object allocator.
MAX_PAD_BYTES = 512

_turn = itertools.count()
_calls: dict[int, tuple[Any, tuple[Any, ...]]] | None = None
_usable: bool | None = None


class Rotated:
    """``func`` called at the next stack offset of this process's cycle; picklable where ``func`` is."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __call__(self, arg: Any) -> Any:
        return call_at_next_offset(self.func, arg)

    def __repr__(self) -> str:
        return f"Rotated({getattr(self.func, '__qualname__', self.func)!r})"


def usable() -> bool:
    """Whether calls can be moved along the stack in this interpreter (decided once per process)."""
    global _usable
    if _usable is None:
        _usable = _main_interpreter() and _build() is not None
    return _usable


def offset_bytes(turn: int) -> int:
    """How far below the plain call's stack the call numbered ``turn`` runs (bytes, within the span)."""
    return (turn * STRIDE) % OFFSETS * (SPAN_BYTES // OFFSETS)


def call_at_next_offset(func: Callable[[Any], Any], arg: Any) -> Any:
    """``func(arg)``, run at the next offset of the cycle; its answer, or its exception raised here."""
    if not usable():
        return func(arg)
    assert _calls is not None
    call, pads = _calls[offset_bytes(next(_turn))]
    slot = [func, arg, None, None]
    call(*pads, slot)
    if slot[3] is not None:
        error, slot[3] = slot[3], None
        raise error
    return slot[2]


def _main_interpreter() -> bool:
    """Whether this is the process's main interpreter (a subinterpreter's threads cannot run ctypes callbacks).

    The suite runs subinterpreters only through InterpreterPoolExecutor (Python 3.14+), whose
    ``concurrent.interpreters`` says which interpreter this is; before 3.14 there is only the main one.
    """
    try:
        from concurrent import interpreters  # noqa: PLC0415  (3.14+)
    except ImportError:
        return True
    try:
        return interpreters.get_current().id == interpreters.get_main().id
    except Exception:  # an API this code does not know: do not move the stack
        return False


def pad_sizes(shift: int) -> list[int]:
    """The padding arguments' sizes (bytes) that move a call's stack by ``shift`` bytes: together
    :data:`PADS` × the smallest plus half the shift, in steps of 16 (each copy is aligned to 16 bytes:
    smaller steps moved the stack unevenly), each at most :data:`MAX_PAD_BYTES`."""
    steps = shift // 2 // 16
    return [_MIN_PAD + 16 * (steps // PADS + (1 if i < steps % PADS else 0)) for i in range(PADS)]


def _trampoline(*args: Any) -> int:
    """The callback: run the task, keep its answer or its exception (a ctypes callback cannot raise).
    Its arguments are the padding, then the slot."""
    slot = args[-1]
    try:
        slot[2] = slot[0](slot[1])
    except BaseException as exc:  # KeyboardInterrupt too: raised again by the caller
        slot[3] = exc
    return 0


def _build() -> dict[int, tuple[Any, Any]] | None:
    """One ctypes call per offset, padded to move the callback's stack by that many bytes; None without ctypes."""
    global _calls
    if _calls is not None:
        return _calls
    try:
        import ctypes  # noqa: PLC0415  (only where the stack is moved)

        calls = {}
        pad_types: dict[int, Any] = {}
        for i in range(OFFSETS):
            shift = i * (SPAN_BYTES // OFFSETS)
            types = [
                pad_types.setdefault(
                    size, type(f"Pad{size}", (ctypes.Structure,), {"_fields_": [("b", ctypes.c_char * size)]})
                )
                for size in pad_sizes(shift)  # the stack moves by twice the padding
            ]
            proto = ctypes.PYFUNCTYPE(ctypes.c_int, *types, ctypes.py_object)
            calls[shift] = (proto(_trampoline), tuple(t() for t in types))
    except (ImportError, OSError, TypeError, AttributeError):
        return None
    _calls = calls
    return _calls
