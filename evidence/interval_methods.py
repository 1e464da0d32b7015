"""How the intervals' way of borrowing spread fares on sets of three runs: rerun agreement and width, two ways.

    python evidence/interval_methods.py REV [REV ...]     (git revisions whose evidence/limits holds three runs)
    python evidence/interval_methods.py DIR [DIR ...]     (folders holding default-run1..3.json)

For each set: the share of (case, ordered run pair) where one run's 95 % prediction interval holds the
other run's figure, and the median prediction half-width of the CPU-bound pools at W = C (what
``python -m scripts.agreement`` prints), with each point's spread

* ``pooled``: pooled over every point of its workload in its run (poolbench before this commit);
* ``moderated``: moderated toward the points of its workload on the same side of C, with the prior's
  weight estimated from the run (common/reference.py ``estimates``, the suite's way now);

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

from common import reference
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


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(
        "| set | points' pass spread, W ≤ C / W > C | pooled: agreement, half-width at W = C "
        "| moderated: agreement, half-width |"
    )
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in argv:
            paths = run_files(spec, Path(tmp))
            sd = pass_spreads(paths)
            with (
                mock.patch.object(analysis, "spread_group", one_side),
                mock.patch.object(reference, "prior_df", lambda groups: math.inf),
            ):
                old = measure(paths)
            new = measure(paths)
            cells = [f"{h} of {n} = {h / n:.0%}, {w:.1%}" for h, n, w in (old, new)]
            print(f"| {spec} | {sd[False]:.1%} / {sd[True]:.1%} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
