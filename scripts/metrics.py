"""Derived numbers, computed from loaded records only: speedup, efficiency, and per-unit pool costs.

Every speedup comes from common/reference.py, the one home that the suite's end-of-run table calls
too: a scaling case of a pool brackets its rounds with serial probes, and its speedup is the ratio
of the two throughputs, pass by pass (results of schema 2-6 paired one probe, or a serial batch,
after each round, read by the same code; results without probes, schema 1, fall back to the run's
separate serial case). Each figure carries two 95 % intervals built from its pass-level values,
their spread pooled with the other points of the same workload in the same run: the confidence
interval of this run's figure (``speedup_lo``..``speedup_hi``) and the prediction interval of the
next run's figure under the same plan (``prediction_lo``..``prediction_hi``). Efficiency and its
intervals are the speedup's divided by the ideal (common/reference.py ``ideal_speedup``: min(W, C)
for CPU-bound work, with the uneven last batch; N / ceil(N / W) for I/O).

The physical limit is a check, never a cap: a point above its ideal beyond the run's noise, the
run's one-worker pools together above 1, or the serial probes together slower than the serial
batch, is a measurement defect (common/reference.py ``run_defects``), named in the report and
summary.json. Time draws (the gate's ``time`` and ``work`` rows) are a bootstrap of rounds, by pass.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from common.executors import Pool, cost_order, family
from common.executors import of as executor_of
from common.reference import Estimate, estimates, ideal_speedup, run_defects, unpaired
from common.reference import capacity as reference_capacity
from common.schema import (
    DENIED_SHARE,
    STEAL_SHARE,
    denied_summary,
    denied_wait_share,
    steal_share,
)
from scripts.results import Record

#: Confidence of every interval the report, plots, summary.json and scripts.compare show.
CONFIDENCE = 0.95
#: Bootstrap resamples per interval: the 2.5th percentile of 4000 draws moves by well under 1 %
#: between seeds for 5 to 10 rounds.
RESAMPLES = 4000


def resample_index(
    count: int, passes: Sequence[int], rng: np.random.Generator, resamples: int = RESAMPLES
) -> np.ndarray:
    """Bootstrap indices into ``count`` samples, one row per resample.

    One pass (``passes`` empty or a single entry): rounds drawn with replacement. Several (rounds
    per pass, in sample order): a two-level draw, the passes with replacement, then as many rounds
    as the largest pass holds from within each chosen pass.
    """
    if len(passes) < 2 or sum(passes) != count:
        return rng.integers(0, count, size=(resamples, count))
    sizes = np.asarray(passes, dtype=int)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    chosen = rng.integers(0, len(sizes), size=(resamples, len(sizes)))
    within = np.floor(rng.random((resamples, len(sizes), int(sizes.max()))) * sizes[chosen][..., None]).astype(int)
    return (starts[chosen][..., None] + within).reshape(resamples, -1)


def boot_medians(
    samples: Sequence[float], rng: np.random.Generator, resamples: int = RESAMPLES, passes: Sequence[int] = ()
) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of ``samples`` (with replacement; by pass when given)."""
    data = np.asarray(samples, dtype=float)
    return np.median(data[resample_index(len(data), passes, rng, resamples)], axis=1)


def record_medians(record: Record, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """:func:`boot_medians` of a record's rounds, by pass when it has several."""
    return boot_medians(record.samples, rng, resamples, record.passes)


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap ``draws`` (percentile method)."""
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return float(lo), float(hi)


def seeded(name: str) -> np.random.Generator:
    """A generator seeded from ``name``: the same case always draws the same resamples."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def estimate_draws(estimate: Estimate, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """Draws of a speedup from its estimate's sampling distribution (log scale: Student's t with the
    estimate's degrees of freedom, scaled by its standard error): the gate (scripts/compare.py) combines
    two sides' draws, whose intervals are then the report's. A figure without a spread draws itself."""
    if estimate.df == 0 or estimate.log_se <= 0:
        return np.full(resamples, estimate.value)
    return np.exp(math.log(estimate.value) + estimate.log_se * rng.standard_t(estimate.df, size=resamples))


def capacity(r: Record) -> float:
    """The CPUs a record's workers could use (common/reference.py ``capacity``, from its run's machine_info)."""
    return reference_capacity(r.run.poolbench, r.executor)


@dataclass(frozen=True)
class ScalingPoint:
    """One pool at one worker count, against the serial baseline of the same run."""

    label: str
    source: str
    workload: str
    kind: str
    gil: str
    pool: str
    workers: int
    tasks: int
    effective_cpus: float
    median_s: float
    serial_s: float  # median serial round this speedup divides: paired with the pool's rounds, or the serial case's
    speedup: float
    speedup_lo: float  # 95 % confidence interval of this run's figure (common/reference.py Estimate)
    speedup_hi: float
    ideal: float
    cpu_busy: float | None  # CPUs kept busy on average: tree CPU time / timed wall time
    rounds: int = 0  # timed rounds of the pool, all passes
    passes: int = 1  # passes the rounds came from (bench/plan.py)
    paired: bool = False  # serial references interleaved with the pool's rounds (schema 2)
    start_method: str | None = None
    python: str | None = None  # the Python version that ran it
    recommended_workers: int = 1  # as the run recorded it (machine_info), never re-derived
    signals: Signals | None = None  # what the run recorded about where the time went
    cause: Cause | None = None  # the largest measured reason it is off its ideal (None: near it)
    #: 95 % prediction interval of the next run's figure under the same plan (common/reference.py Estimate)
    prediction_lo: float = 0.0
    prediction_hi: float = 0.0
    #: Above its physical limit beyond the run's noise (common/reference.py run_defects).
    defect: bool = False
    #: Serial points only: the probes against the serial batch (common/reference.py reference_bias).
    bias: Estimate | None = None
    #: The figure as common/reference.py estimated it (its spread and degrees of freedom too).
    figure: Estimate | None = None
    #: The task parameter the run used (calibrated per host, bench/plan.py): runs compare as the same
    #: work only where it is equal.
    task_param: object = None

    @property
    def estimate(self) -> Estimate:
        """The figure and its two intervals as common/reference.py holds them."""
        if self.figure is not None:
            return self.figure
        return Estimate(self.speedup, self.speedup_lo, self.speedup_hi, self.prediction_lo, self.prediction_hi)

    @property
    def efficiency(self) -> float:
        return self.speedup / self.ideal

    @property
    def executor(self) -> str:
        """The executor of :attr:`pool` (``process/fork`` → ``process``)."""
        return family(self.pool)

    @property
    def efficiency_lo(self) -> float:
        return self.speedup_lo / self.ideal

    @property
    def efficiency_hi(self) -> float:
        return self.speedup_hi / self.ideal


def _cpu_busy(record: Record) -> float | None:
    cpu = record.extra.get("cpu_time_s")
    wall = sum(record.samples)
    if not isinstance(cpu, int | float) or wall <= 0 or len(record.samples) < 2:
        return None
    return cpu / wall


# --- why a point falls short of its ideal ------------------------------------------------------------
#
# A pool's efficiency splits into two measured factors. With U the CPUs its process tree kept busy
# (tree CPU time / wall time of the timed rounds), A = min(W, C) the CPUs it could use, and k its
# CPU time per task over serial's:
#
#     speedup = serial time / pool time ≈ U / k        (serial keeps one CPU busy)
#
# so a pool falls short either because CPUs stood idle (U < A: the GIL, a CPU quota, a parent that
# cannot feed the workers fast enough, something unrecorded) or because each task cost more CPU
# than it does serially (k > 1: page faults, contention for memory bandwidth and caches, pickling).
# Each signal below is read from the run's own records; the largest share names the cause.

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

    run_denied: bool = False  # the run as a whole was denied CPU (common.schema.denied_summary)

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
    empty, baseline = dispatch_us.get((pool.pool, 1)), dispatch_us.get(("serial", 1))
    cost = max(empty - (baseline or 0.0), 0.0) if empty is not None else None
    return Signals(
        cpus_used=_cpu_busy(pool),
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
        gil_bound=pool.gil == "holds" and pool.executor == "thread" and bool(info.get("gil_enabled", True)),
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


def _defect_cause(pool: str, efficiency: float, sig: Signals) -> Cause:
    """A point above its physical limit: the reference paid for something the pool did not."""
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
    pool: str, kind: str, efficiency: float, sig: Signals, *, efficiency_hi: float, defect: bool = False
) -> Cause | None:
    """Why a point sits off its ideal, from its :class:`Signals`; None where its interval reaches its ideal.

    Below: only a shortfall beyond the run's noise (the whole interval below the ideal) is explained.
    Above: a point flagged as a measurement defect (common/reference.py ``run_defects``) is named as
    one, with the allocator as its cause where the serial side took the page faults the pool did not.
    """
    if pool == "serial":
        return None
    if defect:
        return _defect_cause(pool, efficiency, sig)
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
    """common.schema.denied_summary of one run's scaling cases: was it denied CPU, and how much."""
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


def figure_of(pool: Record, serial: Record) -> tuple[float, list[float], bool]:
    """A scaling record's speedup, its pass-level values (common/reference.py) and whether it was paired:
    from its own probes, else (results without probes, schema 1) against its run's serial case."""
    pairing = pool.paired
    if pairing is not None:
        return pairing.speedup(), pairing.values(), True
    value, values = unpaired(serial.samples, pool.samples)
    return value, values, False


def _hashable(value: object) -> object:
    """A task parameter as a value that compares and hashes (JSON gives lists for tuples)."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


def _figures(
    by_run: dict[tuple[str, str], list[Record]],
) -> tuple[dict[tuple[str, str], Record], dict[int, tuple[str, float, list[float]]], set[int]]:
    """Per (run, workload) with a serial case: that case; per record (by id): its group, figure and
    pass-level values (a serial case's: the reference's bias); the ids of paired records."""
    serials: dict[tuple[str, str], Record] = {}
    figures: dict[int, tuple[str, float, list[float]]] = {}
    paired_ids: set[int] = set()
    for (source, workload), group in by_run.items():
        serial = next((r for r in group if r.executor == "serial"), None)
        if serial is None:
            continue
        serials[(source, workload)] = serial
        for r in group:
            if r is serial:
                if (own := r.paired) is not None:
                    figures[id(r)] = (f"{source}:{workload}", own.speedup(), own.values())
                continue
            value, values, was_paired = figure_of(r, serial)
            figures[id(r)] = (f"{source}:{workload}", value, values)
            if was_paired:
                paired_ids.add(id(r))
    return serials, figures, paired_ids


def scaling_points(
    records: Iterable[Record], draws: Callable[[Record, Estimate], np.ndarray] | None = None
) -> list[ScalingPoint]:
    """Speedup and efficiency of every scaling case that has a serial baseline in its own run, each with
    its two intervals (common/reference.py ``estimates``: spreads pooled per run and workload), its
    :class:`Signals`, whether it is a measurement defect, and, off its ideal, its :class:`Cause`.
    A serial point carries the reference's bias (its probes against its batch).

    ``draws(pool, estimate)``: the draws of a pool's speedup (scripts/analysis.py keeps them, so
    that every tool reads the same ones); default: drawn here, seeded as there.
    """
    records = list(records)
    dispatch = dispatch_costs(records)
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_source[r.run.source].append(r)
    denied = {source: bool(run_denied(rs)["denied"]) for source, rs in by_source.items()}
    by_run: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.case == "scaling":
            by_run[(r.run.source, r.workload)].append(r)
    serials, figures, paired_ids = _figures(by_run)
    est = estimates(figures)
    ideals = {
        id(r): ideal_speedup(r.kind, r.workers, r.tasks, capacity(r))
        for key in serials
        for r in by_run[key]
        if r.executor != "serial"
    }
    flagged: set[int] = set()
    for source in by_source:
        pools = [r for (s, _), group in by_run.items() if s == source and (s, _) in serials for r in group]
        named = {f"{r.workload} {r.pool} w{r.workers}": r for r in pools if r.executor != "serial"}
        tested = [(n, r.workers, r.kind, est[id(r)], ideals[id(r)]) for n, r in named.items()]
        flagged |= {id(named[n]) for n, _, _ in run_defects(tested) if n in named}
    points = []
    for key, serial in serials.items():
        for r in by_run[key]:
            cpus = capacity(r)
            sig = signals_of(r, serial, dispatch.get(r.run.source, {}), denied.get(r.run.source, False))
            if r is serial:
                e = Estimate(1.0, 1.0, 1.0, 1.0, 1.0)
                ideal = ideal_speedup(r.kind, r.workers, r.tasks, cpus)
                bias = est.get(id(r))
            else:
                e, ideal, bias = est[id(r)], ideals[id(r)], None
                if draws is not None:
                    draws(r, e)
            paired = r.paired_serial
            points.append(
                ScalingPoint(
                    label=r.run.label,
                    source=r.run.source,
                    workload=r.workload,
                    kind=r.kind,
                    gil=r.gil,
                    pool=r.pool,
                    workers=r.workers,
                    tasks=r.tasks,
                    effective_cpus=cpus,
                    median_s=r.median,
                    serial_s=float(np.median(paired)) if paired else serial.median,
                    speedup=e.value,
                    speedup_lo=e.low,
                    speedup_hi=e.high,
                    ideal=ideal,
                    cpu_busy=_cpu_busy(r),
                    rounds=len(r.samples),
                    passes=max(len(r.passes), 1),
                    paired=id(r) in paired_ids,
                    start_method=r.start_method,
                    python=(r.run.poolbench.get("versions") or {}).get("python"),
                    recommended_workers=int(r.run.poolbench["recommended_workers"]),
                    signals=sig,
                    cause=explain(
                        r.pool, r.kind, e.value / ideal, sig, efficiency_hi=e.high / ideal, defect=id(r) in flagged
                    ),
                    prediction_lo=e.prediction_low,
                    prediction_hi=e.prediction_high,
                    defect=id(r) in flagged,
                    bias=bias,
                    figure=e,
                    task_param=_hashable(r.extra.get("task_param")),
                )
            )
    return sorted(points, key=lambda p: (p.label, p.workload, p.pool, p.workers))


def run_checks(points: Sequence[ScalingPoint]) -> list[tuple[str, Estimate, float]]:
    """One run's measurement defects (common/reference.py ``run_defects``): points above their limit, the
    one-worker pools together, and the serial probes against the serial batch together."""
    named = [
        (f"{p.workload} {p.pool} w{p.workers}", p.workers, p.kind, p.estimate, p.ideal)
        for p in points
        if p.pool != "serial"
    ]
    return run_defects(named, [p.bias for p in points if p.bias is not None])


def find(points: Iterable[ScalingPoint], workload: str, pool: str, workers: int) -> ScalingPoint | None:
    """The point for ``workload`` on ``pool`` (``thread``, ``process``, ``process/fork``…) at ``workers``."""
    for p in points:
        if p.workload == workload and p.workers == workers and pool in (p.pool, p.executor):
            return p
    return None


def per_task_us(records: Iterable[Record], case: str) -> dict[tuple[str, int], float]:
    """Median round time per task in microseconds, by (pool, chunksize), for dispatch or payload cases."""
    out = {}
    for r in records:
        if r.case == case:
            out[(r.pool, r.chunksize)] = r.median / r.tasks * 1e6
    return out


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


@dataclass(frozen=True)
class DefaultWorkers:
    """One executor on one workload in one run: its default size against the recommended one."""

    label: str
    workload: str
    pool: str
    default_workers: int
    recommended_workers: int
    default_s: float
    recommended_s: float
    default_throttled: int | None
    recommended_throttled: int | None

    @property
    def ratio(self) -> float:
        """Default time / recommended time: above 1, the default was slower."""
        return self.default_s / self.recommended_s


def default_workers(records: Iterable[Record]) -> list[DefaultWorkers]:
    """Pairs of default_workers cases (``max_workers=None`` and ``=recommended_workers``) per run."""
    cases: dict[tuple[str, str, str], dict[str, Record]] = defaultdict(dict)
    for r in records:
        if r.case == "default_workers":
            cases[(r.run.source, r.workload, r.pool)][str(r.extra.get("sizing"))] = r
    out = []
    for (_, workload, pool), pair in cases.items():
        d, rec = pair.get("default"), pair.get("recommended")
        if d is None or rec is None:
            continue
        out.append(
            DefaultWorkers(
                label=d.run.label,
                workload=workload,
                pool=pool,
                default_workers=d.workers,
                recommended_workers=rec.workers,
                default_s=d.median,
                recommended_s=rec.median,
                default_throttled=d.extra.get("throttled_periods"),
                recommended_throttled=rec.extra.get("throttled_periods"),
            )
        )
    return sorted(out, key=lambda x: (x.label, x.workload, x.pool))


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


def build_order(build: str) -> tuple[tuple[int, ...], bool]:
    """Sort key of a Python build: by version, the GIL build before the free-threaded one (3.13, 3.13t)."""
    return tuple(int(x) for x in build.rstrip("t").split(".")), build.endswith("t")


def serial_median_s(records: Iterable[Record], workload: str) -> float | None:
    """Median round of the serial scaling case of ``workload`` (None: not measured)."""
    for r in records:
        if r.case == "scaling" and r.executor == "serial" and r.workload == workload:
            return r.median
    return None


@dataclass(frozen=True)
class BuildRow:
    """One Python build's answer for one workload: what the cross-build tables show."""

    build: str
    python: str
    gil_enabled: bool
    serial_s: float | None
    #: Per executor that measured the workload here (common/executors.py order), its points: one per
    #: variant (start method, configuration).
    pools: dict[str, list[ScalingPoint]]
    memory_per_worker: dict[str, float]  # USS bytes per added worker, pools whose workers are interpreters of their own
    gil_twin_ratio: float | None = None  # a free-threaded build's serial time over its GIL twin's (3.13t / 3.13)
    start_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # cold start, interpreter and process pools
    payload_ms_per_mib: dict[str, float] = dataclasses.field(default_factory=dict)  # the same pools' round trip

    def of(self, executor: str) -> list[ScalingPoint]:
        """This build's points of ``executor`` (empty: not measured here)."""
        return self.pools.get(executor, [])

    @property
    def pool_costs(self) -> bool:
        """Whether this build's run measured start-up or payload for an interpreter or process pool."""
        return bool(self.start_ms or self.payload_ms_per_mib)


def _isolated_pools(by_pool: dict[str, float]) -> dict[str, float]:
    """The pools of ``by_pool`` whose workers each run an interpreter of their own (common/executors.py
    ``isolated``), by name: what a build changes about pools of their own."""
    return {k: v for k, v in sorted(by_pool.items()) if (spec := executor_of(k)) is not None and spec.isolated}


def build_rows(
    by_build: dict[str, list[Record]],
    workload: str,
    workers: int | None = None,
    points_of: Callable[[list[Record]], list[ScalingPoint]] = scaling_points,
) -> list[BuildRow]:
    """Per build (one run each), in build order: ``workload``'s serial time and pools at ``workers``
    (None: each run's recorded recommended workers). ``points_of(records)``: the run's scaling points
    (scripts/analysis.py ``Analysis.points_of``, computed once)."""
    rows = []
    for b in sorted(by_build, key=build_order):
        records = by_build[b]
        info = records[0].run.poolbench
        at = workers if workers is not None else int(info["recommended_workers"])
        points = [p for p in points_of(records) if p.workload == workload and p.workers == at]
        mem = memory_per_worker(records)
        twin = by_build.get(b.rstrip("t")) if b.endswith("t") else None
        serial, twin_serial = serial_median_s(records, workload), twin and serial_median_s(twin, workload)
        rows.append(
            BuildRow(
                build=b,
                python=str((info.get("versions") or {}).get("python", "?")),
                gil_enabled=bool(info.get("gil_enabled", True)),
                serial_s=serial,
                pools={name: found for name in cost_order() if (found := [p for p in points if p.executor == name])},
                memory_per_worker=_isolated_pools(mem),
                gil_twin_ratio=serial / twin_serial if serial and twin_serial else None,
                start_ms=_isolated_pools(cold_start_ms(records)),
                payload_ms_per_mib=_isolated_pools(payload_ms_per_mib(records)),
            )
        )
    return rows
