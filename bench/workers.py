"""Worker set-up: what every worker process the suite starts does before its first task.

One module for every kind of worker (a process pool's, through its initializer; a dask worker's,
through ``Client.run``), so that both run under the same conditions as the suite's own process:

* BLAS capped at the run's ``--blas-threads`` (threadpoolctl), so workers × BLAS threads is chosen,
  not inherited;
* the allocator policy of ``--malloc`` (bench/allocator.py): forkserver and spawn workers, and
  dask's, start with glibc's own settings;
* the worker's start-up heap (its imports, NumPy's among them) frozen out of garbage collection
  (:func:`freeze_heap`), as the suite freezes its own before every case: a collection traverses
  what the tasks made, in a worker as in the suite's thread (common/reference.py);
* (process-pool workers) SIGINT ignored and the worker's life tied to the suite's: a terminal's
  Ctrl-C reaches the whole process group, and the suite stops its workers itself
  (bench/stopping.py). A dask worker's signals belong to its nanny.

Imports only the standard library, threadpoolctl and bench.allocator at module level, so a worker
importing it by name pulls in nothing of the suite's measuring code.
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from bench import allocator

# Held for the life of a worker process: threadpoolctl applies the limit when the limiter is
# created; keeping a reference documents that it must stay in force.
_BLAS_LIMIT: Any = None

_PR_SET_PDEATHSIG = 1  # prctl option, from linux/prctl.h


@dataclass(frozen=True)
class Setup:
    """The conditions a worker runs under: BLAS threads, allocator policy (None: leave it), the suite's pid."""

    blas_threads: int
    malloc: str | None = None
    owner_pid: int | None = None


def apply_limits(setup: Setup) -> None:
    """Set the allocator policy and cap BLAS in this process.

    NumPy is imported first so that its BLAS library is loaded and threadpoolctl can find it.
    """
    global _BLAS_LIMIT
    if setup.malloc is not None:
        allocator.apply(setup.malloc)  # process-wide: every thread of the worker allocates under it
    import numpy  # noqa: F401, PLC0415  (loads the BLAS library that the limit applies to)

    # Only where the count differs: a forked worker has its parent's, and setting it after the fork would
    # start an OpenBLAS thread that spins for about 0.1 s beside the pool's first probe
    # (bench/executors.py ``blas_limit_here``).
    if not blas_runs(setup.blas_threads):
        _BLAS_LIMIT = threadpool_limits(limits=setup.blas_threads, user_api="blas")
    freeze_heap()


def start_threading() -> None:
    """Start and join one thread, once every workload's code is loaded and before anything is frozen or timed.

    A free-threaded CPython 3.13 makes module-level functions, code objects, module dictionaries and
    classes immortal when the first thread starts, so that threads running them do not contend on
    their reference counts; code loaded after that, or frozen out of the collector's heap before it
    (``gc.freeze``), stays mortal (measured in the 3.13t image: a workload file's code objects
    reported a reference count of 4 in the pool's threads, 2**32 − 1 when a thread had started after
    loading it), and a loop that creates a closure or calls a method then ran 0.76-0.86× on two
    threads where a plain program, which imports its modules and then starts threads, gets 1.5-1.7×.
    Harmless on a build with the GIL.
    """
    thread = threading.Thread(target=lambda: None, name="poolbench-start")
    thread.start()
    thread.join()


def contended_code(funcs: dict[str, Any]) -> list[str]:
    """The names in ``funcs`` whose code object is not immortal on a free-threaded build (empty elsewhere):
    its threads contend on its reference count where a plain program's would not (:func:`start_threading`)."""
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return []
    return [name for name, func in funcs.items() if sys.getrefcount(getattr(func, "__code__", func)) < 2**30]


def freeze_heap() -> int:
    """Collect, then move every object that survived into the permanent generation; returns how many are frozen.

    Later collections skip frozen objects, so their cost is that of what was made since: a task's own
    garbage, not the heap of whoever runs it. A full collection in the suite's process (pytest, NumPy,
    matplotlib loaded) took about 20 ms on a 2-vCPU Intel host (79 k objects; 0.3 ms in a bare
    interpreter, shared/ANCHORS.md): a whole task, which landed on whichever single-task probe or
    round happened to trigger it. Frozen objects are never freed; what the suite keeps between
    cases (results, statistics) is small.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def init_process_worker(blas_threads: int, malloc: str | None, owner_pid: int | None = None) -> None:
    """Process-pool initializer: the limits of :func:`apply_limits`, SIGINT ignored, life tied to the suite's.

    Takes plain arguments (``initargs``), as an initializer must be picklable under spawn.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if owner_pid is not None:
        die_with_owner(owner_pid)
    apply_limits(Setup(blas_threads, malloc, owner_pid))
    if malloc == "neutral":
        allocator.fresh_heap()  # a forked worker's heap is its parent's, copy-on-write: its own pages from here


def init_cluster_worker(blas_threads: int, malloc: str | None) -> int | None:
    """In a worker of a cluster the suite only connects to (run by the cluster's client, not in the worker's
    main thread; its signals belong to whoever started it): the limits of :func:`apply_limits`; returns
    the BLAS thread count now in force."""
    apply_limits(Setup(blas_threads, malloc))
    return blas_threads_here()


def blas_runs(threads: int) -> bool:
    """Whether a BLAS library is loaded here and every one runs ``threads`` threads (reading the counts starts
    no thread). None loaded yet: False, so a cap is set again once one is."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return bool(counts) and all(n == threads for n in counts)


def blas_threads_here(_: Any = None) -> int | None:
    """The BLAS thread count in force in the calling process (None: no BLAS library loaded)."""
    import numpy  # noqa: F401, PLC0415

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts) if counts else None


def die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG).

    A pool worker blocked on its task queue never learns that the suite was killed (SIGKILL, an
    out-of-memory kill); without this it would live on as an orphan. False where not Linux.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        return False


def _exit_when_gone(pid: int) -> None:
    """Block until process ``pid`` has ended, then end this process at once."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):  # no pidfd (not Linux, or a kernel before 5.3): ask twice a second
        while _alive(pid):
            time.sleep(0.5)
        os._exit(1)
    select.select([fd], [], [])  # a pidfd turns readable when its process exits
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True


def die_with_owner(pid: int) -> None:
    """End this worker when the suite's process ``pid`` ends, whoever this worker's parent is.

    :func:`die_with_parent` alone is not enough under ``forkserver``: the worker's parent is the
    fork server, which lives on after the suite is SIGKILLed because every worker it forked holds
    the server's "alive" pipe open, and every worker holds its pool's call queue open at both
    ends, so no worker ever reads EOF. A daemon thread waits on a pidfd of the suite (no polling,
    no CPU) and exits the process when the suite is gone.
    """
    threading.Thread(target=_exit_when_gone, args=(pid,), name="poolbench-owner-watch", daemon=True).start()
