"""The analysis of one invocation: the loader's records become scaling points, each with its intervals, once.

Every tool (report, plot, claims, compare, agreement, export, evidence) reads an :class:`Analysis`
instead of recomputing. Every speedup comes from common/reference.py, the one home that the suite's
end-of-run table calls too: a scaling case of a pool brackets its rounds with serial probes, and its
speedup is the ratio of the two throughputs, pass by pass (results of schema 2-6 paired one probe, or a
serial batch, after each round, read by the same code; results without probes, schema 1, fall back to
the run's separate serial case). Each figure carries two 95 % intervals built from its pass-level
values, each point's spread moderated toward that of the points like it (common/reference.py ``estimates``: the
same workload and run, the same side of C, by empirical Bayes): the confidence
interval of this run's figure (``speedup_lo``..``speedup_hi``) and the prediction interval of the next
run's figure under the same plan (``prediction_lo``..``prediction_hi``). Efficiency and its intervals
are the speedup's divided by the ideal (common/reference.py ``ideal_speedup``).

The physical limit is a check, never a cap: a point above its ideal beyond the run's noise, the run's
one-worker pools together above 1, or the serial probes (CPU-bound work together, I/O alone) slower
than the serial batch, is a measurement defect (common/checks.py ``run_defects``), named in the report
and summary.json. Each point carries its signals and, off its ideal, its cause (scripts/causes.py).

    records (scripts/results.py) ──► Analysis ──► points, draws, per-run views ──► report · plot · claims · compare

The gate's draws of a speedup come from its estimate (:func:`estimate_draws`); its draws of a time are
a bootstrap of the rounds, by pass; each record's draws are seeded by its results file's name and its
case name (:func:`seeded`), so the same file gives the same draws in any checkout, in any tool.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.checks import Defect, pool_costs, run_defects, solo_expected
from common.executors import family
from common.reference import Estimate, SpreadGroup, estimates, ideal_speedup, spread_group, unpaired
from common.reference import capacity as reference_capacity
from scripts.causes import Cause, Signals, cpus_busy, dispatch_costs, explain, run_denied, signals_of
from scripts.results import Record, Run

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


def record_fastest(record: Record, rng: np.random.Generator, resamples: int = RESAMPLES) -> np.ndarray:
    """The fastest round of ``resamples`` bootstrap resamples of a record's rounds (by pass when it has several):
    draws of :attr:`~scripts.results.Record.fastest`, the gates' time of a case."""
    data = np.asarray(record.samples, dtype=float)
    return np.min(data[resample_index(len(data), record.passes, rng, resamples)], axis=1)


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
    passes: int = 1  # passes the rounds came from (common/plan.py)
    paired: bool = False  # serial references interleaved with the pool's rounds (schema 2)
    variant: str | None = None
    python: str | None = None  # the Python version that ran it
    recommended_workers: int = 1  # as the run recorded it (machine_info), never re-derived
    signals: Signals | None = None  # what the run recorded about where the time went
    cause: Cause | None = None  # the largest measured reason it is off its ideal (None: near it)
    #: 95 % prediction interval of the next run's figure under the same plan (common/reference.py Estimate)
    prediction_lo: float = 0.0
    prediction_hi: float = 0.0
    #: A measurement defect (common/checks.py run_defects): above its physical limit beyond the run's noise,
    #: or a pool whose one-worker A/A test failed in this run (every worker count of that pool and workload).
    defect: bool = False
    #: One-worker pools only: what its A/A test expects, 1 less the pool's own cost (common/checks.py).
    solo_expected: float | None = None
    #: Serial points only: the probes against the serial batch (common/reference.py reference_bias).
    bias: Estimate | None = None
    #: The figure as common/reference.py estimated it (its spread and degrees of freedom too).
    figure: Estimate | None = None
    #: The task parameter the run used (calibrated per host, bench/calibration.py): runs compare as the same
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


def figure_of(pool: Record, serial: Record) -> tuple[float, list[float], bool]:
    """A scaling record's speedup, its pass-level values (common/reference.py) and whether it was paired:
    from its own probes, else (results without probes, schema 1) against its run's serial case."""
    pairing = pool.paired
    if pairing is not None:
        return pairing.speedup(), pairing.values(), True
    value, values = unpaired(serial.samples, pool.samples)
    return value, values, False


def _task_s(r: Record) -> float:
    """A serial task's time by a case's own probes (0 without probes: its A/A expectation is then 1)."""
    pairing = r.paired
    return pairing.task_s() if pairing is not None else 0.0


def _hashable(value: object) -> object:
    """A task parameter as a value that compares and hashes (JSON gives lists for tuples)."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


def _figures(
    by_run: dict[tuple[str, str], list[Record]],
) -> tuple[dict[tuple[str, str], Record], dict[int, tuple[SpreadGroup, float, list[float]]], set[int]]:
    """Per (run, workload) with a serial case: that case; per record (by id): its spread group, figure and
    pass-level values (a serial case's: the reference's bias); the ids of paired records."""
    serials: dict[tuple[str, str], Record] = {}
    figures: dict[int, tuple[SpreadGroup, float, list[float]]] = {}
    paired_ids: set[int] = set()
    for (source, workload), group in by_run.items():
        serial = next((r for r in group if r.executor == "serial"), None)
        if serial is None:
            continue
        serials[(source, workload)] = serial
        for r in group:
            spread = spread_group(source, workload, r.executor, r.workers, capacity(r))
            if r is serial:
                if (own := r.paired) is not None:
                    figures[id(r)] = (spread, own.speedup(), own.values())
                continue
            value, values, was_paired = figure_of(r, serial)
            figures[id(r)] = (spread, value, values)
            if was_paired:
                paired_ids.add(id(r))
    return serials, figures, paired_ids


def scaling_points(
    records: Iterable[Record], draws: Callable[[Record, Estimate], np.ndarray] | None = None
) -> list[ScalingPoint]:
    """Speedup and efficiency of every scaling case that has a serial baseline in its own run, each with
    its two intervals (common/reference.py ``estimates``: spreads moderated per run, workload and side of C), its
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
    flagged: dict[int, Defect] = {}
    solo: dict[int, float] = {}  # a one-worker pool's A/A expectation (common/checks.py solo_expected)
    for source in by_source:
        pools = [r for (s, _), group in by_run.items() if s == source and (s, _) in serials for r in group]
        named = {f"{r.workload} {r.pool} w{r.workers}": r for r in pools if r.executor != "serial"}
        tested = [(n, r.workers, r.kind, est[id(r)], ideals[id(r)]) for n, r in named.items()]
        costs = pool_costs(dispatch.get(source, {}))
        solo.update({id(r): solo_expected(_task_s(r), costs.get(r.pool)) for r in named.values() if r.workers == 1})
        expected = {n: solo[id(r)] for n, r in named.items() if r.workers == 1}
        for d in run_defects(tested, expected=expected):
            if (r := named.get(d.name)) is None:
                continue
            # a failed A/A test of a one-worker pool: every figure of that pool for that workload in the run
            family_of = [x for x in pools if (x.workload, x.pool) == (r.workload, r.pool)] if d.below else [r]
            flagged.update({id(x): d for x in family_of})
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
                    cpu_busy=cpus_busy(r),
                    rounds=len(r.samples),
                    passes=max(len(r.passes), 1),
                    paired=id(r) in paired_ids,
                    variant=r.variant,
                    python=(r.run.poolbench.get("versions") or {}).get("python"),
                    recommended_workers=int(r.run.poolbench["recommended_workers"]),
                    signals=sig,
                    cause=explain(
                        r.pool, r.kind, e.value / ideal, sig, efficiency_hi=e.high / ideal, defect=flagged.get(id(r))
                    ),
                    prediction_lo=e.prediction_low,
                    prediction_hi=e.prediction_high,
                    defect=id(r) in flagged,
                    solo_expected=solo.get(id(r)),
                    bias=bias,
                    figure=e,
                    task_param=_hashable(r.extra.get("task_param")),
                )
            )
    return sorted(points, key=lambda p: (p.label, p.workload, p.pool, p.workers))


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


def run_checks(points: Sequence[ScalingPoint]) -> list[Defect]:
    """One run's measurement defects (common/checks.py ``run_defects``): points above their limit, the
    one-worker pools together, the serial probes against the serial batch together, and a one-worker
    pool below the run's others."""
    pools = [p for p in points if p.pool != "serial"]
    named = [(f"{p.workload} {p.pool} w{p.workers}", p.workers, p.kind, p.estimate, p.ideal) for p in pools]
    expected = {f"{p.workload} {p.pool} w{p.workers}": p.solo_expected for p in pools if p.solo_expected is not None}
    return run_defects(named, [(p.workload, p.kind, p.bias) for p in points if p.bias is not None], expected)


def find(points: Iterable[ScalingPoint], workload: str, pool: str, workers: int) -> ScalingPoint | None:
    """The point for ``workload`` on ``pool`` (``thread``, ``process``, ``process/fork``…) at ``workers``."""
    for p in points:
        if p.workload == workload and p.workers == workers and pool in (p.pool, p.executor):
            return p
    return None


@dataclass(frozen=True)
class RunView:
    """One run's records and points, out of an analysis."""

    records: list[Record]
    points: list[ScalingPoint]

    @property
    def run(self) -> Run:
        return self.records[0].run


class Analysis:
    """The records of one invocation and what is derived from them, each computed once."""

    def __init__(self, records: Iterable[Record], *, salt: str = "") -> None:
        """``salt`` tells apart two analyses whose files share a name (a gate's two sides), so their
        draws are independent."""
        self.records: list[Record] = list(records)
        self.salt = salt
        self._draws: dict[int, np.ndarray] = {}
        self._fastest: dict[int, np.ndarray] = {}
        self.points: list[ScalingPoint] = scaling_points(self.records, draws=self.speedup_draws)
        by_source: dict[str, list[Record]] = {}
        for r in self.records:
            by_source.setdefault(r.run.source, []).append(r)
        points: dict[str, list[ScalingPoint]] = {}
        for p in self.points:
            points.setdefault(p.source, []).append(p)
        #: One view per run, the run with the most effective CPUs first (as the report lists them).
        self.runs: list[RunView] = sorted(
            (RunView(rs, points.get(source, [])) for source, rs in by_source.items()),
            key=lambda v: -v.run.effective_cpus,
        )
        self._by_record = {(p.source, p.workload, p.pool, p.workers): p for p in self.points}
        #: The default-workers trap: each pool's default ``max_workers`` against the recommended one.
        self.default_workers: list[DefaultWorkers] = default_workers(self.records)

    def _seed(self, kind: str, r: Record) -> np.random.Generator:
        # seeded by the file's name, not its path: the same file gives the same interval in any checkout
        return seeded(f"{self.salt}{kind}{Path(r.run.source).name}:{r.name}")

    def speedup_draws(self, pool: Record, estimate: Estimate) -> np.ndarray:
        """Draws of a pool's speedup from its estimate (drawn once per pool record: scaling_points asks
        once per pool)."""
        key = id(pool)
        if key not in self._draws:
            self._draws[key] = estimate_draws(estimate, self._seed("", pool))
        return self._draws[key]

    def draws_of(self, pool: Record) -> np.ndarray:
        """The speedup draws behind a pool record's point (one that :meth:`point_of` finds)."""
        return self._draws[id(pool)]

    def fastest(self, r: Record) -> np.ndarray:
        """Bootstrap draws of a record's fastest round (:func:`record_fastest`, drawn once per record)."""
        key = id(r)
        if key not in self._fastest:
            self._fastest[key] = record_fastest(r, self._seed("fastest:", r))
        return self._fastest[key]

    def point_of(self, r: Record) -> ScalingPoint | None:
        """The scaling point of a scaling record (None: not one, or no serial baseline in its run)."""
        return self._by_record.get((r.run.source, r.workload, r.pool, r.workers))

    def points_of(self, records: Iterable[Record]) -> list[ScalingPoint]:
        """The points of the runs ``records`` belong to (records of this analysis)."""
        sources = {r.run.source for r in records}
        return [p for p in self.points if p.source in sources]

    def defects(self, view: RunView) -> list[Defect]:
        """One run's measurement defects (scripts/analysis.py ``run_checks``), as the terminal names them."""
        return run_checks(view.points)
