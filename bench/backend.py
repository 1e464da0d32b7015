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
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.executors import REGISTRY

if TYPE_CHECKING:
    from bench.config import SuiteConfig
    from bench.workers import Setup

#: (where, how to start one such worker, how to ask such a pool what its workers found:
#: {where: [(path, problem, sha256), ...]}, None: ask its one worker) for the workload-file check
#: (bench/preflight.py).
FreshWorker = tuple[str, Callable[[], Executor], Callable[[Executor, str, tuple[str, ...]], dict[str, list]] | None]


def _none(*_: Any) -> None:
    return None


def _one_variant(_cfg: SuiteConfig) -> tuple[str | None, ...]:
    return (None,)


def _as_asked(_cfg: SuiteConfig, workers: int) -> int:
    return workers


def _always(_cfg: SuiteConfig, _case: str) -> bool:
    return True


def _nothing(_cfg: SuiteConfig) -> dict[str, Any]:
    return {}


def _no_fresh_workers(_cfg: SuiteConfig) -> Iterable[FreshWorker]:
    return ()


@dataclass(frozen=True)
class Backend:
    """The suite's side of one executor."""

    #: ``make(workers, variant, setup, cfg_or_none)`` → a new, unstarted pool. ``workers=None``
    #: keeps the executor's own default; ``setup=None`` gives workers no set-up at all (the pool
    #: as users build it, for start-up).
    make: Callable[[int | None, str | None, Setup | None, str | None], Executor]
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
    #: Called once the options are read: SuiteConfig fields it fills (an existing cluster's size,
    #: what a subinterpreter can import); may raise OptionError.
    prepare: Callable[[SuiteConfig], dict[str, Any]] = _nothing
    #: machine_info["poolbench"][name] (None: not run); None: no such key at all.
    machine_info: Callable[[SuiteConfig], dict[str, Any] | None] | None = None
    #: Workers that start afresh and import the user's files by name (bench/preflight.py).
    fresh_workers: Callable[[SuiteConfig], Iterable[FreshWorker]] = _no_fresh_workers
    #: What a crash probe records beside its outcome (bench/crash_probe.py).
    crash_info: Callable[[], dict[str, Any]] = dict


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
