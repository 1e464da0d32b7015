"""What a pool costs, per unit: dispatch and payload per task, start-up, memory per worker, the overhead model
of a scaling batch, the default-workers trap, and rounds too short for a CPU quota.

Computed from loaded records and the analysis' points (scripts/analysis.py); read by the report, the
cluster section and the evidence.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from common.executors import Pool
from common.reference import CONFIDENCE
from scripts.analysis import RunView, ScalingPoint, scaling_points
from scripts.cli import markdown_table
from scripts.results import Record


def payload_ms_per_mib(records: Iterable[Record]) -> dict[str, float]:
    """Per pool: round-trip time per MiB of payload (argument and result), from the largest payload."""
    largest: dict[str, Record] = {}
    for r in records:
        size = r.extra.get("payload_bytes")
        if r.case == "payload" and isinstance(size, int):
            held = largest.get(r.pool)
            if held is None or size > held.extra["payload_bytes"]:
                largest[r.pool] = r
    return {pool: r.median / r.tasks / (r.extra["payload_bytes"] / 2**20) * 1e3 for pool, r in largest.items()}


#: The share of a task's time that a pool's own cost may take before it counts as overhead-bound.
OVERHEAD_SHARE = 0.10


def break_even_ms(dispatch_us: float, serial_us: float, mib_ms: float = 0.0, mib: float = 0.0) -> float:
    """The task length (ms) from which a pool's own cost per task is at most OVERHEAD_SHARE of the total.

    The pool's cost per task is its dispatch time per empty task less serial's (calling the
    function), plus the payload's round trip (``mib`` MiB of argument and result at ``mib_ms`` per
    MiB). A task of length T spends cost / (T + cost) on it: at most 10 % when T >= 9 × cost.
    """
    cost_ms = max(dispatch_us - serial_us, 0.0) / 1e3 + mib * mib_ms
    return cost_ms * (1 - OVERHEAD_SHARE) / OVERHEAD_SHARE


#: How far the overhead model may sit from the scaling case's measured cost per task before the
#: report says the two disagree (issue #20's bar).
MODEL_TOLERANCE = 0.25


@dataclass(frozen=True)
class OverheadModel:
    """A pool's own cost per task at W = C busy workers: measured by the clock, modelled by CPU time
    and one ``map`` call's latency.

    ``measured_ms`` (95 % interval ``measured_lo``..``measured_hi``) is what the scaling case of
    ``workload`` shows on the wall clock: serial task time × (ideal / speedup − 1), the time each task
    took beyond its serial time on one of the busy workers.

    The model explains it by two other measurements. ``cpu_ms``: with every CPU busy, a round's wall
    time × C is the CPU time it used, so each task costs the CPU time the whole process tree spent per
    task in the pool's case (the task itself, slowed or not; the pool's threads, scheduler, client,
    event loops, pickling) less the CPU one task takes alone: the serial probes' own CPU time, each
    taken right after the round it pairs with (schema 6, ``serial_cpu_samples_s``: the host's speed
    of the moment on both sides), else the serial case's (measured at another moment: a host phase
    between the two moves it). Read from the kernel's per-thread counters (``cpu_time_s``), not from
    any timer of the round. None for an existing dask cluster: its scheduler and workers spend their
    CPU outside the tree. ``call_ms``: W × ``latency_ms`` / n, one ``map`` call's latency (the
    dispatch case's map of one empty task per worker) spread over the batch. The CPUs idle for at
    most that long per round (waiting for the first task, for the last result) and for at least
    none of it, so the cost per task lies in ``model_lo``..``model_hi`` = ``cpu_ms`` ..
    ``cpu_ms + call_ms``; ``model_ms`` is the middle (docs/cluster.md, "dask: where a task's time goes",
    checks both against the clock).

    Beside them, the empty task's figures from the dispatch case (chunksize 1, same W): ``wall_ms``,
    its wall time per task in a long batch less serial's, the figure the report once extrapolated
    from alone; ``empty_cpu_ms``, the CPU every process spent per empty task. ``empty_model_ms`` is
    what they predict for the scaling batch: W × latency / n + empty CPU. A real task can cost more
    than an empty one (a batch of empty tasks finishes in bursts that dask's messages carry many at
    a time; real tasks finish one by one), which ``cpu_ms`` measures and ``empty_model_ms`` cannot.
    """

    pool: str
    workers: int
    workload: str
    tasks: int
    task_ms: float
    measured_ms: float
    measured_lo: float
    measured_hi: float
    cpu_ms: float | None = None
    cpu_basis: str | None = None  # what the CPU a task takes alone came from: "paired probes", "serial case"
    latency_ms: float | None = None
    empty_cpu_ms: float | None = None
    wall_ms: float | None = None

    @property
    def call_ms(self) -> float | None:
        """One map call's latency spread over the batch: W × latency / n."""
        return None if self.latency_ms is None else self.workers * self.latency_ms / self.tasks

    @property
    def model_lo(self) -> float | None:
        return self.cpu_ms

    @property
    def model_hi(self) -> float | None:
        return None if self.cpu_ms is None else self.cpu_ms + (self.call_ms or 0.0)

    @property
    def model_ms(self) -> float | None:
        """The middle of the band (the CPU cost alone when no latency was measured)."""
        return None if self.cpu_ms is None else self.cpu_ms + (self.call_ms or 0.0) / 2

    @property
    def empty_model_ms(self) -> float | None:
        if self.empty_cpu_ms is None or self.call_ms is None:
            return None
        return self.call_ms + self.empty_cpu_ms

    @property
    def gap(self) -> float | None:
        """measured / model − 1 (None without a model, or with a model of no cost: the pool's case
        spent no more CPU per task than a task alone, which only noise between the two can do)."""
        if self.model_ms is None or self.model_ms <= 0:
            return None
        return self.measured_ms / self.model_ms - 1

    @property
    def in_band(self) -> bool | None:
        if self.gap is None:
            return None
        return self.model_lo <= self.measured_ms <= self.model_hi

    @property
    def within(self) -> bool | None:
        """The clock's cost in the model's band, within MODEL_TOLERANCE of its middle, or the middle
        inside the clock's interval."""
        if self.gap is None:
            return None
        inside = self.measured_lo <= self.model_ms <= self.measured_hi
        return self.in_band or inside or abs(self.gap) <= MODEL_TOLERANCE

    @property
    def empty_ratio(self) -> float | None:
        """The measured cost per task over the empty-task prediction (how far that figure under-states it)."""
        if self.empty_model_ms is None or self.empty_model_ms <= 0:
            return None
        return self.measured_ms / self.empty_model_ms

    def break_even_ms(self, long_batch: bool = False) -> float | None:
        """Task length from which the pool's cost is at most OVERHEAD_SHARE of a task's time: from the
        measured cost in this batch, or (``long_batch``) from the CPU cost alone, a call's latency
        spread over so many tasks that it no longer counts."""
        cost = self.cpu_ms if long_batch else self.measured_ms
        if cost is None:
            return None
        return max(cost, 0.0) * (1 - OVERHEAD_SHARE) / OVERHEAD_SHARE


def _cpu_per_task_ms(r: Record) -> float | None:
    cpu = r.extra.get("cpu_time_s")
    if not isinstance(cpu, int | float) or not r.samples or r.tasks <= 0:
        return None
    return cpu / (len(r.samples) * r.tasks) * 1e3


def _probe_cpu_per_task_ms(r: Record) -> float | None:
    """CPU per task of the serial probes paired with a pool's rounds (schema 6), or None."""
    cpu, tasks = r.extra.get("serial_cpu_samples_s"), r.extra.get("serial_tasks")
    if not isinstance(cpu, list) or not cpu or not isinstance(tasks, int) or tasks <= 0:
        return None
    if not all(isinstance(x, int | float) for x in cpu):
        return None
    return sum(cpu) / (len(cpu) * tasks) * 1e3


def overhead_model(
    records: Iterable[Record], workload: str = "cpu_python", points: list[ScalingPoint] | None = None
) -> list[OverheadModel]:
    """Per pool with a scaling case of ``workload`` at the recommended size (every CPU busy): the
    cost per task by the clock and by CPU time, with the dispatch case's empty-task figures at
    that size when they were measured (:class:`OverheadModel`)."""
    records = list(records)

    def of(case: str, pool: str, workers: int, chunksize: int | None = None) -> Record | None:
        return next(
            (
                r
                for r in records
                if r.case == case
                and r.pool == pool
                and r.workers == workers
                and (case != "scaling" or r.workload == workload)
                and (chunksize is None or r.chunksize == chunksize)
            ),
            None,
        )

    serial_run = next(
        (r for r in records if r.case == "scaling" and r.executor == "serial" and r.workload == workload), None
    )
    serial_cpu = _cpu_per_task_ms(serial_run) if serial_run else None
    serial_dispatch = next((r for r in records if r.case == "dispatch" and r.executor == "serial"), None)
    out = []
    for p in scaling_points(records) if points is None else points:
        # an existing cluster: its size is the only one, its CPU elsewhere
        external = Pool.parse(p.pool).variant == "external"
        if p.workload != workload or p.pool == "serial" or p.speedup <= 0:
            continue
        if p.workers != p.recommended_workers and not external:
            continue
        task_ms = p.serial_s / p.tasks * 1e3
        pool_run = of("scaling", p.pool, p.workers)
        pool_cpu = _cpu_per_task_ms(pool_run) if pool_run else None
        alone = _probe_cpu_per_task_ms(pool_run) if pool_run else None
        base = alone if alone is not None else serial_cpu
        model = OverheadModel(
            pool=p.pool,
            workers=p.workers,
            workload=workload,
            tasks=p.tasks,
            task_ms=task_ms,
            measured_ms=task_ms * (p.ideal / p.speedup - 1),
            # not clamped at 0: an interval reaching past the ideal reads as a negative cost, as it measured
            measured_lo=task_ms * (p.ideal / p.speedup_hi - 1),
            measured_hi=task_ms * (p.ideal / p.speedup_lo - 1),
            cpu_ms=None if pool_cpu is None or base is None or external else pool_cpu - base,
            cpu_basis=None if base is None else ("paired probes" if alone is not None else "serial case"),
        )
        empty = of("dispatch", p.pool, p.workers, chunksize=1)
        latency = empty.extra.get("latency_samples_s") if empty else None
        if empty is not None and isinstance(latency, list) and latency:
            base_wall = serial_dispatch.median / serial_dispatch.tasks * 1e3 if serial_dispatch else 0.0
            base_cpu = (_cpu_per_task_ms(serial_dispatch) or 0.0) if serial_dispatch else 0.0
            cpu = _cpu_per_task_ms(empty)
            latency_ms = float(np.median(latency)) * 1e3
            empty_cpu = None if cpu is None else max(cpu - base_cpu, 0.0)
            model = dataclasses.replace(
                model,
                latency_ms=latency_ms,
                empty_cpu_ms=empty_cpu,
                wall_ms=max(empty.median / empty.tasks * 1e3 - base_wall, 0.0),
            )
        out.append(model)
    return sorted(out, key=lambda m: m.pool)


def cold_start_ms(records: Iterable[Record]) -> dict[str, float]:
    """Median time from pool creation to the first result, in ms, per pool."""
    return {r.pool: r.median * 1e3 for r in records if r.case == "cold_start"}


def memory_per_worker(records: Iterable[Record], key: str = "uss_tree_bytes") -> dict[str, float]:
    """Per pool: bytes each added worker costs, the slope of tree memory against worker count.

    With one worker count only, the difference from the no-pool baseline is used instead.
    """
    by_pool: dict[str, list[tuple[int, float]]] = defaultdict(list)
    base: dict[str, float] = {}
    for r in records:
        value = r.extra.get(key)
        if r.case == "memory" and r.executor != "serial" and isinstance(value, int | float):
            by_pool[r.pool].append((r.workers, float(value)))
            before = r.extra.get(key.replace("_tree_", "_base_"))
            if isinstance(before, int | float):
                base[r.pool] = float(before)
    out = {}
    for pool, pairs in by_pool.items():
        workers = sorted({w for w, _ in pairs})
        if len(workers) >= 2:
            x, y = zip(*pairs, strict=True)
            out[pool] = float(np.polyfit(np.array(x, float), np.array(y, float), 1)[0])
        elif pool in base:
            w, v = pairs[0]
            out[pool] = (v - base[pool]) / w
    return out


#: Under a CFS quota a round shorter than this many periods is timed by luck: it either runs free or
#: meets a throttling stall of up to one period. Seen here in a cpus-1 container: quick profile,
#: rounds of 0.3 periods, the same batch took 27 ms or 75-90 ms and speedups ranged 0.3x-3.7x;
#: default profile, rounds of 3.8 periods, rounds stayed within about 12 % of their median and
#: CPU-bound speedups within 0.80-1.00 of their ideal of 1.
MIN_PERIODS_PER_ROUND = 3


def short_rounds_under_quota(records: Iterable[Record]) -> float | None:
    """The median scaling round in CFS periods if the run has a quota and rounds are too short, else None."""
    records = [r for r in records if r.case == "scaling"]
    if not records:
        return None
    info = records[0].run.poolbench
    period_us = info.get("cpu_period_us")
    if info.get("cpu_quota") is None or not period_us:
        return None
    periods = float(np.median([r.median for r in records])) / (period_us / 1e6)
    return periods if periods < MIN_PERIODS_PER_ROUND else None


# --- the report's section of the overhead model ---------------------------------------------------------


def _ms(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} ms"


def _band(m) -> str:
    if m.model_ms is None:
        return "—"
    if m.call_ms is None:
        return f"{m.model_ms:.2f} ms (CPU only)"
    return f"{m.model_ms:.2f} ms [{m.model_lo:.2f}, {m.model_hi:.2f}]"


def model_lines(view: RunView) -> list[str]:
    """The cost per task of each pool at W = C (scripts/costs.py ``overhead_model``): by the clock, by
    CPU time and a call's latency, and as the empty tasks would predict it."""
    models = overhead_model(view.records, points=view.points)
    if not models:
        return []
    rows = []
    for m in models:
        rows.append(
            (
                f"{m.pool} w{m.workers}",
                f"{m.measured_ms:.2f} ms [{m.measured_lo:.2f}, {m.measured_hi:.2f}] "
                f"({m.tasks} tasks of {m.task_ms:.1f} ms)",
                _ms(m.cpu_ms),
                _ms(m.call_ms),
                _band(m),
                "—" if m.gap is None else f"{m.gap:+.0%}" + ("" if m.within else " (off)"),
                "—" if m.wall_ms is None else f"{m.wall_ms * 1e3:.0f} µs",
                _ms(m.empty_cpu_ms),
                _ms(m.empty_model_ms) + ("" if m.empty_ratio is None else f" (measured {m.empty_ratio:.1f}×)"),
                _ms(m.break_even_ms(), 1),
                _ms(m.break_even_ms(long_batch=True), 1),
            )
        )
    header = [
        "pool",
        f"cost per task, by the clock (`{models[0].workload}`, {CONFIDENCE:.0%} interval)",
        "CPU per task beyond a task alone",
        "one map call's latency over the batch",
        "model [band]",
        "clock vs model",
        "empty task, long batch",
        "CPU per empty task",
        "empty tasks predict",
        f"task length for < {OVERHEAD_SHARE:.0%}, this batch",
        "… a long batch",
    ]
    lines = [
        "",
        "What a pool costs per task with every CPU busy. By the clock: serial task time × (ideal / speedup − 1) "
        "in the scaling case. Modelled by two other measurements (scripts/costs.py `overhead_model`): the CPU "
        "time the whole process tree spent per task in the pool's case less the CPU one task takes alone (the "
        "serial probes paired with its rounds), read from the kernel's counters; and one `map` call's latency "
        "(the dispatch case's map of one empty task per worker) spread over the batch, W × latency / n. With "
        "every CPU busy a task costs at least its CPU and at most that plus the call's latency (the CPUs idle "
        "through all of it): the band; the model is its middle. Beside them, the dispatch case's empty tasks "
        "and what they would predict (W × latency / n + their CPU per task): a real task can cost several "
        "times an empty one.",
        "",
        *markdown_table(header, rows),
    ]
    for m in (m for m in models if m.within is False):
        lines += [
            "",
            f"`{m.pool}`: the cost per task by the clock ({m.measured_ms:.2f} ms, interval "
            f"{m.measured_lo:.2f}–{m.measured_hi:.2f}) is {m.gap:+.0%} from the model ({_band(m)}), outside "
            f"its band and beyond {MODEL_TOLERANCE:.0%}: "
            + (
                "the CPUs idled longer than a call's latency (waits for a task, a busy host); the "
                "recommendation table's 'what held it back' column measures that part."
                if m.gap > 0
                else "the pool's case used more CPU than its wall time holds, as when another program "
                "took CPU from the serial probes: re-run it."
            ),
        ]
    return lines
