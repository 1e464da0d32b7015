"""Derived numbers, computed from loaded records only: speedup, efficiency, and per-unit pool costs.

Speedup = serial median / pool median. Since schema 2 each scaling case of a pool times a serial
round of the same batch right after each of its own rounds (``serial_samples_s``), so a slow phase
of a shared host hits both sides alike: the speedup is the median of those paired serial rounds
over the median of the pool's rounds. Older results (and the serial case itself) fall back to the
run's separate serial case, measured seconds or minutes apart.

Every speedup carries a 95 % interval: a bootstrap over rounds (:data:`RESAMPLES` resamples of the
rounds with replacement, the median of each side, the 2.5th and 97.5th percentiles of the ratios).
Paired rounds are resampled together (the same round indices on both sides), so drift that hits a
pair alike stays out of the interval; unpaired sides are resampled independently. Each case's
resampling uses its own fixed seed (from its name), so the same results always give the same
interval. Efficiency and its interval are the speedup's divided by the ideal.

The ideal a speedup is held against:

* CPU-bound kinds: ``min(C, N / ceil(N / W)) / min(C, 1)`` for N equal tasks on W workers and C
  effective CPUs. The middle term is the uneven-last-batch bound (it equals W when W divides N);
  the divisor is what the serial baseline itself had: under a quota of 0.5 CPUs serial runs at half
  speed too, so no pool can beat it and the ideal speedup is 1.
* I/O (``kind == "io"``): ``N / ceil(N / W)``: waiting overlaps whatever the CPU count.

Efficiency = speedup / ideal: 1.0 means the pool got everything the hardware and the batch allow.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from common.schema import speedup
from scripts.results import Record

#: Confidence of every interval the report, plots, summary.json and scripts.compare show.
CONFIDENCE = 0.95
#: Bootstrap resamples per interval: the 2.5th percentile of 4000 draws moves by well under 1 %
#: between seeds for 5 to 10 rounds.
RESAMPLES = 4000


def boot_medians(samples: Sequence[float], rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of ``samples`` (with replacement)."""
    data = np.asarray(samples, dtype=float)
    idx = rng.integers(0, len(data), size=(resamples, len(data)))
    return np.median(data[idx], axis=1)


def interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap ``draws`` (percentile method)."""
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return float(lo), float(hi)


def seeded(name: str) -> np.random.Generator:
    """A generator seeded from ``name``: the same case always draws the same resamples."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def speedup_point(pool: Record, serial: Record) -> float:
    """Serial median / pool median, the serial side from the paired rounds when the case has them."""
    return speedup(pool.paired_serial or serial.samples, pool.samples)


def speedup_draws(pool: Record, serial: Record, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """Bootstrap draws of :func:`speedup_point`: paired rounds resampled together, else each side alone."""
    paired = pool.paired_serial
    if paired:
        p, s = np.asarray(pool.samples, dtype=float), np.asarray(paired, dtype=float)
        idx = rng.integers(0, len(p), size=(resamples, len(p)))
        return np.median(s[idx], axis=1) / np.median(p[idx], axis=1)
    return boot_medians(serial.samples, rng, resamples) / boot_medians(pool.samples, rng, resamples)


def ideal_speedup(kind: str, workers: int, tasks: int, cpus: float) -> float:
    """The best speedup W workers can reach on a batch of ``tasks`` equal tasks (see module doc)."""
    batches = tasks / math.ceil(tasks / workers) if tasks else float(workers)
    if kind == "io":
        return batches
    return min(cpus, batches) / min(cpus, 1.0)


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
    speedup_lo: float  # 95 % interval (module doc)
    speedup_hi: float
    ideal: float
    cpu_busy: float | None  # CPUs kept busy on average: tree CPU time / timed wall time
    rounds: int = 0  # timed rounds of the pool
    paired: bool = False  # serial rounds interleaved with the pool's (schema 2)
    start_method: str | None = None
    python: str | None = None  # the Python version that ran it
    recommended_workers: int = 1  # as the run recorded it (machine_info), never re-derived

    @property
    def efficiency(self) -> float:
        return self.speedup / self.ideal

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


def scaling_points(records: Iterable[Record]) -> list[ScalingPoint]:
    """Speedup and efficiency of every scaling case that has a serial baseline in its own run."""
    by_run: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.case == "scaling":
            by_run[(r.run.source, r.workload)].append(r)
    points = []
    for group in by_run.values():
        serial = next((r for r in group if r.executor == "serial"), None)
        if serial is None:
            continue
        for r in group:
            cpus = r.run.effective_cpus
            if r is serial:
                speedup, lo, hi = 1.0, 1.0, 1.0
            else:
                speedup = speedup_point(r, serial)
                lo, hi = interval(speedup_draws(r, serial, seeded(f"{r.run.source}:{r.name}")))
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
                    speedup=speedup,
                    speedup_lo=min(lo, speedup),
                    speedup_hi=max(hi, speedup),
                    ideal=ideal_speedup(r.kind, r.workers, r.tasks, cpus),
                    cpu_busy=_cpu_busy(r),
                    rounds=len(r.samples),
                    paired=paired is not None,
                    start_method=r.start_method,
                    python=(r.run.poolbench.get("versions") or {}).get("python"),
                    recommended_workers=int(r.run.poolbench["recommended_workers"]),
                )
            )
    return sorted(points, key=lambda p: (p.label, p.workload, p.pool, p.workers))


def find(points: Iterable[ScalingPoint], workload: str, pool: str, workers: int) -> ScalingPoint | None:
    """The point for ``workload`` on ``pool`` (``thread``, ``process``, ``process/fork``…) at ``workers``."""
    for p in points:
        if p.workload == workload and p.workers == workers and (p.pool == pool or p.pool.split("/")[0] == pool):
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
    thread: ScalingPoint | None
    interpreter: ScalingPoint | None
    processes: list[ScalingPoint]  # one per start method
    memory_per_worker: dict[str, float]  # USS bytes per added worker, interpreter and process pools
    gil_twin_ratio: float | None = None  # a free-threaded build's serial time over its GIL twin's (3.13t / 3.13)


def build_rows(by_build: dict[str, list[Record]], workload: str, workers: int | None = None) -> list[BuildRow]:
    """Per build (one run each), in build order: ``workload``'s serial time and pools at ``workers``
    (None: each run's recorded recommended workers)."""
    rows = []
    for b in sorted(by_build, key=build_order):
        records = by_build[b]
        info = records[0].run.poolbench
        at = workers if workers is not None else int(info["recommended_workers"])
        points = [p for p in scaling_points(records) if p.workload == workload and p.workers == at]
        mem = memory_per_worker(records)
        twin = by_build.get(b.rstrip("t")) if b.endswith("t") else None
        serial, twin_serial = serial_median_s(records, workload), twin and serial_median_s(twin, workload)
        rows.append(
            BuildRow(
                build=b,
                python=str((info.get("versions") or {}).get("python", "?")),
                gil_enabled=bool(info.get("gil_enabled", True)),
                serial_s=serial,
                thread=next((p for p in points if p.pool == "thread"), None),
                interpreter=next((p for p in points if p.pool == "interpreter"), None),
                processes=[p for p in points if p.pool.startswith("process")],
                memory_per_worker={
                    k: v for k, v in sorted(mem.items()) if k == "interpreter" or k.startswith("process")
                },
                gil_twin_ratio=serial / twin_serial if serial and twin_serial else None,
            )
        )
    return rows
