"""The executors poolbench measures: one record each, and the ``Pool`` value that names one pool.

Both sides read this (standard library only): the suite (bench/) builds and runs pools from it, the
scripts label, rank and plot them. Everything the suite needs to *run* an executor lives in its own
module, named by :attr:`Executor.backend` (``"module:object"``, resolved by bench/backend.py), so an
executor is one record here, one module there, and its tests.

A pool is an executor and, where the executor has them, a variant: a process pool's start method
(``process/fork``), a dask cluster's configuration (``dask/tuned``). Results and reports spell a
pool ``executor/variant``; :class:`Pool` is that name as a value, parsed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

#: Every case type, in the order a run takes them (``--cases``' default); an executor joins a subset.
CASES = ("scaling", "cold_start", "dispatch", "payload", "memory", "default_workers", "crash")
ALL_CASES = frozenset(CASES)


@dataclass(frozen=True)
class Executor:
    """What poolbench knows about one executor, whatever runs it."""

    name: str
    #: The plural a sentence uses ("processes beat threads"); also the recommendation order's words.
    words: str
    #: Rank in the recommendation order: when several pools reach the best speedup within its
    #: interval, the cheapest in memory and start-up wins (scripts/claims.py). None: not a pool.
    cost_rank: int | None
    #: Whether its workers share the suite's address space (memory is the tree's, not per worker).
    shares_memory: bool
    #: Whether its workers run Python under one GIL, the suite's: GIL-holding work cannot scale on it
    #: while the build's GIL is on (:func:`gil_bound`).
    shares_gil: bool
    #: Whether tasks run in the suite's own process (BLAS is then limited around the batch here,
    #: not in workers' initializers).
    in_process: bool
    #: What the pool's variant is, when it has one ("start method", "configuration").
    variant: str | None
    #: The case types it joins (its backend may leave out more on a given run).
    cases: frozenset[str]
    #: In the default ``--executors`` set (else opt-in: ``--executors ...,name`` or ``all``).
    default: bool
    #: Whether each worker runs an interpreter of its own, tasks and results pickled between them
    #: (what a Python build changes about such pools is reported per build: start-up, payload, memory).
    isolated: bool
    #: Whether ``map``'s chunksize changes what it does (the dispatch cases sweep chunksizes only then).
    honours_chunksize: bool
    #: Colour and marker of its curves (scripts/plot.py), and a colour per variant it knows.
    style: tuple[str, str]
    #: ``module:object`` of its bench.backend.Backend: how the suite builds and prepares it.
    backend: str
    #: ``module:function`` of its own section of the report (scripts/report.py), if it has one.
    report_section: str | None = None
    #: A table's column heading for it, where not its words ("interpreter pool").
    title: str | None = None
    variant_colours: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


#: The executors, in the order options, cases and tables list them.
REGISTRY: MappingProxyType[str, Executor] = MappingProxyType(
    {
        "serial": Executor(
            name="serial",
            words="the serial baseline",
            cost_rank=None,
            shares_memory=True,
            shares_gil=True,
            in_process=True,
            variant=None,
            cases=frozenset({"scaling", "dispatch", "payload", "memory"}),
            default=True,
            isolated=False,
            honours_chunksize=False,
            style=("tab:gray", "s"),
            backend="bench.executors:SERIAL",
        ),
        "thread": Executor(
            name="thread",
            words="threads",
            cost_rank=0,
            shares_memory=True,
            shares_gil=True,
            in_process=True,
            variant=None,
            cases=ALL_CASES,
            default=True,
            isolated=False,
            honours_chunksize=False,
            style=("tab:blue", "o"),
            backend="bench.executors:THREAD",
        ),
        "interpreter": Executor(
            name="interpreter",
            words="subinterpreters",
            cost_rank=1,
            shares_memory=True,
            shares_gil=False,
            in_process=True,
            variant=None,
            cases=ALL_CASES,
            default=True,
            isolated=True,
            honours_chunksize=False,
            style=("tab:purple", "^"),
            backend="bench.interpreters:BACKEND",
            title="interpreter pool",
        ),
        "process": Executor(
            name="process",
            words="processes",
            cost_rank=2,
            shares_memory=False,
            shares_gil=False,
            in_process=False,
            variant="start method",
            cases=ALL_CASES,
            default=True,
            isolated=True,
            honours_chunksize=True,
            style=("tab:purple", "^"),  # the colour of a start method it does not know
            variant_colours=MappingProxyType({"fork": "tab:orange", "forkserver": "tab:green", "spawn": "tab:red"}),
            backend="bench.executors:PROCESS",
        ),
        "dask": Executor(
            name="dask",
            words="a dask cluster",
            cost_rank=3,
            shares_memory=False,
            shares_gil=False,
            in_process=False,
            variant="configuration",
            cases=ALL_CASES - {"default_workers"},  # a cluster has no max_workers=None
            default=False,  # seconds per case to start a cluster; an optional dependency
            isolated=True,
            honours_chunksize=False,  # dask's map ignores chunksize
            style=("tab:brown", "D"),
            # its configurations (bench/cluster.py CONFIGS; external: an existing cluster)
            variant_colours=MappingProxyType({"default": "tab:brown", "tuned": "tab:olive", "external": "tab:cyan"}),
            backend="bench.cluster:BACKEND",
            report_section="scripts.cluster_report:section",
        ),
    }
)

NAMES: tuple[str, ...] = tuple(REGISTRY)
DEFAULTS: tuple[str, ...] = tuple(n for n, e in REGISTRY.items() if e.default)


def of(name: str) -> Executor | None:
    """The record of executor ``name``, or of the executor of a pool name (``process/fork``); None if unknown."""
    return REGISTRY.get(family(name))


def heading(name: str) -> str:
    """The column heading of executor ``name``: its title, or its words."""
    spec = REGISTRY[name]
    return spec.title or spec.words


@dataclass(frozen=True, order=True)
class Pool:
    """One pool: an executor and, where it has them, its variant (start method, configuration)."""

    executor: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Pool:
        """``process/fork`` → Pool("process", "fork"); ``thread`` → Pool("thread")."""
        executor, _, variant = text.partition("/")
        return cls(executor, variant or None)

    def __str__(self) -> str:
        return f"{self.executor}/{self.variant}" if self.variant else self.executor

    @property
    def spec(self) -> Executor | None:
        return REGISTRY.get(self.executor)


def gil_bound(executor: str, gil: str, gil_enabled: bool = True) -> bool:
    """Whether work that ``gil`` ("holds" or "releases") the GIL is held to one CPU on ``executor``'s
    workers: GIL-holding work on a pool that shares one GIL, on a build whose GIL was on."""
    spec = of(family(executor))
    return bool(spec and spec.shares_gil and spec.cost_rank is not None and gil == "holds" and gil_enabled)


def family(pool: str) -> str:
    """The executor of a pool name: ``process/fork`` → ``process``."""
    return Pool.parse(pool).executor


def cost_order() -> list[str]:
    """The executors that are pools, cheapest first: the order a tie between them is broken in."""
    ranked = [e for e in REGISTRY.values() if e.cost_rank is not None]
    return [e.name for e in sorted(ranked, key=lambda e: e.cost_rank)]
