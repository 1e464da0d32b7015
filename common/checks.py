"""A run's own checks of its measurement: what the terminal, the report, summary.json and the gate name as a
**measurement defect**, never as noise.

Three ways a run can show that its reference (common/reference.py) did not measure what its pools did:

1. **Above the physical limit.** A figure whose interval lies wholly above min(W, C) (or the I/O ideal)
   beyond the run's noise, all of the run's points tested together (:func:`above_limits`); and the
   run's one-worker pools of CPU-bound work together, one A/A test of the reference (:func:`combined`),
   which sees a bias of a few percent that no single point can.
2. **The probes against the serial batch**: a probe that runs slow inflates every speedup. The CPU-bound
   workloads' together (one mean, which sees a bias of the reference's own making, a cold or collected
   probe); each I/O-bound workload's alone, on its own interval (Holm over them): a device's stalls land
   on a one-task probe whole and on a batch of k tasks diluted k-fold, a heavy tail of that workload
   alone. In a fresh clone's main job 5 of io_file's 108 probes took 11-15 ms against 5.0-5.5 for the
   rest, its probes read 1.08× [0.98–1.20] its batch, and in one mean with the CPU-bound workloads'
   that alone named the eight workloads' probes 1.014× [1.002–1.026] a defect. Tested alone, io_file's
   probes are named where their own interval lies above 1: 1.15× [1.09–1.22] in the fresh clone whose
   probes were held on the CPU without the disk's interrupts (bench/measure.py ``pin_probes``).
3. **A one-worker pool far below the run's others** (:func:`solo_outliers`). A pool of one worker does
   the serial work on one CPU plus the pool's own cost, so it reads t / (t + c) (:func:`solo_expected`;
   c the dispatch case's cost per task). A pool's figures are only as good as this A/A test: where one
   fails, the same pool's workers ran the workload's tasks slower than the reference and than the run's
   other one-worker pools, and every figure of that pool for that workload in the run is suspect.
   Seen here (README's main job, fresh clones, 2-vCPU AMD EPYC guest): every process worker of one run
   ran cpu_python at 2.2× the CPU per task of the suite's own thread, in all three passes and at every
   worker count (one worker 0.49×; run-queue wait, steal and throttling nil; every other workload's
   process pools of the same passes 0.96-0.99×), and the report called "processes suit CPU-bound work"
   refuted; in another run one thread pool of cpu_python read 0.85× where the other eleven read 0.97-
   1.01×. Neither was reproduced on demand, and the cause is not known. Below 1 alone is no defect (the
   pool's cost is real, and a workload can run a few percent slower in a worker than in the suite's
   thread, run after run), so the test is against the run's own A/A spread: the other one-worker
   pools'. Replayed on the 23 default runs kept here (six fresh clones' main jobs, fifteen
   evidence/limits runs of schemas 7, 8, 8, 9 and 9, two front pages; each file's ``checks`` in the
   summary.json of ``python -m scripts.report FILE``), it flags exactly those two and nothing else;
   the smallest p-values among the rest were 0.0060 (front page of 08:21: cpu_python process 0.95×),
   0.0074 (cpu_python thread 0.90×) and 0.0075 (front page of 04:51: numpy_object thread 0.91×),
   where Holm's first step asks 0.05 / 12: close enough that a run of this host will now and then
   name a pool at 0.90-0.95× with the others at 0.98-1.0. Since each point's spread borrows only partly
   from its group's (common/reference.py ``estimates``: its own passes weigh in), a pool whose passes
   agree is named sooner and one whose passes scatter later. Replayed so on the 40 files that ten commits
   kept (5c271fc to 8118922: evidence/limits' three runs and the front page of each), it names four:
   cpu_python thread 0.79× (front page of 7ba6bcf) and 0.85× (b475b7d, run 1), as the pooled spread did,
   and the two nearest misses above, cpu_python process 0.95× [0.93–0.97] and numpy_object thread
   0.91× [0.86–0.97] (front pages of 12652b7 and b475b7d); no longer cpu_python thread 0.85× [0.69–1.05]
   (3dbc7d3, run 1), whose own passes scattered that far.

Standard library only: bench/ and scripts/ both read it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from common.reference import CONFIDENCE, Estimate, above_limit
from common.stats import betai

#: Fewest one-worker pools a run's A/A spread is read from: a median absolute deviation of fewer says
#: little, and those runs go without the test (:func:`solo_outliers`).
SOLO_MIN = 5
#: The normal distribution's standard deviation over the median absolute deviation (for normal data).
MAD_TO_SD = 1.4826


class Defect(NamedTuple):
    """One measurement defect: the figure's name (e.g. ``numpy_ufunc process/fork w1``), its estimate, the
    limit it broke, and on which side (above a physical limit, or below the run's other one-worker pools)."""

    name: str
    estimate: Estimate
    limit: float
    below: bool = False


def _p_above(estimate: Estimate, limit: float) -> float:
    """One-sided p-value of "the figure is at or below ``limit``" against "above it", from its t statistic."""
    se = estimate.log_se
    if estimate.value <= limit:
        return 1.0
    if se <= 0:
        return 0.0  # no spread to blame: above is above
    t = math.log(estimate.value / limit) / se
    return 0.5 * betai(estimate.df / 2, 0.5, estimate.df / (estimate.df + t * t))


def _holm(ranked: Sequence[tuple[float, Defect]]) -> list[Defect]:
    """The items whose p-values pass Holm's step-down method at family-wise error 1 − CONFIDENCE."""
    alpha, ranked = 1.0 - CONFIDENCE, sorted(ranked, key=lambda x: x[0])
    found = []
    for i, (p, item) in enumerate(ranked):
        if p > alpha / (len(ranked) - i):
            break
        found.append(item)
    return found


def above_limits(tested: Sequence[tuple[str, Estimate, float]]) -> list[Defect]:
    """The figures of one run that lie above their physical limit beyond the run's noise.

    ``tested``: (a point's name, its estimate, its ideal) for every point of the run. A 95 %
    interval leaves 2.5 % above for a figure that sits exactly at its limit, and a run has about a
    hundred points, a fifth of them at or near their limit (one-worker pools, sleeps): tested one by
    one, an honest run would be flagged about every other time. So the run's points are tested
    together (Holm's step-down method, family-wise error 1 − CONFIDENCE): a run is flagged
    when a figure is above its limit with 95 % confidence for the whole run, and the one-worker
    pools are also tested together (:func:`combined`), which sees a bias of a few percent that no
    single point can.
    """
    return _holm([(_p_above(e, ideal), Defect(name, e, ideal)) for name, e, ideal in tested])


def combined(parts: Sequence[Estimate]) -> Estimate:
    """The geometric mean of independent estimates, its interval from their standard errors (normal, as the
    sum of many terms): the run's one-worker pools as one A/A test of the reference."""
    if not parts:
        raise ValueError("nothing to combine")
    centre = statistics.fmean(math.log(e.value) for e in parts)
    se = math.sqrt(sum(e.log_se**2 for e in parts)) / len(parts)
    z = statistics.NormalDist().inv_cdf(1.0 - (1.0 - CONFIDENCE) / 2)
    df = sum(e.df for e in parts)
    return Estimate(
        math.exp(centre),
        math.exp(centre - z * se),
        math.exp(centre + z * se),
        math.exp(centre - z * se * math.sqrt(2)),
        math.exp(centre + z * se * math.sqrt(2)),
        len(parts),
        df,
        se,
    )


def solo_expected(task_s: float, cost_s: float | None) -> float:
    """What a one-worker pool of CPU-bound work reads when its worker runs the tasks as the reference does:
    t / (t + c), for a task of ``task_s`` seconds (the probes') and the pool's own cost per task
    ``cost_s`` (the dispatch case's empty task less serial's, chunksize 1); 1 where the cost is unknown."""
    if cost_s is None or task_s <= 0:
        return 1.0
    return task_s / (task_s + max(cost_s, 0.0))


def solo_outliers(solo: Sequence[tuple[str, Estimate, float]]) -> list[Defect]:
    """The one-worker pools of one run that fall below the run's others beyond their spread (module doc, 3).

    ``solo``: (name, estimate, :func:`solo_expected`) of every one-worker pool of CPU-bound work. Each
    pool's shortfall r = log(figure / expected); the run's A/A spread is the median absolute deviation
    of r over its pools (robust: one outlier does not widen it), combined with the pool's own standard
    error; a pool below the median r by more than that, all pools tested together (Holm, family-wise
    error 1 − CONFIDENCE), failed its A/A test. Runs with fewer than :data:`SOLO_MIN` such pools are
    not tested. The limit named is the figure the run's other pools point to: expected × exp(median r).
    """
    if len(solo) < SOLO_MIN:
        return []
    shortfall = [math.log(e.value / expected) for _, e, expected in solo]
    centre = statistics.median(shortfall)
    spread = MAD_TO_SD * statistics.median(abs(r - centre) for r in shortfall)
    normal = statistics.NormalDist()
    ranked = []
    for (name, e, expected), r in zip(solo, shortfall, strict=True):
        scale = math.sqrt(spread**2 + e.log_se**2)
        p = 1.0 if r >= centre else (0.0 if scale <= 0 else normal.cdf((r - centre) / scale))
        ranked.append((p, Defect(name, e, expected * math.exp(centre), below=True)))
    return _holm(ranked)


def defects_line(found: Sequence[Defect]) -> str | None:
    """The one line that names a run's measurement defects, for the terminal, the report and the gate; None
    when there is none."""
    if not found:
        return None
    above = [d for d in found if not d.below]
    below = [d for d in found if d.below]
    parts = []
    if above:
        cases = "; ".join(f"{d.name} {_x(d.estimate)} > {d.limit:g}" for d in above)
        parts.append(
            f"{len(above)} figure{'s' if len(above) > 1 else ''} above the physical limit (min(W, CPUs), or the "
            f"I/O ideal) beyond this run's noise: {cases}; no pool does more than its CPUs allow"
        )
    if below:
        cases = "; ".join(f"{d.name} {_x(d.estimate)} < {d.limit:.2f}" for d in below)
        parts.append(
            f"{len(below)} one-worker pool{'s' if len(below) > 1 else ''} below the run's other one-worker pools "
            f"beyond their spread: {cases}; its workers ran the tasks slower than the reference, so that pool's "
            "figures for that workload are not judged"
        )
    return (
        f"measurement defect: {' — and '.join(parts)}; the reference or the machine misled this run "
        '(docs/guide.md, "Against the physical limits")'
    )


def _x(e: Estimate) -> str:
    return f"{e.value:.2f}× [{e.low:.2f}–{e.high:.2f}]"


def run_defects(
    points: Sequence[tuple[str, int, str, Estimate, float]],
    biases: Sequence[tuple[str, str, Estimate]] = (),
    expected: Mapping[str, float] | None = None,
) -> list[Defect]:
    """Every measurement defect of one run, in the shape :func:`defects_line` names them.

    ``points``: (name, workers, kind, estimate, ideal) of every pool's scaling point; ``biases``: the
    serial case's (workload, kind, bias estimate) per workload (common/reference.py ``reference_bias``);
    ``expected``:
    per one-worker point's name, :func:`solo_expected` (1 where absent). The checks of the module doc:
    a point above its limit (:func:`above_limits`); the run's one-worker pools of CPU-bound work
    together (they read 1.0 less the pool's own cost); the probes against the serial batch, of CPU-bound
    workloads together and of each I/O-bound one alone (Holm); a one-worker pool below the run's others
    (:func:`solo_outliers`).
    """
    found = above_limits([(name, e, ideal) for name, _, _, e, ideal in points])
    solo = [(name, e) for name, workers, kind, e, _ in points if workers == 1 and kind != "io"]
    with_spread = [e for _, e in solo if e.df]
    if with_spread and above_limit((together := combined(with_spread)).low, 1.0):
        found.append(Defect(f"one-worker pools together ({len(with_spread)})", together, 1.0))
    known = [b for _, kind, b in biases if b.df and kind != "io"]
    if known and above_limit((slow := combined(known)).low, 1.0):
        found.append(Defect(f"serial probes against the serial batch ({len(known)} workloads)", slow, 1.0))
    found += _holm(
        [
            (_p_above(b, 1.0), Defect(f"serial probes against the serial batch ({name})", b, 1.0))
            for name, kind, b in biases
            if b.df and kind == "io"
        ]
    )
    found += solo_outliers([(name, e, (expected or {}).get(name, 1.0)) for name, e in solo])
    return found


def per_task_us(cases: Iterable[tuple[str, int, float, int]]) -> dict[tuple[str, int], float]:
    """Median round time per task in microseconds, by (pool, chunksize), from each dispatch (or payload) case's
    (pool, chunksize, median round seconds, tasks per round): what :func:`pool_costs` reads."""
    return {(pool, chunk): median_s / tasks * 1e6 for pool, chunk, median_s, tasks in cases}


def pool_costs(dispatch_us: Mapping[tuple[str, int], float]) -> dict[str, float]:
    """Each pool's own cost per task in seconds: the dispatch case's empty task at chunksize 1 less serial's
    (calling the function), from its median µs per task by (pool, chunksize); {} without the case."""
    base = dispatch_us.get(("serial", 1), 0.0)
    return {pool: max(us - base, 0.0) / 1e6 for (pool, chunk), us in dispatch_us.items() if chunk == 1}
