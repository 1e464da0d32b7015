"""Why a scaling point falls short of its ideal: what its own run recorded about where the time went, and the cause.

A pool's efficiency splits into two measured factors. With U the CPUs its process tree kept busy
(tree CPU time / wall time of the timed rounds), A = min(W, C) the CPUs it could use, and k its CPU
time per task over serial's:

    speedup = serial time / pool time ≈ U / k        (serial keeps one CPU busy)

so a pool falls short either because CPUs stood idle (U < A: the GIL, a CPU quota, a parent that
cannot feed the workers fast enough, something unrecorded) or because each task cost more CPU than
it does serially (k > 1: page faults, contention for memory bandwidth and caches, pickling). Each
signal is read from the run's own records (:class:`Signals`); the largest share names the
:class:`Cause` (:func:`explain`). Read by the analysis (scripts/analysis.py) for every point.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from common import checks
from common.checks import Defect
from common.denied import (
    DENIED_SHARE,
    STEAL_SHARE,
    denied_summary,
    denied_wait_share,
    steal_share,
)
from common.executors import family, gil_bound
from common.executors import of as executor_of
from scripts.results import Record


def cpus_busy(record: Record) -> float | None:
    """CPUs a record's process tree kept busy on average: tree CPU time / timed wall time (None: not recorded)."""
    cpu = record.extra.get("cpu_time_s")
    wall = sum(record.samples)
    if not isinstance(cpu, int | float) or wall <= 0 or len(record.samples) < 2:
        return None
    return cpu / wall


#: A share of the ideal smaller than this is no cause worth naming.
MIN_SHARE = 0.03
#: Page faults per task above the other side's that count as an allocator effect: 64 faults are
#: 256 KiB of fresh 4 KiB pages, a few hundred microseconds per task (about 2.2 µs per fault here:
#: 4 104 faults added 9 ms to a 10 ms task under --malloc fixed).
EXTRA_FAULTS_PER_TASK = 64
#: The share of its wall time a cgroup may spend throttled before the quota counts as a cause.
THROTTLED_SHARE = 0.05


@dataclass(frozen=True)
class Signals:
    """What one scaling point's run recorded about where its time went; None where not recorded."""

    cpus_used: float | None  # U: tree CPU time / timed wall time
    cpus_usable: float  # A: min(workers, effective CPUs)
    cpu_per_task_ratio: float | None  # k: pool CPU time per task / serial's
    faults_per_task: float | None  # minor page faults of the tree per task, timed rounds
    serial_faults_per_task: float | None  # the same for the run's serial case
    throttled_periods: int | None  # CFS periods throttled during the timed rounds
    periods: float | None  # CFS periods the timed rounds spanned (under a quota)
    throttled_share: float | None  # throttled time / (timed wall time × the CPUs it could run on)
    dispatch_us: float | None  # this pool's empty task (dispatch case, chunksize 1) less serial's, µs
    dispatch_share: float | None  # dispatch_us × tasks / the pool's median round
    gil_bound: bool  # GIL-holding work on threads of an interpreter whose GIL was on
    wait_share: float | None = None  # run-queue wait its own CPU use cannot explain, over the CPU time it could use
    steal_share: float | None = None  # the hypervisor's steal over the host's CPU time

    run_denied: bool = False  # the run as a whole was denied CPU (common.denied.denied_summary)

    @property
    def denied(self) -> bool:
        """Whether this point was among what a neighbour took CPU from: its run was denied CPU, and the
        point's own share passes the stated one (issue #23). A case alone is not judged: a process
        pool's helper threads wait for its own busy workers, which reads high in short rounds."""
        own = (self.wait_share or 0.0) > DENIED_SHARE or (self.steal_share or 0.0) > STEAL_SHARE
        return self.run_denied and own

    def as_dict(self) -> dict:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}
        return {**out, "denied": self.denied}


@dataclass(frozen=True)
class Cause:
    """The largest measured reason a point is off its ideal: a key, a sentence, and the share it explains."""

    cause: str  # gil, quota, dispatch, denied, idle, allocator, contention, io, defect, none
    text: str  # "threads used 1.0 of 2 CPUs: the GIL"
    share: float  # estimated share of the ideal lost (negative: gained, above the ideal)


def _per_task(record: Record | None, key: str) -> float | None:
    if record is None:
        return None
    value = record.extra.get(key)
    rounds = len(record.samples)
    if not isinstance(value, int | float) or not record.tasks or not rounds:
        return None
    return float(value) / (record.tasks * rounds)


def signals_of(
    pool: Record, serial: Record | None, dispatch_us: dict[tuple[str, int], float], run_was_denied: bool = False
) -> Signals:
    """The :class:`Signals` of ``pool``'s scaling case, against its run's ``serial`` case and dispatch costs."""
    info = pool.run.poolbench
    wall = sum(pool.samples)
    usable = min(float(pool.workers), pool.run.effective_cpus)
    cpu, serial_cpu = _per_task(pool, "cpu_time_s"), _per_task(serial, "cpu_time_s")
    throttled_s = pool.extra.get("throttled_s")
    # The kernel adds up throttled time per CPU run queue (cgroup v1 throttled_time, v2 throttled_usec),
    # so a cgroup throttled on both of 2 CPUs for a whole round reads 2 rounds' worth.
    lanes = min(int(info.get("cpu_count") or 1), int(info.get("affinity_cpus") or info.get("cpu_count") or 1))
    period_us = info.get("cpu_period_us")
    under_quota = info.get("cpu_quota") is not None and isinstance(period_us, int | float) and period_us > 0
    cost_s = checks.pool_costs(dispatch_us).get(pool.pool)  # the empty task less serial's, chunksize 1
    cost = cost_s * 1e6 if cost_s is not None else None
    return Signals(
        cpus_used=cpus_busy(pool),
        cpus_usable=usable,
        cpu_per_task_ratio=cpu / serial_cpu if cpu is not None and serial_cpu else None,
        faults_per_task=_per_task(pool, "minor_faults"),
        serial_faults_per_task=_per_task(serial, "minor_faults"),
        throttled_periods=pool.extra.get("throttled_periods"),
        periods=wall / (float(period_us) / 1e6) if under_quota and wall > 0 else None,
        throttled_share=(
            float(throttled_s) / (wall * max(lanes, 1)) if isinstance(throttled_s, int | float) and wall > 0 else None
        ),
        dispatch_us=cost,
        dispatch_share=cost * 1e-6 * pool.tasks / pool.median if cost is not None and pool.median > 0 else None,
        gil_bound=gil_bound(pool.executor, pool.gil, bool(info.get("gil_enabled", True))),
        wait_share=None
        if pool.kind == "io"  # its waits are the disk's, not another program's
        else denied_wait_share(
            pool.extra.get("cpu_wait_s"), pool.extra.get("cpu_time_s"), wall, pool.workers, pool.run.effective_cpus
        ),
        steal_share=steal_share(pool.extra.get("steal_s"), wall, info.get("cpu_count")),
        run_denied=run_was_denied,
    )


def _who(pool: str) -> str:
    spec = executor_of(pool)
    return spec.words if spec is not None else family(pool)


def _idle_causes(pool: str, sig: Signals) -> list[Cause]:
    """Candidates for CPUs that stood idle (U < A), each with the share of the ideal it explains."""
    who, faults = _who(pool), sig.faults_per_task
    used, usable = sig.cpus_used, sig.cpus_usable
    idle = max(0.0, 1.0 - used / usable) if used is not None and usable > 0 else 0.0
    of = f"{used:.1f} of {usable:g} CPUs" if used is not None else ""
    found: list[Cause] = []
    if sig.gil_bound and used is not None:
        found.append(Cause("gil", f"{who} used {of}: the GIL", idle))
    if sig.throttled_share is not None and sig.throttled_share >= THROTTLED_SHARE:
        periods = f" (rounds of {sig.periods:.0f} periods in all)" if sig.periods else ""
        found.append(
            Cause(
                "quota",
                f"throttled in {sig.throttled_periods} CFS periods{periods}, {sig.throttled_share:.0%} of its CPU "
                "time: the CPU quota",
                sig.throttled_share,
            )
        )
    if sig.dispatch_share is not None and sig.dispatch_us is not None:
        found.append(
            Cause(
                "dispatch",
                f"handing out tasks took {sig.dispatch_share:.0%} of the batch ({sig.dispatch_us:,.0f} µs per "
                "task, the dispatch case): the pool's own cost",
                sig.dispatch_share,
            )
        )
    shared_space = (spec := executor_of(pool)) is not None and spec.shares_memory and spec.cost_rank is not None
    if shared_space and faults is not None and faults >= EXTRA_FAULTS_PER_TASK and used is not None:
        # one address space: its page faults take turns on the process's memory map, so CPUs idle
        found.append(
            Cause(
                "allocator",
                f"{who} took {faults:,.0f} page faults per task in one address space, where faults take turns "
                f"({of} busy): the allocator",
                idle,
            )
        )
    if sig.denied:
        share = max(sig.wait_share or 0.0, sig.steal_share or 0.0)
        what = (
            f"waited for a CPU {sig.wait_share:.0%} of the CPU time it could use"
            if (sig.wait_share or 0.0) >= (sig.steal_share or 0.0)
            else f"the hypervisor stole {sig.steal_share:.0%} of the host's CPU time"
        )
        found.append(Cause("denied", f"{who} {what}: another program shared the CPUs", share))
    if not found and idle > 0:
        found.append(Cause("idle", f"{who} kept {of} busy: CPUs stood idle for a reason not recorded", idle))
    return found


def _inflation_cause(pool: str, sig: Signals) -> Cause | None:
    """The candidate for CPU time per task above serial's (k > 1): page faults serial did not take, or the rest."""
    k = sig.cpu_per_task_ratio
    if k is None:
        return None
    inflation = max(0.0, 1.0 - 1.0 / k)
    faults, serial_faults = sig.faults_per_task, sig.serial_faults_per_task or 0.0
    extra = faults - serial_faults if faults is not None else None
    if extra is not None and extra >= EXTRA_FAULTS_PER_TASK and extra >= serial_faults:
        return Cause(
            "allocator",
            f"{_who(pool)} took {faults:,.0f} page faults per task, serial {serial_faults:,.0f}: the allocator",
            inflation,
        )
    if inflation <= 0:
        return None
    return Cause(
        "contention",
        f"each task took {k:.2f}× its serial CPU time: the pool's own CPU work (pickling, scheduling) "
        "or contention for memory bandwidth and caches (not measured apart)",
        inflation,
    )


def _defect_cause(pool: str, efficiency: float, sig: Signals, defect: Defect) -> Cause:
    """A measurement defect (common/checks.py): above its physical limit (the reference paid for something the
    pool did not), or a pool whose one-worker A/A test failed (its workers ran the tasks slower)."""
    if defect.below:
        return Cause(
            "defect",
            f"its one-worker pool failed the A/A test in this run ({defect.name} {defect.estimate.value:.2f}× where "
            f"the run's other one-worker pools point to {defect.limit:.2f}×): its workers ran the tasks slower than "
            "the reference, a measurement defect; not judged",
            abs(1.0 - efficiency),
        )
    faults, serial_faults = sig.faults_per_task, sig.serial_faults_per_task
    if faults is not None and serial_faults is not None and serial_faults - faults >= EXTRA_FAULTS_PER_TASK:
        return Cause(
            "allocator",
            f"serial took {serial_faults:,.0f} page faults per task, {_who(pool)} {faults:,.0f}: the allocator "
            "slowed the baseline (run with the default --malloc neutral)",
            1.0 - efficiency,
        )
    return Cause(
        "defect",
        "above its physical limit beyond this run's noise: a measurement defect, not a speedup (the reference "
        "or the machine misled the run)",
        1.0 - efficiency,
    )


def explain(
    pool: str, kind: str, efficiency: float, sig: Signals, *, efficiency_hi: float, defect: Defect | None = None
) -> Cause | None:
    """Why a point sits off its ideal, from its :class:`Signals`; None where its interval reaches its ideal.

    Below: only a shortfall beyond the run's noise (the whole interval below the ideal) is explained.
    A point flagged as a measurement defect (common/checks.py ``run_defects``) is named as one: above
    its limit, with the allocator as its cause where the serial side took the page faults the pool did
    not; or its pool's one-worker A/A test failed (every worker count of that pool and workload).
    """
    if pool == "serial":
        return None
    if defect is not None:
        return _defect_cause(pool, efficiency, sig, defect)
    if efficiency_hi >= 1.0:
        return None
    if kind == "io":
        return Cause("io", "waiting on I/O: the disk or the wait itself bounds it, not the CPUs", 1.0 - efficiency)
    found = _idle_causes(pool, sig)
    if (inflated := _inflation_cause(pool, sig)) is not None:
        found.append(inflated)
    best = max(found, key=lambda c: c.share, default=None)
    if best is None or best.share < MIN_SHARE:
        return Cause("none", "no recorded signal accounts for it (noise, or a cause not measured)", 1.0 - efficiency)
    return best


def run_denied(records: Iterable[Record]) -> dict:
    """common.denied.denied_summary of one run's scaling cases: was it denied CPU, and how much."""
    records = [r for r in records if r.case == "scaling" and r.kind != "io"]
    if not records:
        return denied_summary([], 1.0, None)
    run = records[0].run
    cases = [
        (r.extra.get("cpu_wait_s"), r.extra.get("steal_s"), r.extra.get("cpu_time_s"), float(sum(r.samples)), r.workers)
        for r in records
    ]
    return denied_summary(cases, run.effective_cpus, run.poolbench.get("cpu_count"))


def dispatch_costs(records: Iterable[Record]) -> dict[str, dict[tuple[str, int], float]]:
    """Per run (source): the dispatch case's median µs per empty task, by (pool, chunksize)."""
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.case == "dispatch":
            by_source[r.run.source].append(r)
    return {source: per_task_us(rs, "dispatch") for source, rs in by_source.items()}


def per_task_us(records: Iterable[Record], case: str) -> dict[tuple[str, int], float]:
    """Median round time per task in microseconds, by (pool, chunksize), for dispatch or payload cases."""
    return checks.per_task_us((r.pool, r.chunksize, r.median, r.tasks) for r in records if r.case == case)
