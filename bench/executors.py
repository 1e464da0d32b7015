"""The executor factory: one way to build every pool the suite measures, and to warm and close it.

``serial`` is a no-pool executor that runs each task in the calling thread: the baseline every
speedup is divided by. ``thread``, ``interpreter`` (Python 3.14+: bench/interpreters.py) and
``process`` are the standard library's pools; a process pool
gets an explicit start method (never the implicit global default) and an initializer that fixes
the number of BLAS threads in each worker, so that workers × BLAS threads is chosen, not inherited.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from bench import allocator, interpreters, stopping
from bench.cluster import DaskExecutor
from workloads import overhead

# Held for the life of a worker process: threadpoolctl applies the limit when the limiter is
# created; keeping a reference documents that it must stay in force.
_WORKER_BLAS_LIMIT: Any = None

#: How long each warm-up task occupies its worker. Long enough that a task submitted to a busy
#: pool makes it start another worker (spawn and forkserver start workers lazily, one per submit
#: that finds no idle worker), short enough to cost little per case.
WARMUP_HOLD_S = 0.02

#: Executors whose tasks run in other processes: BLAS is limited there, not around the batch here.
OUT_OF_PROCESS = ("process", "dask")


class SerialExecutor(Executor):
    """Runs every task at once in the calling thread: no pool, no queue, no pickling."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the future carries it, as a pool's would
            future.set_exception(exc)
        return future

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        return iter([fn(*args) for args in zip(*iterables, strict=False)])


_PR_SET_PDEATHSIG = 1  # prctl option, from linux/prctl.h


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


def init_worker(blas_threads: int, malloc: str | None, owner_pid: int | None = None) -> None:
    """Process-pool initializer: cap BLAS at ``blas_threads`` and set the allocator policy, as in the parent.

    Also ties the worker's life to its parent's (:func:`die_with_parent`) and to the suite's
    (``owner_pid``, :func:`die_with_owner`), and ignores SIGINT: a terminal's Ctrl-C reaches the
    whole process group, and the suite stops its workers itself (bench/stopping.py). NumPy is
    imported first so that its BLAS library is loaded and threadpoolctl can find it.
    """
    global _WORKER_BLAS_LIMIT
    import numpy  # noqa: F401, PLC0415  (loads the BLAS library that the limit applies to)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if owner_pid is not None:
        die_with_owner(owner_pid)
    if malloc is not None:
        allocator.apply(malloc)  # forkserver and spawn workers start with glibc's own settings
    _WORKER_BLAS_LIMIT = threadpool_limits(limits=blas_threads, user_api="blas")


def blas_threads_here(_: Any = None) -> int | None:
    """The BLAS thread count in force in the calling process (None: no BLAS library loaded)."""
    import numpy  # noqa: F401, PLC0415

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts) if counts else None


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of every BLAS/OpenMP library loaded here (for machine_info)."""
    import numpy  # noqa: F401, PLC0415

    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def executor_defaults() -> dict[str, Any]:
    """What the standard executors choose when given no arguments, read off real instances here.

    Neither constructor starts a worker, so this costs nothing. Both size for the CPUs the OS
    shows (cpu_count, or process_cpu_count from Python 3.13), never for a cgroup quota.
    """
    threads = ThreadPoolExecutor()
    processes = ProcessPoolExecutor()
    subinterpreters = interpreters.make(None) if interpreters.available() else None
    try:
        found = {
            "thread_max_workers": threads._max_workers,
            "process_max_workers": processes._max_workers,
            "thread_initializer": "initializer" in inspect.signature(ThreadPoolExecutor).parameters,
            "process_initializer": "initializer" in inspect.signature(ProcessPoolExecutor).parameters,
        }
        if subinterpreters is not None:
            found["interpreter_max_workers"] = subinterpreters._max_workers  # type: ignore[attr-defined]
        return found
    finally:
        threads.shutdown()
        processes.shutdown()
        if subinterpreters is not None:
            subinterpreters.shutdown()


def make_executor(
    kind: str,
    workers: int | None,
    start_method: str | None,
    blas_threads: int | None,
    malloc: str | None = None,
    *,
    scheduler: str | None = None,
) -> Executor:
    """A new executor of ``kind`` (see EXECUTORS in bench/config.py); ``workers=None`` keeps its default.

    Process pools limit BLAS to ``blas_threads`` and set the allocator policy ``malloc``
    (bench/allocator.py; None: leave it) in each worker through an initializer; with
    ``blas_threads=None`` they get no initializer at all (the pool as users build it, for start-up).
    dask workers get the same settings (bench/cluster.py); ``scheduler`` connects to an existing
    cluster instead of starting a LocalCluster of ``workers`` processes.
    """
    if kind == "serial":
        return SerialExecutor()
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poolbench")
    if kind == "interpreter":
        return interpreters.make(workers)
    if kind == "process":
        context = multiprocessing.get_context(start_method)
        if blas_threads is None:
            return ProcessPoolExecutor(max_workers=workers, mp_context=context)
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(blas_threads, malloc, os.getpid()),
        )
    if kind == "dask":
        return DaskExecutor(
            workers, scheduler=scheduler, blas_threads=blas_threads, malloc=malloc, config=start_method or "default"
        )
    raise ValueError(f"unknown executor kind {kind!r}")


@contextmanager
def blas_limit_here(kind: str, threads: int) -> Iterator[None]:
    """For serial and thread executors the tasks run in this process: cap BLAS here meanwhile."""
    if kind in OUT_OF_PROCESS:
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def warm_up(pool: Executor, workers: int, attempts: int = 4) -> set[int]:
    """Start every worker of ``pool`` and return the process ids that answered.

    Submits one task per worker that holds its worker briefly, so each lands on a different one.
    On a loaded machine a slow-starting worker can leave its task to a sibling; then the batch is
    repeated with a longer hold, up to ``attempts`` times, and the ids seen are pooled.
    """
    seen: set[int] = set()
    # More workers than CPUs start in turns: hold each task long enough for the last to come up.
    hold = WARMUP_HOLD_S * max(1.0, workers / (os.cpu_count() or 1))
    for _ in range(attempts):
        stopping.checkpoint()  # pool start-up forks: a stop signal held there is raised here
        futures = [pool.submit(overhead.whoami, hold) for _ in range(workers)]
        seen |= {f.result() for f in futures}
        if len(seen) >= workers or isinstance(pool, SerialExecutor | ThreadPoolExecutor):
            break
        hold *= 4
    return seen


def blas_threads_of(pool: Executor, kind: str) -> int | None:
    """The BLAS thread count that tasks of ``pool`` run with, asked of a worker for process pools."""
    if kind in OUT_OF_PROCESS:
        return pool.submit(blas_threads_here).result()
    return blas_threads_here()


#: Seconds to wait for a killed worker process to be gone. SIGKILL takes effect at once unless the
#: process is in uninterruptible sleep; the run's end kills and reaps anything left (bench.stopping).
KILLED_JOIN_S = 2.0


def terminate(pool: Executor) -> None:
    """Stop ``pool`` now, without waiting for its tasks: kill process workers, abandon thread workers.

    A thread cannot be killed; a hung one stays alive, and so may a process pool's manager thread
    after its workers were killed mid-message. The session ends with os._exit when such threads are
    left (bench.stopping.finish), so the interpreter's exit never waits for them.
    """
    if isinstance(pool, DaskExecutor):
        pool.terminate()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values()) if isinstance(pool, ProcessPoolExecutor) else []
    for proc in workers:
        with contextlib.suppress(Exception):
            proc.kill()
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        with contextlib.suppress(Exception):
            proc.join(timeout=KILLED_JOIN_S)


@contextmanager
def closing(pool: Executor) -> Iterator[Executor]:
    """Shut ``pool`` down on exit: waiting for it after success, :func:`terminate` after any failure.

    A failure includes a case timeout and Ctrl-C, also while waiting for the shutdown itself:
    waiting then could wait forever on a hung task.
    """
    try:
        yield pool
        pool.shutdown(wait=True)
    except BaseException:
        terminate(pool)
        raise


@contextmanager
def warm_pool(
    kind: str,
    workers: int | None,
    start_method: str | None,
    blas_threads: int,
    malloc: str | None = None,
    *,
    scheduler: str | None = None,
) -> Iterator[Executor]:
    """A pool with every worker started, BLAS limited for its tasks, shut down on exit whatever happens.

    ``workers=None`` keeps the executor's own default size (read back from the pool to warm it).
    """
    pool = make_executor(kind, workers, start_method, blas_threads, malloc, scheduler=scheduler)
    with closing(pool), blas_limit_here(kind, blas_threads):
        warm_up(pool, getattr(pool, "_max_workers", 1) if workers is None else workers)
        yield pool
