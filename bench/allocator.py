"""The allocator policy: glibc malloc's knobs, set on purpose in the suite and in every worker, and recorded.

A task that builds a large buffer (a NumPy array, ``data + digest``, a decompressed block) asks
malloc for it and frees it when the task ends. Where that memory comes from decides whether the
*next* task pays a page fault for every 4 KiB page it touches, and glibc decides differently for
the main thread and for a pool thread, so the allocator is a condition of the measurement like the
BLAS thread count (shared/DESIGN.md). Three policies (``--malloc``):

``neutral`` (the default): no executor pays page faults per task that a long-running program
    would not. Once warm, every executor (serial in the main thread, pool threads, process workers
    under fork, forkserver and spawn, subinterpreters, dask workers) reuses the memory it already
    has. Three knobs, each for a reason measured here (docs/guide.md, "The allocator is a condition"):

    * ``M_MMAP_THRESHOLD`` = 64 MiB, the largest block a pool thread's arena can hold (glibc's
      ``HEAP_MAX_SIZE``, 2 × its largest dynamic threshold on 64-bit): a buffer below it comes from
      the heap, not from a fresh ``mmap`` that is unmapped again on free;
    * ``M_TRIM_THRESHOLD`` = 1 GiB: the main arena does not give the top of its heap back to the
      kernel after each task (which the serial side then faults back in);
    * ``M_TOP_PAD`` = 64 MiB: a pool thread's spare heap is neither shrunk nor deleted when a task
      frees it (glibc deletes a non-main heap that becomes empty unless this much padding is asked
      for; without it a 4 M-element NumPy chain took 1 977 faults per task on a pool thread and
      none in the main thread).

    Buffers of 64 MiB and more are still mapped and unmapped per task, in every executor alike.

    And two conditions of the pages themselves, so that no executor's tasks run on memory the suite's
    history made better or worse than a fresh program's:
    * transparent huge pages off for the suite and every process it starts (:func:`huge_pages`). The
      kernel backs a region with 2 MiB pages only where asked (``madvise``, which NumPy does for
      arrays from 4 MiB) and only for aligned 2 MiB spans inside it, so how much of an array gets them
      depends on the history of the heap it came from. Measured on a 2-vCPU Intel Xeon guest (THP
      ``madvise``), in a run of every workload at one worker: each 5.4 MiB ``a @ a`` of
      ``numpy_matmul`` lay wholly on huge pages in the suite's thread (1 407 of 1 407 pages, read from
      ``/proc/self/pagemap`` and ``/proc/kpageflags``), on 512 of them in a pool's thread or a process
      worker, and the one-worker thread pool read 0.95-0.97× serial (0.99-1.01× in a run of that
      workload alone); with them off (and the trim below), 0 pages on every side and 0.99-1.00× in
      three runs (docs/guide.md has the table). A forked worker, which splits each huge page of its
      parent's heap as it writes to it, is no longer a case apart. The price, alike on every side:
      a serial ``numpy_matmul`` or ``numpy_ufunc`` task about 4-5 % longer.
    * the heap's free pages given back (:func:`fresh_heap`, glibc's ``malloc_trim(0)``, every arena):
      by a process worker once before its first task, and by the suite's own process before every
      case, so the case's warm-up faults in fresh pages on the serial side as in a new worker. Without
      it, the suite's heap, used by every case before, ran ``ufunc_chain`` slower than a fresh worker
      did: the one-worker process pool read 1.01-1.02× serial in six runs (one named it a defect of
      the measurement itself), 0.97-1.00× in five with it; a plain program reads 0.96-0.97×.

``fixed``: every buffer of 128 KiB or more is a fresh ``mmap``, faulted in page by page and
    unmapped on free, in every executor alike (the threshold pinned at glibc's start-up value,
    which turns off its dynamic threshold). It models the worst case for threads: their faults
    share one address space and take turns, which processes do not. poolbench's default before
    schema 4.

``dynamic``: glibc as it ships, untouched. The main thread's heap is trimmed and regrown around
    each large buffer while pool threads keep theirs, so the serial baseline pays faults that a
    pool does not and thread speedups can exceed the CPU count.

Set through ``mallopt`` in this process and in each worker's initializer, not ``GLIBC_TUNABLES``:
the tunables are read once when a process starts, so they could not reach the suite's own process
(started by the user), and measured here the same three settings through either gave 0 faults per
task in every executor. A ``GLIBC_TUNABLES`` the user sets is recorded with the run and still acts
on anything the policy leaves alone (``dynamic``).

A free-threaded CPython (3.13t) allocates its objects, ``bytes`` among them, with its own
mimalloc (PEP 703), which these knobs do not reach; NumPy's arrays still come from malloc.

On another C library (musl, as in Alpine images) nothing is set: musl's ``mallopt`` does nothing,
and its allocator maps buffers above about 128 KiB fresh and unmaps them on free, like ``fixed``.
The run records ``applied: false`` with the reason, and the report cautions.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

POLICIES = ("neutral", "fixed", "dynamic")
DEFAULT = "neutral"

# mallopt parameter numbers, from glibc's malloc.h.
_PARAMS = MappingProxyType({"trim_threshold": -1, "top_pad": -2, "mmap_threshold": -3})

KIB, MIB = 1024, 1024 * 1024
#: glibc's HEAP_MAX_SIZE: 2 × DEFAULT_MMAP_THRESHOLD_MAX (4 MiB × sizeof(long) on 64-bit, 512 KiB on 32-bit).
HEAP_MAX = 2 * (4 * MIB * ctypes.sizeof(ctypes.c_long) if ctypes.sizeof(ctypes.c_long) >= 8 else 512 * KIB)
#: glibc's start-up values of the three knobs (DEFAULT_MMAP_THRESHOLD_MIN, DEFAULT_TRIM_THRESHOLD, DEFAULT_TOP_PAD).
GLIBC_START = 128 * KIB

#: What each policy sets; every knob is set, so that switching policy in one process leaves no
#: setting of the previous one behind (``dynamic`` sets nothing: glibc's dynamic threshold cannot be
#: turned back on once a knob is set, so it is only honoured in a process where none was).
SETTINGS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "neutral": MappingProxyType({"mmap_threshold": HEAP_MAX, "trim_threshold": 1024 * MIB, "top_pad": HEAP_MAX}),
        "fixed": MappingProxyType(
            {"mmap_threshold": GLIBC_START, "trim_threshold": GLIBC_START, "top_pad": GLIBC_START}
        ),
        "dynamic": MappingProxyType({}),
    }
)

#: What each policy models, for ``--help``, machine_info and the report.
MODELS: Mapping[str, str] = MappingProxyType(
    {
        "neutral": (
            "a warm long-running program: every executor reuses its memory, no page faults per task; "
            "transparent huge pages off in the suite and its workers, so no executor's arrays get more of them"
        ),
        "fixed": "every buffer >= 128 KiB mapped fresh and faulted in per task, in every executor alike",
        "dynamic": "glibc as it ships: the main thread trims and refaults its heap, pool threads keep theirs",
    }
)


def libc() -> tuple[str, str]:
    """The C library and its version as Python sees them: ``("glibc", "2.36")``, or ``("", "")`` (musl, others)."""
    name, version = platform.libc_ver()
    return name, version


def apply(policy: str) -> dict[str, Any]:
    """Set ``policy``'s knobs in this process; returns what was done (machine_info ``malloc``).

    ``applied`` is False where the C library is not glibc (nothing is set), or where a knob was
    refused (``mallopt`` returned 0). Safe to call in any thread: the settings are the process's.
    """
    if policy not in SETTINGS:
        raise ValueError(f"unknown malloc policy {policy!r}; choose one of {', '.join(POLICIES)}")
    name, version = libc()
    wanted = dict(SETTINGS[policy])
    done: dict[str, Any] = {
        "policy": policy,
        "models": MODELS[policy],
        "libc": f"{name} {version}".strip() or "not glibc",
        "settings": wanted,
        "applied": False,
        "note": None,
        "huge_pages": huge_pages(off=policy == "neutral"),
    }
    if name != "glibc":
        done["note"] = (
            "not glibc (musl or another C library): nothing was set, and that library's own allocator ran; "
            "musl maps buffers above about 128 KiB fresh and unmaps them on free, like --malloc fixed"
        )
        return done
    if not wanted:
        done["applied"] = True
        return done
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        done["note"] = "glibc's mallopt could not be found: nothing was set"
        return done
    refused = [knob for knob, value in wanted.items() if mallopt(_PARAMS[knob], value) != 1]
    done["applied"] = not refused
    if refused:
        done["note"] = f"mallopt refused {', '.join(refused)}"
    return done


#: prctl options from linux/prctl.h: transparent huge pages off for this process and its children.
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"


def host_huge_pages() -> str:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), or ``none`` where it has none."""
    try:
        with open(THP_MODE_FILE) as f:
            text = f.read()
    except OSError:
        return "none"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "none"


def huge_pages(off: bool | None) -> dict[str, Any]:
    """Turn transparent huge pages off for this process (``off``, the ``neutral`` policy) or back to the host's way
    (``False``), or only read what is in force (``None``: what a worker reports; picklable by reference).

    ``prctl(PR_SET_THP_DISABLE)`` is the process's: every thread, and every child (fork keeps it,
    exec too), so process workers, spawned or forked, and a local dask cluster's workers run under it.
    Pages that were huge before stay so; the suite sets it before its first case. Returns ``host``
    (the kernel's mode), ``off`` (whether this process has them off now) and ``note`` (why not, where
    asked and refused)."""
    host = host_huge_pages()
    done: dict[str, Any] = {"host": host, "off": False, "note": None}
    if host == "none":
        return done
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        done["note"] = "prctl could not be found: huge pages left as the host sets them"
        return done
    # Set both ways: a policy switched to leaves nothing of the previous one behind.
    if off is not None and prctl(PR_SET_THP_DISABLE, int(off), 0, 0, 0) != 0:
        done["note"] = f"prctl(PR_SET_THP_DISABLE, {int(off)}) refused ({os.strerror(ctypes.get_errno())})"
    done["off"] = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1
    return done


def fresh_heap() -> bool:
    """Give every free page of this process's heaps, every arena's, back to the kernel (glibc ``malloc_trim(0)``):
    the pages its tasks then touch are fresh, not ones an earlier case (or, in a forked worker, its
    parent) left (the ``neutral`` policy, above). True where it ran (glibc only)."""
    if libc()[0] != "glibc":
        return False
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def pinned_threshold(done: Mapping[str, Any]) -> int | None:
    """The mmap threshold in force after :func:`apply` (None: glibc's dynamic one, or not glibc)."""
    if not done.get("applied"):
        return None
    value = (done.get("settings") or {}).get("mmap_threshold")
    return int(value) if value is not None else None


def refaults(n_bytes: int) -> int:
    """Minor page faults of the calling thread for a buffer of ``n_bytes`` made again after one was freed.

    The steady state the policy is about: a task's buffer made, freed, and made again by the next
    task. The buffer is written in full (``bytes * n``, not calloc, whose fresh pages need no
    touching), so every page it occupies is touched. Runs in any worker (picklable by reference).
    """
    first = b"\x01" * n_bytes
    del first
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    again = b"\x01" * n_bytes
    after = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    del again
    return after - before
