"""The executor factory: one way to build every pool the suite measures, and to warm and close it.

Which executors exist, and what each is, is common/executors.py; each one's record names its
backend (bench/backend.py). This module holds the standard library's three: ``serial``, a no-pool
executor that runs each task in the calling thread (the baseline every speedup is divided by),
``thread`` and ``process``. A process pool gets an explicit start method (never the implicit global
default) and the worker set-up of bench/workers.py as its initializer (BLAS threads, allocator
policy), so that workers × BLAS threads is chosen, not inherited. The interpreter pool's backend is
bench/interpreters.py, dask's bench/cluster.py.
"""

from __future__ import annotations

import contextlib
import inspect
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_info, threadpool_limits

from bench import stopping
from bench.backend import Backend, FreshWorker, backend, in_process
from bench.workers import Setup, blas_runs, blas_threads_here, init_process_worker
from common.executors import REGISTRY
from workloads import overhead

if TYPE_CHECKING:
    from bench.config import SuiteConfig

#: How long each warm-up task occupies its worker. Long enough that a task submitted to a busy
#: pool makes it start another worker (spawn and forkserver start workers lazily, one per submit
#: that finds no idle worker), short enough to cost little per case.
WARMUP_HOLD_S = 0.02


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


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of every BLAS/OpenMP library loaded here (for machine_info)."""
    import numpy  # noqa: F401, PLC0415

    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def executor_defaults() -> dict[str, Any]:
    """What the executors choose when given no arguments, read off real instances here.

    For every executor that joins the default-workers cases and runs here; no constructor starts
    a worker, so this costs nothing. The standard pools size for the CPUs the OS shows (cpu_count,
    or process_cpu_count from Python 3.13), never for a cgroup quota.
    """
    found: dict[str, Any] = {}
    for name, spec in REGISTRY.items():
        if "default_workers" not in spec.cases or backend(name).missing() is not None:
            continue
        pool = backend(name).make(None, None, None, None)
        try:
            found[f"{name}_max_workers"] = pool._max_workers  # type: ignore[attr-defined]
        finally:
            pool.shutdown()
    found["thread_initializer"] = "initializer" in inspect.signature(ThreadPoolExecutor).parameters
    found["process_initializer"] = "initializer" in inspect.signature(ProcessPoolExecutor).parameters
    return found


def make_executor(
    kind: str,
    workers: int | None,
    variant: str | None,
    blas_threads: int | None,
    malloc: str | None = None,
    *,
    state: Any = None,
) -> Executor:
    """A new executor of ``kind`` (common/executors.py); ``workers=None`` keeps its default.

    Workers in other processes (process pools, dask) get the set-up of bench/workers.py: BLAS
    limited to ``blas_threads``, the allocator policy ``malloc`` (None: leave it); with
    ``blas_threads=None`` no set-up at all (the pool as users build it, for start-up).
    ``variant`` is the pool's variant (a process pool's start method, a dask configuration);
    ``state`` what its backend made of its own options (SuiteConfig.state: an existing cluster's
    address, say).
    """
    if kind not in REGISTRY:
        raise ValueError(f"unknown executor kind {kind!r}")
    setup = None if blas_threads is None else Setup(blas_threads, malloc, os.getpid())
    return backend(kind).make(workers, variant, setup, state)


def _serial(_workers: int | None, _variant: str | None, _setup: Setup | None, _state: Any) -> Executor:
    return SerialExecutor()


def _thread(workers: int | None, _variant: str | None, _setup: Setup | None, _state: Any) -> Executor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poolbench")


def _process(workers: int | None, method: str | None, setup: Setup | None, _state: Any) -> Executor:
    context = multiprocessing.get_context(method)
    if setup is None:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=init_process_worker,
        initargs=(setup.blas_threads, setup.malloc, setup.owner_pid),
    )


def _fresh_process_workers(cfg: SuiteConfig) -> Iterator[FreshWorker]:
    """One worker per start method that starts afresh (fork workers inherit what the suite imported)."""
    for method in cfg.start_methods:
        if method != "fork":
            yield FreshWorker(
                f"a process worker ({method})",
                lambda m=method: make_executor("process", 1, m, cfg.blas_threads, cfg.malloc),
            )


SERIAL = Backend(make=_serial)
THREAD = Backend(make=_thread)
PROCESS = Backend(
    make=_process,
    variants=lambda cfg: tuple(cfg.start_methods),
    fresh_workers=_fresh_process_workers,
    crash_outcome="BrokenProcessPool",
    own_processes=True,
)


#: The BLAS caps set in the suite's own process, kept for the rest of the run (:func:`blas_limit_here`).
_HELD: list[threadpool_limits] = []


@contextmanager
def blas_limit_here(kind: str, threads: int) -> Iterator[None]:
    """For executors whose tasks run in this process (serial, threads): cap BLAS here, and keep the cap.

    Kept, not restored at the end: setting OpenBLAS's thread count after a fork starts its worker
    thread anew (its fork handler shut the old one down), and a new OpenBLAS thread spins for about
    0.1 s before it sleeps (measured here: 103 ms of CPU in the 200 ms after ``threadpool_limits(1)``
    followed an ``os.fork()``; none without the fork). Set and restored per case, every process/fork
    case started that spin beside its warm-up and first serial probe: the probe waited 3-13 ms for its
    CPU, read slow, and lifted the one-worker process pool to 1.05-1.12× serial (issue #30). The
    suite's process needs no other BLAS count: every BLAS call it makes is a serial or thread pool's.
    """
    if in_process(kind):
        import numpy  # noqa: F401, PLC0415  (loads the BLAS library the cap applies to, as a worker does)

        if not blas_runs(threads):
            _HELD.append(threadpool_limits(limits=threads, user_api="blas"))
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
    if not in_process(kind):
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
    own = getattr(pool, "terminate", None)
    if callable(own):  # a pool that knows how to stop itself at once (a dask cluster)
        own()
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
    variant: str | None,
    blas_threads: int,
    malloc: str | None = None,
    *,
    state: Any = None,
) -> Iterator[Executor]:
    """A pool with every worker started, BLAS limited for its tasks, shut down on exit whatever happens.

    ``workers=None`` keeps the executor's own default size (read back from the pool to warm it).
    """
    pool = make_executor(kind, workers, variant, blas_threads, malloc, state=state)
    with closing(pool), blas_limit_here(kind, blas_threads):
        warm_up(pool, getattr(pool, "_max_workers", 1) if workers is None else workers)
        yield pool
