"""Do runs agree? ``python -m scripts.agreement RUN RUN [RUN...]``: the same sweep, run several times.

For every scaling case of a pool found in every run: each run's speedup with its 95 % prediction
interval for the next run's figure (common/reference.py ``Estimate``), the spread of the point
estimates (max − min, as a fraction of their mean), and whether each run's prediction interval
holds the other runs' figures. Prints, per case and in total:

* the spread of CPU-bound pool cases at W = C (the recommended worker count), where the goal is a
  spread of at most 5 % of the mean;
* rerun agreement: the share of (case, ordered pair of runs) where one run's prediction interval
  holds the other's figure (goal: 90 % or more), beside the median half-width of the prediction
  intervals of CPU-bound pool cases at W = C (goal: 5 % or less; agreement bought by wide intervals
  does not count), and the same share for the confidence intervals, which promise less (a perfect
  95 % confidence interval holds a rerun's figure about 83 % of the time);
* the efficiency of process pools on ``cpu_python`` at 2 workers in each run (goal: 0.90 or more).

Only runs of the same work are compared: a case whose task size differs between runs (each run
calibrated its own) is left out and counted.

Exit code 0 when it could compare (goals met or not: this measures, it does not gate), 2 on
unusable input. Each RUN is one results file (or a folder holding one run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.executors import family
from scripts.analysis import Analysis, ScalingPoint
from scripts.cli import Parser, run
from scripts.results import ResultsError, latest_runs, load

SPREAD_GOAL = 0.05
AGREEMENT_GOAL = 0.90
#: Agreement bought by wide intervals does not count: the median half-width (relative to the point)
#: of CPU-bound pool cases at W = C must stay within this.
HALF_WIDTH_GOAL = 0.05
EFFICIENCY_GOAL = 0.90


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.agreement", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="two or more results files of the same sweep")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to compare")
    return args


@dataclass(frozen=True)
class CaseAgreement:
    key: tuple[str, str, int]  # workload, pool, workers
    kind: str
    at_c: bool  # workers == the recommended worker count
    points: tuple[ScalingPoint, ...]

    @property
    def spread(self) -> float:
        values = [p.speedup for p in self.points]
        return (max(values) - min(values)) / (sum(values) / len(values))

    def held(self) -> tuple[int, int]:
        """(ordered pairs where run i's prediction interval holds run j's figure, all ordered pairs)."""
        pairs = [(a, b) for a in self.points for b in self.points if a is not b]
        return sum(a.prediction_lo <= b.speedup <= a.prediction_hi for a, b in pairs), len(pairs)

    def held_by_confidence(self) -> tuple[int, int]:
        """(ordered pairs where run i's confidence interval holds run j's figure, all ordered pairs)."""
        pairs = [(a, b) for a in self.points for b in self.points if a is not b]
        return sum(a.speedup_lo <= b.speedup <= a.speedup_hi for a, b in pairs), len(pairs)


def one_run(path: str) -> list[ScalingPoint]:
    records = latest_runs(load([path]))
    if len({r.run.source for r in records}) > 1:
        raise ResultsError(f"{path}: holds more than one run; give one results file per run")
    points = [p for p in Analysis(records).points if p.pool != "serial"]
    if not points:
        raise ResultsError(f"{path}: no scaling cases with a serial baseline; run `pytest bench --cases scaling`")
    return points


def agreement(runs: list[list[ScalingPoint]]) -> list[CaseAgreement]:
    """The cases found in every run at the same task size (:func:`other_work` counts the rest)."""
    keyed = [{(p.workload, p.pool, p.workers): p for p in points} for points in runs]
    common = set(keyed[0]).intersection(*keyed[1:])
    out = []
    for key in sorted(common):
        points = tuple(k[key] for k in keyed)
        if len({p.task_param for p in points}) > 1:
            continue
        at = points[0].recommended_workers  # as the run recorded it
        out.append(CaseAgreement(key, points[0].kind, key[2] == at, points))
    return out


def other_work(runs: list[list[ScalingPoint]]) -> list[str]:
    """The workloads found in every run whose task size differs between runs: other work, not compared."""
    sizes: dict[str, set[object]] = {}
    for points in runs:
        for p in points:
            sizes.setdefault(p.workload, set()).add(p.task_param)
    return sorted(w for w, s in sizes.items() if len(s) > 1)


def render(cases: list[CaseAgreement], names: Sequence[str], unmatched: Sequence[str] = ()) -> str:
    lines = [f"runs: {', '.join(f'[{i + 1}] {n}' for i, n in enumerate(names))}", ""]
    width = max(len(f"{w} {p} w{n}") for (w, p, n) in (c.key for c in cases))
    head = "  ".join(f"{'run ' + str(i + 1):>20}" for i in range(len(names)))
    lines.append(f"{'case':<{width}}  {head}  {'spread':>7}  held")
    for c in cases:
        w, p, n = c.key
        cells = "  ".join(f"{f'{q.speedup:.2f} [{q.prediction_lo:.2f}-{q.prediction_hi:.2f}]':>20}" for q in c.points)
        held, pairs = c.held()
        mark = " *" if c.at_c and c.kind != "io" else ""
        lines.append(f"{f'{w} {p} w{n}':<{width}}  {cells}  {c.spread:>7.1%}  {held}/{pairs}{mark}")
    lines.append("")
    cpu_c = [c for c in cases if c.at_c and c.kind != "io"]
    if cpu_c:
        worst = max(cpu_c, key=lambda c: c.spread)
        within = sum(c.spread <= SPREAD_GOAL for c in cpu_c)
        lines.append(
            f"CPU-bound pool cases at W=C (*): {within} of {len(cpu_c)} spread within {SPREAD_GOAL:.0%} of their "
            f"mean; widest {worst.spread:.1%} ({' '.join(map(str, worst.key))})"
        )
        lines.append(
            f"their median 95 % prediction interval half-width: {median_half_width(cpu_c):.1%} of the figure "
            f"(goal {HALF_WIDTH_GOAL:.0%} or less)"
        )
    held = sum(c.held()[0] for c in cases)
    pairs = sum(c.held()[1] for c in cases)
    if pairs:
        by_ci = sum(c.held_by_confidence()[0] for c in cases)
        lines.append(
            f"rerun agreement: a run's 95 % prediction interval held another run's figure in {held} of {pairs} "
            f"(case, run pair) = {held / pairs:.0%} (goal {AGREEMENT_GOAL:.0%}); its 95 % confidence interval, "
            f"{by_ci / pairs:.0%}"
        )
    if unmatched:
        lines.append(
            f"left out, other work in each run (task sizes calibrated apart): {', '.join(unmatched)}; "
            "run the later runs with --sizes-from the first to compare them"
        )
    process_cpu = [c for c in cases if c.key[0] == "cpu_python" and family(c.key[1]) == "process" and c.key[2] == 2]
    for c in process_cpu:
        effs = ", ".join(f"{q.efficiency:.2f} [{q.efficiency_lo:.2f}-{q.efficiency_hi:.2f}]" for q in c.points)
        met = sum(q.efficiency >= EFFICIENCY_GOAL for q in c.points)
        lines.append(
            f"cpu_python {c.key[1]} w2 efficiency: {effs}; {met} of {len(c.points)} runs at "
            f"{EFFICIENCY_GOAL:.2f} or more"
        )
    return "\n".join(lines)


def median_half_width(cases: Sequence[CaseAgreement]) -> float:
    """The median relative half-width over every run's prediction interval of ``cases``."""
    widths = sorted((p.prediction_hi - p.prediction_lo) / 2 / p.speedup for c in cases for p in c.points)
    mid = len(widths) // 2
    return widths[mid] if len(widths) % 2 else (widths[mid - 1] + widths[mid]) / 2


def work(args, runs: list[list[ScalingPoint]]) -> str:
    cases = agreement(runs)
    if not cases:
        raise ResultsError(
            f"{', '.join(args.runs)}: no scaling case in common at the same task size; compare runs of the same "
            "sweep (later runs with --sizes-from the first)"
        )
    return render(cases, args.runs, other_work(runs))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(work(args, [one_run(path) for path in args.runs]))
    return 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.agreement", main))
