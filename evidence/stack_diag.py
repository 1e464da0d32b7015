"""The diagnosis of the lone thread's slow runs (docs/guide.md, "Against the physical limits"), as it was run.

``count_primes`` that logs, per task, its own thread CPU time, the CPU it ran on and its thread's
stack, to ``$STACKDIAG_DIR/log-<pid>.txt`` (default /tmp/tl). ``ROTATE=1`` runs each task through a
ctypes call padded to the next of 64 stack offsets (the method workloads/stack.py adopted);
``DEPTH=1`` calls it 0-3 C frames deeper in turn (the last field of a line says which).
evidence/stack_diag.sh has the loops; evidence/stacklog.py is the instrument of the topic ``stack``.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
import time

from workloads import Size, Workload
from workloads.cpu_bound import count_primes

_libc = ctypes.CDLL(None)
_self = _libc.pthread_self
_self.restype = ctypes.c_ulong


def _stack():
    attr = ctypes.create_string_buffer(128)
    if _libc.pthread_getattr_np(ctypes.c_ulong(_self()), attr) != 0:
        return (0, 0)
    addr = ctypes.c_void_p()
    size = ctypes.c_size_t()
    _libc.pthread_attr_getstack(attr, ctypes.byref(addr), ctypes.byref(size))
    _libc.pthread_attr_destroy(attr)
    return (addr.value or 0, size.value)


def _cpu():
    with open("/proc/thread-self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


_turn = itertools.count()


def _at_depth(k, limit):
    if k == 0:
        return count_primes(limit)
    out = []
    list(map(lambda j: out.append(_at_depth(j, limit)), [k - 1]))
    return out[0]


_PADS = {}


def _padded(j, limit):
    if j not in _PADS:
        n = 16 + 32 * j
        P = type(f"Pad{n}", (ctypes.Structure,), {"_fields_": [("b", ctypes.c_char * n)]})
        _PADS[j] = (ctypes.PYFUNCTYPE(ctypes.py_object, P, ctypes.py_object)(lambda _p, a: count_primes(a)), P())
    c, pad = _PADS[j]
    return c(pad, limit)


ROTATE = os.environ.get("ROTATE") == "1"
#: ``DEPTH=1``: each task one, two, three or no C frames deeper (through ``map``), in turn.
DEPTH = os.environ.get("DEPTH") == "1"


def primelog(limit: int) -> int:
    k = (next(_turn) * 27) % 64
    c0 = _cpu()
    t0 = time.thread_time()
    w0 = time.perf_counter()
    r = _padded(k, limit) if ROTATE else _at_depth(k % 4, limit) if DEPTH else count_primes(limit)
    t1 = time.thread_time()
    w1 = time.perf_counter()
    c1 = _cpu()
    st = _stack()
    ctypes.c_int(0)  # as measured: one more small ctypes object per task
    with open(os.path.join(os.environ.get("STACKDIAG_DIR", "/tmp/tl"), f"log-{os.getpid()}.txt"), "a") as f:
        f.write(
            f"{time.time():.4f} {os.getpid()} {threading.get_native_id()} {threading.current_thread().name} "
            f"{c0} {c1} {t1 - t0:.6f} {w1 - w0:.6f} {st[0]:#x} {st[1]} {id(threading.current_thread()):#x} {k}\n"
        )
    return r


def check(limit, result):
    from workloads.registry import primes_below  # noqa: PLC0415

    return result == primes_below(limit)


WORKLOADS = [
    Workload(
        name="primelog",
        func=primelog,
        kind="cpu-python",
        gil="holds",
        sizes={"quick": Size(8_000, 8, 1.5), "default": Size(25_000, 16, 1.5), "full": Size(50_000, 32, 1.5)},
        check=check,
        models="count_primes with a log",
    )
]
