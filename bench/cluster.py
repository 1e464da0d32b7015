"""The dask.distributed executor: the same cases, through a cluster's scheduler and worker processes.

``distributed.Client.get_executor()`` is a ``concurrent.futures.Executor`` backed by dask's own
scheduler and workers; poolbench measures it as it measures thread and process pools. Two shapes:

* embedded (the default): a ``LocalCluster`` of W single-threaded worker processes (``processes=True``,
  ``threads_per_worker=1``, no dashboard), started and warmed outside timing, one per case;
* an existing cluster (``--dask-scheduler ADDRESS`` or ``POOLBENCH_DASK_SCHEDULER``): the suite
  connects as a client; the cluster's size is the ``workers`` axis, read from the scheduler.

Two configurations of the embedded cluster, both measured (``--dask-configs``; the records carry
the name where process pools carry their start method, so pools read ``dask/default`` and
``dask/tuned``):

* ``default``: dask as it ships: ``LocalCluster()`` with its settings, results taken through
  ``get_executor().map``, which asks for each future's result in turn;
* ``tuned``: what dask's documentation advises for many CPU-bound tasks, each item a cost measured
  by hand (evidence/dask_parts.py, docs/cluster.md, "dask: where a task's time goes"): every task sent to the
  workers at once (``distributed.scheduler.worker-saturation: inf``, the scheduler's queue off),
  the worker's statistical profiler off (``distributed.worker.profile.enabled: False``: it samples
  the task thread's stack every 10 ms and takes the GIL to do so), and a batch's results fetched in
  one ``Client.gather`` instead of one round trip per future.

An existing cluster runs as it was started (configuration ``external``): its scheduler and
workers read their own settings.

Two traps measured here (shared/ANCHORS.md) shape the code:

* ``get_executor()`` submits with ``pure=True`` by default, so a batch of identical tasks (same
  function, same argument: exactly a strong-scaling batch) is computed once and shared. Always
  ``pure=False``.
* dask sizes a worker's threads from the CPUs it sees, rounding a quota up; workers here get
  one thread each, explicitly.

Each worker process gets the same BLAS limit and allocator setting as a process-pool worker
(``Client.run`` of bench.workers.init_cluster_worker). ``map`` ignores ``chunksize`` (dask's does) and
``shutdown`` closes the client and, when embedded, the cluster. ``distributed`` is an optional
dependency (``requirements-cluster.txt``): without it the executor is skipped with one line, and
asking for it explicitly is an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import stopping
from bench.backend import Backend, FreshWorker
from bench.options import Option, OptionError, parse_names
from bench.readings import Quiet
from bench.workers import Setup, init_cluster_worker
from common.environment import CLUSTER_WORKERS_ENV
from workloads import overhead

if TYPE_CHECKING:
    from bench.config import SuiteConfig

#: Environment variable naming an existing scheduler (``tcp://host:8786``), like ``--dask-scheduler``.
SCHEDULER_ENV = "POOLBENCH_DASK_SCHEDULER"
#: Seconds to wait for a scheduler to answer, or for a cluster to start.
CONNECT_TIMEOUT_S = 30
#: Seconds each of the client and the cluster get to close when a case is cut short.
TERMINATE_S = 2
#: The requirements file that installs the optional dependency.
REQUIREMENTS = "requirements-cluster.txt"

#: The embedded cluster's configurations (``--dask-configs``): dask settings in force while the
#: cluster starts (its scheduler reads them, its nannies pass them to their workers), and how a
#: batch's results are fetched. Recorded per case (extra_info ``dask_config``).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {"settings": {}, "gather": "per future"},
    "tuned": {
        "settings": {
            "distributed.scheduler.worker-saturation": "inf",
            "distributed.worker.profile.enabled": False,
        },
        "gather": "one call",
    },
}
#: The configuration name an existing cluster's cases carry: it runs as it was started.
EXTERNAL = "external"


def available() -> bool:
    """Whether ``distributed`` can be imported here (checked without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def missing_line() -> str:
    return f"the dask executor needs `distributed`: pip install -r {REQUIREMENTS}"


def _scheduler_settings(dask_scheduler: Any = None) -> dict[str, Any]:
    """On the scheduler (Client.run_on_scheduler): the queueing setting as the scheduler took it at start."""
    saturation = getattr(dask_scheduler, "WORKER_SATURATION", None)
    return {"distributed.scheduler.worker-saturation": str(saturation) if saturation == float("inf") else saturation}


def _worker_settings(dask_worker: Any = None) -> dict[str, Any]:
    """In a worker (Client.run): whether its statistical profiler runs (a periodic callback it set up at start)."""
    callbacks = getattr(dask_worker, "periodic_callbacks", {})
    return {"distributed.worker.profile.enabled": "profile" in callbacks}


def _worker_cpus() -> dict[str, Any]:
    """What one worker process sees: its effective CPUs (cgroup quota, affinity) and its pid."""
    from bench import cpus  # noqa: PLC0415

    info = cpus.detect()
    return {"pid": os.getpid(), "effective_cpus": info.effective_cpus, "cpu_quota": info.cgroup.quota_cpus}


#: Loggers whose reports after a stop signal are its echo: asyncio's (a cluster's start-up task
#: failing), distributed.process's ("process N exit status was already read, will report exitcode
#: 255": the stop's final kill reaped a worker before dask's own watcher did), and whatever dask
#: says through its own handlers ("distributed", "tornado": a nanny refused a new worker process
#: after the stop, bench.stopping.refuse_new_processes).
QUIET_AFTER_STOP = ("asyncio", "distributed.process")
QUIET_HANDLERS_AFTER_STOP = ("distributed", "tornado")


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` over a dask cluster (see the module doc)."""

    def __init__(
        self,
        workers: int | None,
        *,
        scheduler: str | None = None,
        blas_threads: int | None = None,
        malloc: str | None = None,
        config: str = "default",
    ) -> None:
        import dask  # noqa: PLC0415
        from distributed import Client, LocalCluster  # noqa: PLC0415

        stopping.quiet_after_stop(QUIET_AFTER_STOP, QUIET_HANDLERS_AFTER_STOP)
        self.cluster = None
        self.client: Any = None
        self.config = EXTERNAL if scheduler else config
        spec = CONFIGS["default"] if scheduler else CONFIGS[config]  # an existing cluster: dask's own client
        self._gather_once = spec["gather"] == "one call"
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            else:
                # the settings are read by each worker as it starts
                with dask.config.set(spec["settings"]), stopping.children_without_sigint():
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
            if blas_threads is not None:
                self.client.run(init_cluster_worker, blas_threads, malloc)
            self._executor = self.client.get_executor(pure=False)
            self._max_workers = len(self.client.scheduler_info()["workers"])
            # the processes whose threads settle() watches: this one and, embedded, the workers
            local = self.client.run(os.getpid).values() if self.cluster is not None else ()
            self.quiet = Quiet([os.getpid(), *local])
        except BaseException:
            self.terminate()
            raise

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        if not self._gather_once:
            return self._executor.map(fn, *iterables, timeout=timeout)  # dask has no chunksize
        futures = self.client.map(fn, *iterables, pure=False)
        try:
            return iter(self.client.gather(futures))  # raises the first task error, as map's iterator would
        except BaseException:
            self.client.cancel(futures)  # a task failed or the run is stopping: drop the rest
            raise

    def settle(self) -> float:
        """Wait until the cluster has done with the last batch; return the seconds waited.

        After a batch returns, dask is not finished with it: the client tells the scheduler that
        its results are released, the scheduler forgets them and tells the workers to free them,
        all in event loops, one of which (client and, embedded, scheduler) shares this process's
        GIL. Measured by hand (evidence/dask_parts.py ``probe_check``; docs/cluster.md, "dask: where a
        task's time goes"): a serial task timed right after a round ran slower than one timed 0.3 s
        later, and a process pool's did not, which raised dask's paired speedup. So the suite's
        serial probe waits for this: until the cluster's threads are back at their idle level
        (bench/readings.py ``Quiet``).
        """
        return self.quiet.wait()

    def settings_in_force(self) -> dict[str, Any]:
        """This configuration as the cluster holds it: each setting as the scheduler and a worker read it."""
        import dask  # noqa: PLC0415

        per_worker = self.client.run(_worker_settings)
        return {
            "name": self.config,
            "gather": "one call" if self._gather_once else "per future",
            "idle_cpu_share": self.quiet.idle_share,
            "settings": {
                **self.client.run_on_scheduler(_scheduler_settings),
                **(next(iter(per_worker.values())) if per_worker else {}),
            },
            "dask": dask.__version__,
        }

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

        After a stop signal an embedded cluster is not closed but killed: the run ends anyway, and
        a graceful close races its nannies (which live in this process) against a worker process
        they are starting or restarting, whose bootstrap then reads a closed pipe and prints
        ``EOFError: Ran out of input`` with a traceback (seen once in the interruption sweep:
        cold_start, dask, SIGINT mid-round). Restarts are turned off first, then every process
        of the run is frozen and killed (bench.stopping.kill_descendants).
        """
        from bench import stopping  # noqa: PLC0415  (stopping is the suite's; this module loads in workers)

        if self.cluster is not None and stopping.STATE.signal is not None:
            for nanny in getattr(self.cluster, "workers", {}).values():
                with contextlib.suppress(Exception):
                    nanny.auto_restart = False
            stopping.kill_descendants()
            return
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
        expected = os.environ.get(CLUSTER_WORKERS_ENV, "").strip()
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


def existing_cluster(scheduler: str) -> dict[str, Any]:
    """The size and workers of the dask cluster at ``scheduler``; OptionError when it cannot be reached."""
    try:
        return cluster_info(scheduler)
    except (OSError, TimeoutError) as exc:
        raise OptionError(
            f"--dask-scheduler {scheduler}: no scheduler answered within {CONNECT_TIMEOUT_S} s ({exc}); "
            "start the cluster first or fix the address"
        ) from None


@dataclass(frozen=True)
class DaskState:
    """What the dask executor made of its options (``--dask-scheduler``, ``--dask-configs``) and found at start."""

    scheduler: str | None = None  # an existing cluster; None: an embedded LocalCluster per case
    #: The embedded cluster's configurations (:data:`CONFIGS`); an existing cluster runs as started
    #: (``external``).
    configs: tuple[str, ...] = tuple(CONFIGS)
    cluster: Mapping[str, Any] | None = None  # the existing cluster's size and workers, read at start


def parse_scheduler(text: str | None) -> str | None:
    """``--dask-scheduler`` / ``POOLBENCH_DASK_SCHEDULER``: an existing scheduler's address, or None."""
    if text is None or text.strip() == "":
        return None
    if not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?|[A-Za-z0-9.-]+:\d+", text.strip()):
        raise OptionError(
            f"--dask-scheduler / {SCHEDULER_ENV}: {text!r} is not a scheduler address; "
            "give one such as tcp://scheduler:8786, or leave it unset for an embedded LocalCluster"
        )
    return text.strip()


def parse_configs(text: str | None, scheduler: str | None) -> tuple[str, ...]:
    """``--dask-configs``: which configurations of the embedded cluster run (default: all).

    An existing cluster (``--dask-scheduler``) runs as it was started: naming a configuration then
    is an error, since the suite cannot change a running scheduler's settings.
    """
    if scheduler:
        if text is not None:
            raise OptionError(
                f"--dask-configs {text}: an existing cluster ({scheduler}) runs with its own settings; "
                "leave --dask-configs out, or drop --dask-scheduler to compare the embedded configurations"
            )
        return (EXTERNAL,)
    return parse_names("--dask-configs", text, tuple(CONFIGS), tuple(CONFIGS))


def configure(options: Mapping[str, str | None]) -> DaskState:
    scheduler = parse_scheduler(options.get("dask_scheduler"))
    return DaskState(scheduler, parse_configs(options.get("dask_configs"), scheduler))


OPTIONS = (
    Option(
        "dask_configs",
        "comma list of the embedded dask cluster's configurations: default (as dask ships), "
        "tuned (scheduler queue off, worker profiler off, results gathered in one call) (default: both)",
    ),
    Option(
        "dask_scheduler",
        "address of an existing dask scheduler for --executors dask, e.g. tcp://scheduler:8786 "
        f"(default: a LocalCluster per case; also {SCHEDULER_ENV})",
        env=SCHEDULER_ENV,
    ),
)


def machine_info(suite: SuiteConfig) -> dict[str, Any] | None:
    """machine_info["poolbench"]["dask"]: the dask version and the cluster measured, when dask ran."""
    if "dask" not in suite.executors:
        return None
    state: DaskState = suite.state("dask")
    if state.cluster:
        return {**state.cluster, "configs": {EXTERNAL: None}}  # its own settings
    import distributed  # noqa: PLC0415

    return {
        "version": distributed.__version__,
        "scheduler": None,  # a LocalCluster per case: W single-threaded worker processes on this machine
        "workers": None,
        "threads_per_worker": 1,
        "configs": {name: CONFIGS[name] for name in state.configs},
    }


#: Case types that start a cluster of their own: never run against a user's existing cluster
#: (start-up and memory are the suite's cluster's, and a crash would kill the user's worker).
OWN_CLUSTER_CASES = frozenset({"cold_start", "memory", "crash"})


def _make(workers: int | None, config: str | None, setup: Setup | None, state: DaskState | None) -> Executor:
    return DaskExecutor(
        workers,
        scheduler=None if state is None else state.scheduler,
        blas_threads=None if setup is None else setup.blas_threads,
        malloc=None if setup is None else setup.malloc,
        config=config or "default",
    )


def _ask_every_worker(pool: Executor, place: str, paths: tuple[str, ...]) -> dict[str, list]:
    """The scheduler (it unpickles the task graph) and every worker, by address: what each found."""
    client = pool.client  # type: ignore[attr-defined]
    found = {
        f"dask worker {addr} {place}": each for addr, each in client.run(overhead.import_files_here, paths).items()
    }
    return {f"the dask scheduler {place}": client.run_on_scheduler(overhead.import_files_here, paths), **found}


def _fresh_workers(cfg: SuiteConfig) -> list[FreshWorker]:
    state: DaskState = cfg.state("dask")
    where = f"of the cluster at {state.scheduler}" if state.scheduler else "(LocalCluster)"
    return [
        FreshWorker(where, lambda: _make(1, "default", None, state), _ask_every_worker, state.scheduler is not None)
    ]


def _prepare(_cfg: SuiteConfig, state: DaskState) -> DaskState:
    return dataclasses.replace(state, cluster=existing_cluster(state.scheduler)) if state.scheduler else state


def _crash_info() -> dict[str, Any]:
    """A dead worker's task is re-run elsewhere this many times before KilledWorker."""
    import dask  # noqa: PLC0415

    return {"allowed_failures": dask.config.get("distributed.scheduler.allowed-failures")}


def _size(cfg: SuiteConfig, workers: int) -> int:
    """An existing cluster has one size, its own: its cases use it whatever the sweep says."""
    cluster = cfg.state("dask").cluster
    return int(cluster["workers"]) if cluster else workers


def _settle(pool: Executor) -> Callable[[], float]:
    assert isinstance(pool, DaskExecutor)
    return pool.settle


def _extra_info(pool: Executor) -> dict[str, Any]:
    assert isinstance(pool, DaskExecutor)
    return {"dask_config": pool.settings_in_force()}


BACKEND = Backend(
    make=_make,
    options=OPTIONS,
    configure=configure,
    # a cluster given and no --executors: measure it against serial
    implies=lambda state: ("serial", "dask") if state is not None and state.scheduler else None,
    recorded=lambda state: {"dask_configs": list(state.configs if state is not None else CONFIGS)},
    missing=lambda: None if available() else missing_line(),
    variants=lambda cfg: tuple(cfg.state("dask").configs),
    size=_size,
    joins=lambda cfg, case: cfg.state("dask").scheduler is None or case not in OWN_CLUSTER_CASES,
    prepare=_prepare,
    machine_info=machine_info,
    fresh_workers=_fresh_workers,
    crash_info=_crash_info,
    settle=_settle,
    extra_info=_extra_info,
)
