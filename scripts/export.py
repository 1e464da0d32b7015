"""Export a run for the dashboards teams already run: ``python -m scripts.export RESULT --format
github-action-benchmark --out FILE [--metric speedup|time]``.

github-action-benchmark's ``customBiggerIsBetter`` and ``customSmallerIsBetter`` tools read a JSON
list of ``{"name", "unit", "value", "range", "extra"}`` (``range`` and ``extra`` optional, both
strings). poolbench exports:

* ``--metric speedup`` (the default; feed it to ``customBiggerIsBetter``): every scaling case of a
  pool, its speedup over serial (``unit`` "x"), ``range`` the 95 % interval as ``± half-width``,
  ``extra`` the interval's ends, the rounds, the efficiency and the run;
* ``--metric time`` (``customSmallerIsBetter``): every case, the median of its timed rounds
  (``unit`` "ms"), ``range`` half the interquartile range of the rounds.

Names are stable across runs of the same sweep: ``poolbench/<label>/<case>/<workload>/<pool>/w<N>``
plus the chunksize or payload where a case has one (the label is the CPU limit, "2 CPUs" or a
matrix service), so a dashboard keeps one series per case. Exit 0 on success, 2 on unusable input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from scripts.analysis import Analysis, ScalingPoint
from scripts.cli import Parser, run, write_atomic
from scripts.results import Record, ResultsError, latest_runs, load

FORMATS = ("github-action-benchmark",)
METRICS = ("speedup", "time")


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.export", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="RESULT", help="results .json files or folders")
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="default: github-action-benchmark")
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="speedup",
        help="speedup (bigger is better: customBiggerIsBetter; default) or time (customSmallerIsBetter)",
    )
    parser.add_argument("--out", required=True, help="the JSON file to write")
    return parser.parse_args(argv)


def series_name(r: Record) -> str:
    """The stable name of a case's series: same sweep, same name, whatever the run."""
    parts = ["poolbench", r.run.label, r.case, r.workload, r.pool, f"w{r.workers}"]
    if r.case == "dispatch":
        parts.append(f"c{r.chunksize}")
    if r.case == "payload" and r.extra.get("task_param"):
        parts.append(str(r.extra["task_param"]))
    if r.case == "default_workers" and r.extra.get("sizing"):
        parts.append(str(r.extra["sizing"]))
    return "/".join(parts)


def speedup_entries(an: Analysis) -> list[dict]:
    by_key = {(r.run.source, r.workload, r.pool, r.workers): r for r in an.records if r.case == "scaling"}
    out = []
    points: list[ScalingPoint] = [p for p in an.points if p.pool != "serial"]
    for p in points:
        record = by_key[(p.source, p.workload, p.pool, p.workers)]
        half = (p.speedup_hi - p.speedup_lo) / 2
        out.append(
            {
                "name": series_name(record),
                "unit": "x",
                "value": round(p.speedup, 4),
                "range": f"± {half:.4f}",
                "extra": (
                    f"95% interval {p.speedup_lo:.3f}-{p.speedup_hi:.3f}; efficiency {p.efficiency:.3f} of ideal "
                    f"{p.ideal:g}; {p.rounds} rounds{', serial paired' if p.paired else ''}; "
                    f"{p.effective_cpus:g} effective CPUs; Python {p.python}"
                ),
            }
        )
    return out


def time_entries(records: list[Record]) -> list[dict]:
    out = []
    for r in records:
        q1, q3 = r.quartiles
        out.append(
            {
                "name": series_name(r),
                "unit": "ms",
                "value": round(r.median * 1e3, 6),
                "range": f"± {(q3 - q1) / 2 * 1e3:.6f}",
                "extra": f"median of {len(r.samples)} rounds; {r.tasks} tasks per round; {r.run.label}",
            }
        )
    return out


def work(args, an: Analysis) -> Path:
    entries = speedup_entries(an) if args.metric == "speedup" else time_entries(an.records)
    if not entries:
        raise ResultsError(
            f"{', '.join(args.paths)}: nothing to export as {args.metric}; "
            + ("run `pytest bench` with --cases scaling" if args.metric == "speedup" else "give a results file")
        )
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ResultsError(f"{', '.join(args.paths)}: holds two runs of one CPU limit; export one run at a time")
    out = Path(args.out)
    if out.is_dir():
        raise ResultsError(f"{out}: is a folder; give --out a file name")
    if not out.parent.is_dir():
        raise ResultsError(f"{out.parent}: no such folder; create it or choose another --out")
    return write_atomic(out, json.dumps(entries, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(work(args, Analysis(latest_runs(load(args.paths)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.export", main))
