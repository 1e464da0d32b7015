"""The sweep: which cases a :class:`~bench.config.SuiteConfig` asks for, as small frozen records.

Every value in a case is a string or a number (as in asv's ``params``), so test ids read well:
``cpu_python-process-fork-w4``, ``noop-process-spawn-w2-c16``, ``echo-thread-w2-16MiB``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from bench.backend import backend
from bench.config import DEFAULT_WORKERS_WORKLOADS, DISPATCH_CHUNKSIZES, PAYLOAD_BYTES, SuiteConfig
from bench.executors import executor_defaults
from common.executors import REGISTRY
from workloads.faults import CRASHES


@dataclass(frozen=True)
class Case:
    """One benchmark: what runs (workload), how (executor, start method, workers, chunksize)."""

    case: str
    workload: str
    executor: str
    workers: int
    variant: str | None = None  # process pools: the start method; dask: its configuration; else None
    chunksize: int = 1
    payload: str | None = None  # a key of PAYLOAD_BYTES for payload cases
    sizing: str | None = None  # default_workers cases: "default" (max_workers=None) or "recommended"
    tasks: int | None = None  # tasks per batch of a workload's batch (common/plan.batch_tasks); None: the probe's own
    pass_no: int = 1  # which pass of the scaling sweep (common/plan.py): pass 2 on is a repeat on fresh pools

    @property
    def id(self) -> str:
        parts = [self.workload, self.executor]
        if self.variant:
            parts.append(self.variant)
        if self.sizing:
            parts.append(self.sizing)
        parts.append(f"w{self.workers}")
        if self.case == "dispatch":
            parts.append(f"c{self.chunksize}")
        if self.payload:
            parts.append(self.payload)
        if self.pass_no > 1:
            parts.append(f"p{self.pass_no}")
        return "-".join(parts)


def _pools(cfg: SuiteConfig, workers: int, with_serial: bool, case: str) -> list[tuple[str, int, str | None]]:
    """(executor, workers, variant) for every selected executor that joins ``case`` at one worker count.

    Each executor's record (common/executors.py) says which case types it joins; its backend
    (bench/backend.py) may leave out more on this run, sets the pool size (an existing dask cluster
    has one size, its own) and lists the variants (start methods, dask configurations).
    """
    out: list[tuple[str, int, str | None]] = []
    for name in cfg.executors:
        spec, impl = REGISTRY[name], backend(name)
        if name == "serial":
            if with_serial:
                out.append(("serial", 1, None))
            continue
        if case not in spec.cases or not impl.joins(cfg, case):
            continue
        size = impl.size(cfg, workers)
        out.extend((name, size, v) for v in impl.variants(cfg))
    return out


def runs_under(cfg: SuiteConfig, workload: str, executor: str) -> bool:
    """Whether ``workload`` can run in ``executor``'s workers here (see :func:`left_out`)."""
    return backend(executor).leaves_out(cfg, workload) is None


def left_out(cfg: SuiteConfig) -> dict[str, dict[str, str]]:
    """Per selected executor, the selected workloads its workers cannot run here, each with why."""
    if "scaling" not in cfg.cases:
        return {}
    out: dict[str, dict[str, str]] = {}
    for ex in cfg.executors:
        for name in cfg.workloads:
            why = backend(ex).leaves_out(cfg, name)
            if why is not None:
                out.setdefault(ex, {})[name] = why
    return out


def left_out_lines(cfg: SuiteConfig) -> list[str]:
    """:func:`left_out` as lines for the start of a run, one per executor and reason."""
    lines = []
    for ex, names in left_out(cfg).items():
        by_reason: dict[str, list[str]] = {}
        for name, why in names.items():
            by_reason.setdefault(why, []).append(name)
        lines += [f"{ex} pool leaves out {', '.join(ns)}: {why}" for why, ns in by_reason.items()]
    return lines


def scaling_cases(cfg: SuiteConfig) -> list[Case]:
    """Each workload on the serial baseline, then every pool at every worker count; then again per pass.

    A batch holds ``cfg.batch(W)`` tasks (common/plan.batch_tasks). Pass 2 and on repeat the sweep
    on fresh pools after the whole of the pass before, each workload's cases in reverse order (so
    no case always follows the same one); scripts/results.py joins a point's passes into one record.
    A pool whose workers cannot import what a workload needs (NumPy in a subinterpreter) leaves
    that workload out; the run names it at start (:func:`left_out`).
    """
    first: list[list[Case]] = []
    for name in cfg.workloads:
        cases = []
        if "serial" in cfg.executors:
            cases.append(Case("scaling", name, "serial", 1, tasks=cfg.batch(1)))
        for w in cfg.workers:
            pools = _pools(cfg, w, with_serial=False, case="scaling")
            cases.extend(
                Case("scaling", name, ex, n, m, tasks=cfg.batch(n)) for ex, n, m in pools if runs_under(cfg, name, ex)
            )
        first.append(list(dict.fromkeys(cases)))  # an existing cluster's one size appears once
    out = [c for cases in first for c in cases]
    for p in range(2, int(cfg.settings["passes"]) + 1):
        for cases in first:
            order = cases[::-1] if p % 2 == 0 else cases
            out.extend(dataclasses.replace(c, pass_no=p) for c in order)
    return out


def cold_start_cases(cfg: SuiteConfig) -> list[Case]:
    """Pool creation to first result, per executor and start method, at the recommended size."""
    w = cfg.cpu.recommended_workers
    pools = _pools(cfg, w, with_serial=False, case="cold_start")
    return [Case("cold_start", "whoami", ex, n, m) for ex, n, m in pools]


def dispatch_cases(cfg: SuiteConfig) -> list[Case]:
    """Empty tasks at several chunksizes. ``chunksize`` only changes ProcessPoolExecutor.map, so
    serial and thread pools run at chunksize 1 only."""
    w = cfg.cpu.recommended_workers
    out = []
    for ex, n, m in _pools(cfg, w, with_serial=True, case="dispatch"):
        sizes = DISPATCH_CHUNKSIZES if REGISTRY[ex].honours_chunksize else (1,)
        out.extend(Case("dispatch", "noop", ex, n, m, chunksize=c) for c in sizes)
    return out


def payload_cases(cfg: SuiteConfig) -> list[Case]:
    """Arguments and results of each payload size, moved through each executor."""
    w = cfg.cpu.recommended_workers
    return [
        Case("payload", "echo", ex, n, m, payload=p)
        for p in PAYLOAD_BYTES
        for ex, n, m in _pools(cfg, w, with_serial=True, case="payload")
    ]


def memory_cases(cfg: SuiteConfig) -> list[Case]:
    """The tree's memory with every worker started, at each worker count (serial: no pool at all)."""
    out = []
    if "serial" in cfg.executors:
        out.append(Case("memory", "whoami", "serial", 1))
    for w in cfg.workers:
        pools = _pools(cfg, w, with_serial=False, case="memory")
        out.extend(Case("memory", "whoami", ex, n, m) for ex, n, m in pools)
    return out


def default_workers_cases(cfg: SuiteConfig) -> list[Case]:
    """Each executor at ``max_workers=None`` against ``max_workers=recommended_workers``.

    Both executors' defaults size for the CPUs the OS shows, not for a container's quota; the
    worker count each default chooses here is read off a real executor and kept in the case.
    """
    defaults = executor_defaults()
    chosen = {ex: defaults.get(f"{ex}_max_workers") for ex in cfg.executors}
    rec = cfg.cpu.recommended_workers
    out = []
    for name in DEFAULT_WORKERS_WORKLOADS:
        for ex, _, m in _pools(cfg, 1, with_serial=False, case="default_workers"):
            tasks = cfg.batch(max(chosen[ex] or rec, rec))  # one batch for both sizings: the larger's
            out.append(Case("default_workers", name, ex, chosen[ex], m, sizing="default", tasks=tasks))
            out.append(Case("default_workers", name, ex, rec, m, sizing="recommended", tasks=tasks))
    return out


def crash_cases(cfg: SuiteConfig) -> list[Case]:
    """Each crash (os._exit, abort, segfault) under each pool, one worker, in a child process."""
    pools = _pools(cfg, 1, with_serial=False, case="crash")
    return [Case("crash", f"crash_{crash}", ex, n, m) for crash in CRASHES for ex, n, m in pools]


GENERATORS: dict[str, Callable[[SuiteConfig], list[Case]]] = {
    "scaling": scaling_cases,
    "cold_start": cold_start_cases,
    "dispatch": dispatch_cases,
    "payload": payload_cases,
    "memory": memory_cases,
    "default_workers": default_workers_cases,
    "crash": crash_cases,
}
