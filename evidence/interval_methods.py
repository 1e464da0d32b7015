"""How the intervals' way of borrowing spread fares on sets of three runs: rerun agreement and width, two ways.

    python evidence/interval_methods.py REV [REV ...]     (git revisions whose evidence/limits holds three runs)
    python evidence/interval_methods.py DIR [DIR ...]     (folders holding default-run1..3.json)

For each set: the share of (case, ordered run pair) where one run's 95 % prediction interval holds the
other run's figure, and the median prediction half-width of the CPU-bound pools at W = C (what
``python -m scripts.agreement`` prints), with each point's spread

* ``pooled``: pooled over every point of its workload in its run (poolbench before this commit);
* ``moderated``: moderated toward the points of its workload on the same side of C, with the prior's
  weight estimated from the run (common/reference.py ``estimates``, the suite's way now);
* ``limma's prior``: the same, its prior limma's (the scale of the group's log variances, not their pool);

and the median standard deviation of a point's pass-level log speedups at W <= C and at W > C.
The ``pooled`` way is the same code with every point on one side of C and an infinite prior weight.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import reference, stats
from scripts import agreement, analysis

ROOT = Path(__file__).resolve().parent.parent


def run_files(spec: str, scratch: Path) -> list[str]:
    """The three runs of a set: a folder's, or those a git revision kept under evidence/limits."""
    folder = Path(spec)
    if folder.is_dir():
        return [str(folder / f"default-run{i}.json") for i in (1, 2, 3)]
    out = []
    for i in (1, 2, 3):
        blob = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{spec}:evidence/limits/default-run{i}.json"],
            check=True,
            capture_output=True,
        ).stdout
        path = scratch / f"{spec}-run{i}.json"
        path.write_bytes(blob)
        out.append(str(path))
    return out


def measure(paths: list[str]) -> tuple[int, int, float]:
    cases = agreement.agreement([agreement.one_run(p) for p in paths])
    held = sum(c.held()[0] for c in cases)
    pairs = sum(c.held()[1] for c in cases)
    at_c = [c for c in cases if c.at_c and c.kind != "io"]
    return held, pairs, agreement.median_half_width(at_c)


def limma_estimates(points):
    """:func:`common.reference.estimates` with limma's prior: s₀² = exp(mean of the group's unbiased log variances
    + ψ(d₀/2) − log(d₀/2)), the scaled inverse χ² prior's scale, instead of the group's pooled variance."""
    spreads = {k: reference.spread_of(values) for k, (_, _, values) in points.items()}
    by_group: dict = {}
    for k, (group, _, _) in points.items():
        by_group.setdefault(group, []).append(k)
    by_run: dict = {}
    for g, ks in by_group.items():
        by_run.setdefault(g.run, []).append([spreads[k] for k in ks])
    d0 = {run: reference.prior_df(groups) for run, groups in by_run.items()}
    prior = {}
    for g, ks in by_group.items():
        pooled = reference.pooled([spreads[k] for k in ks])
        logs = [reference._log_variance(spreads[k]) for k in ks if spreads[k] and spreads[k][0] > 0]
        d = d0[g.run]
        if pooled is None or not logs or math.isinf(d):
            prior[g] = pooled
        else:
            scale = math.exp(statistics.fmean(logs) + stats.digamma(d / 2) - math.log(d / 2))
            prior[g] = (scale, pooled[1])
    return {
        k: reference.Estimate.of(value, len(values), reference.moderated(spreads[k], prior[group], d0[group.run]))
        for k, (group, value, values) in points.items()
    }


def one_side(run, workload, executor, workers, cpus):
    return reference.SpreadGroup(run, workload, False)


def pass_spreads(paths: list[str]) -> dict[bool, float]:
    """The median over points of the pass-level standard deviation, at W <= C (False) and W > C (True)."""
    sds: dict[bool, list[float]] = {False: [], True: []}
    captured = {}
    real = reference.estimates

    def spy(points):
        captured.update(points)
        return real(points)

    with mock.patch.object(analysis, "estimates", spy):
        for p in paths:
            captured.clear()
            agreement.one_run(p)
            for group, _, values in captured.values():
                if len(values) > 1:
                    sds[group.crowded].append(statistics.stdev(values))
    return {k: statistics.median(v) if v else math.nan for k, v in sds.items()}


def sets_table(argv: list[str], usage: str, header: str, row) -> int:
    """Print a Markdown table with one row per set of three runs: ``row(spec, paths, scratch)`` gives each."""
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    print(header)
    print("| --- " * (header.count("|") - 1) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in argv:
            print(row(spec, run_files(spec, Path(tmp)), Path(tmp)))
    return 0


def row(spec: str, paths: list[str], scratch: Path) -> str:
    sd = pass_spreads(paths)
    with (
        mock.patch.object(analysis, "spread_group", one_side),
        mock.patch.object(reference, "prior_df", lambda groups: math.inf),
    ):
        old = measure(paths)
    new = measure(paths)
    with mock.patch.object(analysis, "estimates", limma_estimates):
        limma = measure(paths)
    cells = [f"{h} of {n} = {h / n:.0%}, {w:.1%}" for h, n, w in (old, new, limma)]
    return f"| {spec} | {sd[False]:.1%} / {sd[True]:.1%} | {' | '.join(cells)} |"


def main(argv: list[str]) -> int:
    return sets_table(
        argv,
        __doc__.strip().splitlines()[2].strip(),
        "| set | points' pass spread, W ≤ C / W > C | pooled: agreement, half-width at W = C "
        "| moderated: agreement, half-width | limma's prior: agreement, half-width |",
        row,
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
