"""The dask.distributed executor: the same cases, through a cluster's scheduler and worker processes.

``distributed.Client.get_executor()`` is a ``concurrent.futures.Executor`` backed by dask's own
scheduler and workers; poolbench measures it as it measures thread and process pools. Two shapes:

* embedded (the default): a ``LocalCluster`` of W single-threaded worker processes (``processes=True``,
  ``threads_per_worker=1``, no dashboard), started and warmed outside timing, one per case;
* an existing cluster (``--dask-scheduler ADDRESS`` or ``POOLBENCH_DASK_SCHEDULER``): the suite
  connects as a client; the cluster's size is the ``workers`` axis, read from the scheduler.

Two traps measured here (shared/ANCHORS.md) shape the code:

* ``get_executor()`` submits with ``pure=True`` by default, so a batch of identical tasks (same
  function, same argument: exactly a strong-scaling batch) is computed once and shared. Always
  ``pure=False``.
* dask sizes a worker's threads from the CPUs it sees, rounding a quota up; workers here get
  one thread each, explicitly.

Each worker process gets the same BLAS limit and allocator setting as a process-pool worker
(``Client.run`` of :func:`init_dask_worker`). ``map`` ignores ``chunksize`` (dask's does) and
``shutdown`` closes the client and, when embedded, the cluster. ``distributed`` is an optional
dependency (``requirements-cluster.txt``): without it the executor is skipped with one line, and
asking for it explicitly is an error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

#: Environment variable naming an existing scheduler (``tcp://host:8786``), like ``--dask-scheduler``.
SCHEDULER_ENV = "POOLBENCH_DASK_SCHEDULER"
#: Seconds to wait for a scheduler to answer, or for a cluster to start.
CONNECT_TIMEOUT_S = 30
#: Seconds each of the client and the cluster get to close when a case is cut short.
TERMINATE_S = 2
#: Environment variable: the number of workers an existing cluster should have before the suite
#: reads its size (the matrix driver sets it: worker containers connect a few seconds after start).
WORKERS_ENV = "POOLBENCH_DASK_WORKERS"
#: The requirements file that installs the optional dependency.
REQUIREMENTS = "requirements-cluster.txt"


def available() -> bool:
    """Whether ``distributed`` can be imported here (checked without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def missing_line() -> str:
    return f"the dask executor needs `distributed`: pip install -r {REQUIREMENTS}"


def init_dask_worker(blas_threads: int, malloc: str | None) -> int | None:
    """Cap BLAS and set the allocator policy in a dask worker process, as a process-pool worker does.

    Runs through ``Client.run`` (not in the worker's main thread, so no signal handling here: the
    nanny owns its worker's signals). Returns the BLAS thread count now in force.
    """
    from bench import allocator, executors  # noqa: PLC0415  (the worker imports the suite by module name)

    if malloc is not None:
        allocator.apply(malloc)  # process-wide: the worker's task thread allocates under it
    import numpy  # noqa: F401, PLC0415  (loads the BLAS library the limit applies to)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    global _DASK_BLAS_LIMIT
    _DASK_BLAS_LIMIT = threadpool_limits(limits=blas_threads, user_api="blas")
    return executors.blas_threads_here()


_DASK_BLAS_LIMIT: Any = None


def _worker_cpus() -> dict[str, Any]:
    """What one worker process sees: its effective CPUs (cgroup quota, affinity) and its pid."""
    from bench import cpus  # noqa: PLC0415

    info = cpus.detect()
    return {"pid": os.getpid(), "effective_cpus": info.effective_cpus, "cpu_quota": info.cgroup.quota_cpus}


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` over a dask cluster (see the module doc)."""

    def __init__(
        self,
        workers: int | None,
        *,
        scheduler: str | None = None,
        blas_threads: int | None = None,
        malloc: str | None = None,
    ) -> None:
        from distributed import Client, LocalCluster  # noqa: PLC0415

        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        else:
            self.cluster = LocalCluster(
                n_workers=workers or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                scheduler_port=0,
                host="127.0.0.1",
            )
            self.client = Client(self.cluster, set_as_default=False, timeout=CONNECT_TIMEOUT_S)
        try:
            if blas_threads is not None:
                self.client.run(init_dask_worker, blas_threads, malloc)
            self._executor = self.client.get_executor(pure=False)
            self._max_workers = len(self.client.scheduler_info()["workers"])
        except BaseException:
            self.terminate()
            raise

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        return self._executor.map(fn, *iterables, timeout=timeout)  # dask has no chunksize

    def workers_info(self) -> list[dict[str, Any]]:
        """Per worker: threads and memory limit as the scheduler knows them, CPUs as the worker sees them."""
        info = self.client.scheduler_info()["workers"]
        seen = self.client.run(_worker_cpus)
        return [
            {
                "address": address,
                "nthreads": w.get("nthreads"),
                "memory_limit": w.get("memory_limit"),
                **{k: v for k, v in (seen.get(address) or {}).items() if k != "pid"},
            }
            for address, w in sorted(info.items())
        ]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=wait)
        self._close(CONNECT_TIMEOUT_S)

    def terminate(self) -> None:
        """Stop now: close the client and, when embedded, the cluster, each given TERMINATE_S.

        Short, so that a stop signal's bound holds (bench/stopping.py); whatever is still alive
        after it is killed with the rest of the suite's process tree.
        """
        self._close(TERMINATE_S)

    def _close(self, timeout: float) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=timeout)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=timeout)


def cluster_info(scheduler: str) -> dict[str, Any]:
    """machine_info["poolbench"]["dask"] for an existing cluster: its address, size and workers."""
    import distributed  # noqa: PLC0415

    pool = DaskExecutor(None, scheduler=scheduler)
    try:
        expected = os.environ.get(WORKERS_ENV, "").strip()
        if expected.isdigit() and int(expected) > pool._max_workers:
            pool.client.wait_for_workers(int(expected), timeout=CONNECT_TIMEOUT_S * 4)
            pool._max_workers = len(pool.client.scheduler_info()["workers"])
        return {
            "version": distributed.__version__,
            "scheduler": scheduler,
            "workers": pool._max_workers,
            "worker_info": pool.workers_info(),
        }
    finally:
        pool.shutdown()
