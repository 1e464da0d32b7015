"""How the suite runs each executor: the :class:`Backend` its record names (common/executors.py).

A record says what an executor *is* (the scripts read that too); its backend says how the suite
builds one and what it must do around it. Every hook but ``make`` has a default that fits a pool
with nothing special, so the thread pool's backend is one line; the dask and interpreter backends
live in their own modules (bench/cluster.py, bench/interpreters.py) with everything else about them.

The suite never asks "is this dask?": it asks the backend of each selected executor.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from bench.options import Option
from common.executors import REGISTRY

if TYPE_CHECKING:
    from bench.config import SuiteConfig
    from bench.workers import Setup


class FreshWorker(NamedTuple):
    """A kind of worker that starts afresh and imports the user's files by name (bench/preflight.py)."""

    where: str  # how a line names it: "a process worker (spawn)"
    start: Callable[[], Executor]  # one such pool
    #: How to ask such a pool what its workers found, {where: [(path, problem, sha256), ...]}; None:
    #: ask its one worker.
    ask: Callable[[Executor, str, tuple[str, ...]], dict[str, list]] | None = None
    elsewhere: bool = False  # its workers run on other machines, which see other files


def _none(*_: Any) -> None:
    return None


def _one_variant(_cfg: SuiteConfig) -> tuple[str | None, ...]:
    return (None,)


def _as_asked(_cfg: SuiteConfig, workers: int) -> int:
    return workers


def _always(_cfg: SuiteConfig, _case: str) -> bool:
    return True


def _no_fresh_workers(_cfg: SuiteConfig) -> Iterable[FreshWorker]:
    return ()


def _no_state(_options: Mapping[str, str | None]) -> Any:
    return None


def _as_it_was(_cfg: SuiteConfig, state: Any) -> Any:
    return state


def _no_settle(_pool: Executor) -> Callable[[], float] | None:
    return None


def _no_extra(_pool: Executor) -> dict[str, Any]:
    return {}


def _nothing_recorded(_state: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Backend:
    """The suite's side of one executor."""

    #: ``make(workers, variant, setup, state)`` → a new, unstarted pool. ``workers=None`` keeps the
    #: executor's own default; ``setup=None`` gives workers no set-up at all (the pool as users build
    #: it, for start-up); ``state`` is what :attr:`configure` and :attr:`prepare` made of its options.
    make: Callable[[int | None, str | None, Setup | None, Any], Executor]
    #: Options of its own that ``pytest bench`` takes (``--dask-scheduler``), each read into its state.
    options: tuple[Option, ...] = ()
    #: Its state from its options' values (None: not given; the environment already read): any value
    #: the suite keeps for it (SuiteConfig.executor_state) and hands to every other hook; may raise
    #: OptionError with the one line to show.
    configure: Callable[[Mapping[str, str | None]], Any] = _no_state
    #: The executors a run measures when ``--executors`` is not given and its state asks for them
    #: (an existing cluster given: it and serial); None: the default set.
    implies: Callable[[Any], tuple[str, ...] | None] = _none
    #: What ``machine_info["poolbench"]["config"]`` records of its options.
    recorded: Callable[[Any], dict[str, Any]] = _nothing_recorded
    #: Why it cannot run here (one phrase), or None.
    missing: Callable[[], str | None] = _none
    #: Its variants on this run (start methods, configurations); (None,) for none.
    variants: Callable[[SuiteConfig], tuple[str | None, ...]] = _one_variant
    #: The pool size a case at ``workers`` gets (an existing cluster has one size, its own).
    size: Callable[[SuiteConfig, int], int] = _as_asked
    #: Whether it joins a case type on this run (beyond the record's ``cases``).
    joins: Callable[[SuiteConfig, str], bool] = _always
    #: Why a workload cannot run in its workers here (one phrase), or None.
    leaves_out: Callable[[SuiteConfig, str], str | None] = _none
    #: Called once the options are read, for a selected executor: its state with what it found at
    #: start (an existing cluster's size, what a subinterpreter can import); may raise OptionError.
    prepare: Callable[[SuiteConfig, Any], Any] = _as_it_was
    #: machine_info["poolbench"][name] (None: not run); None: no such key at all.
    machine_info: Callable[[SuiteConfig], dict[str, Any] | None] | None = None
    #: Workers that start afresh and import the user's files by name (bench/preflight.py).
    fresh_workers: Callable[[SuiteConfig], Iterable[FreshWorker]] = _no_fresh_workers
    #: What a crash probe records beside its outcome (bench/crash_probe.py).
    crash_info: Callable[[], dict[str, Any]] = dict
    #: What the pool's owner must get when a task kills its worker (``BrokenProcessPool``); None:
    #: recorded, not required (a thread's crash takes the whole process; a cluster re-runs the task).
    crash_outcome: str | None = None
    #: Whether the memory case checks that its warm-up reached every worker by counting process ids
    #: (each worker a process the pool starts itself: a process pool).
    own_processes: bool = False
    #: Called before each serial probe of a case on this pool: a wait until the pool's own clean-up of
    #: the round is done, returning the seconds waited (bench/measure.py ``BatchRounds.settle``); None.
    settle: Callable[[Executor], Callable[[], float] | None] = _no_settle
    #: What a batch case on this pool records beside the core keys (dask: the settings in force).
    extra_info: Callable[[Executor], dict[str, Any]] = _no_extra


@functools.cache
def backend(executor: str) -> Backend:
    """The backend of ``executor`` (a name in common.executors.REGISTRY)."""
    module, _, attr = REGISTRY[executor].backend.partition(":")
    return getattr(importlib.import_module(module), attr)


def missing_line(executor: str) -> str | None:
    """Why ``executor`` cannot run here (one phrase), or None when it can."""
    return backend(executor).missing()


def in_process(executor: str) -> bool:
    return REGISTRY[executor].in_process
