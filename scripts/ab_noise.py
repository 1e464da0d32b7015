"""The bars an A/B gate can hold on this machine: ``python -m scripts.ab_noise FOLDER --workload-file PATH``.

Runs ``--runs`` A/A runs of scripts/ab.py (the same folder, so the same code, in both arms), each of
``--pairs`` pairs, and writes the bars file scripts.ab reads (``--out``; default ``ab-bars.json``):

* per metric (scripts/gating.py), the spread of its A/A estimate after :data:`scripts.ab.MIN_PAIRS`
  pairs (the fewest a run may stop at, so the noisiest estimate it can decide on): the root mean square
  of the log ratio over every run and every key of the metric, the true ratio being 1;
* its bar: ``exp(Z × spread) − 1``, with :data:`Z` the one-sided 0.1 % point of the normal, so that
  under that noise a key's A/A estimate passes its bar about once in a thousand;
* per key of a metric (a workload's work index, a pool's scaling index, a case), its own spread and bar
  (``key_spread``: spread, estimates, bar, members), which scripts.ab uses for a key of that name over as
  many members (the same workloads in an index, the same cases in a work index): workloads differ in
  noise (in the evidence's A/A runs the work index of a pure-Python workload spread 7.9 %, of a hashing
  one 1.3 %), and one pooled bar held the quiet ones to the noisy one's noise. A key's spread comes from
  few estimates (one per A/A run), so its bar takes Student's t instead of the normal, with as many
  degrees of freedom as estimates (the true ratio is known: 1): 4.14 spreads from 10 runs, 3.09 as runs
  grow. A grouped key (a work or scaling index) is measured as scripts.ab takes it: each of its cases
  weighted by one over that case's own A/A spread squared (``weighted``; scripts/ab_stats.py).

``--rederive`` writes the bars from the A/A runs already in ``--results`` (a new version of these
rules, the same measurements), runs nothing.

Run it on the runner the gate will run on, with the workloads it will gate (their noise is what the
bars are for), and give the file to ``scripts.ab --bars``. Prints the bars and the spread behind each.

``--apart RUN RUN [RUN ...]`` derives the two-file gate's bars (``scripts.compare --bars``) the same way
from runs of unchanged code made one after another: each against the first, one comparison each.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts import ab
from scripts.ab_stats import key_quantile, member_weights
from scripts.cli import Parser, run, write_atomic
from scripts.gating import METRICS
from scripts.results import ResultsError, load

#: The one-sided 0.1 % point of the standard normal: a bar this many A/A spreads above 1.
Z = 3.09


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.ab_noise", description=__doc__.splitlines()[0])
    parser.add_argument("folder", metavar="FOLDER", nargs="?", help="a checkout of your repository: both arms run it")
    parser.add_argument(
        "--apart", nargs="+", metavar="RUN", default=None,
        help="instead: results files of unchanged code made apart (scripts.compare's bars), each against the first",
    )  # fmt: skip
    parser.add_argument(
        "--workload-file", action="append", default=[], dest="workload_files", metavar="PATH",
        help="a workload file, relative to FOLDER (repeat for several)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=10, help="A/A runs (default 10)")
    parser.add_argument("--pairs", type=int, default=ab.MIN_PAIRS + 2, help="pairs per run (default 5)")
    parser.add_argument("--python", default=sys.executable, help="the Python both arms run (default: this one)")
    parser.add_argument("--profile", default="quick", help="the suite's profile (default: quick, as scripts.ab's)")
    parser.add_argument("--out", default="ab-bars.json", help="the bars file to write (default: ab-bars.json)")
    parser.add_argument("--results", default="ab-noise", help="folder for every run (default: ab-noise)")
    parser.add_argument(
        "--rederive", action="store_true",
        help="derive the bars from the A/A runs already in --results (their aa-N folders); run nothing",
    )  # fmt: skip
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    parser.epilog = "Options after -- go to every run's `pytest bench` (e.g. -- --workers 1,2)."
    args = parser.parse_args(argv[:cut])
    args.suite = argv[cut + 1 :]
    if args.apart is not None:
        if len(args.apart) < 3:
            parser.error(f"--apart: {len(args.apart)} run(s); give at least 3 (two comparisons) of unchanged code")
        return args
    if args.folder is None:
        parser.error("give FOLDER (A/A runs of scripts.ab) or --apart RUN RUN RUN (runs made apart)")
    if not args.workload_files:
        parser.error("no --workload-file: name the file(s) of your workloads, relative to FOLDER")
    if args.runs < 2:
        parser.error(f"--runs {args.runs}: a spread needs at least 2 runs (10 or more for bars to trust)")
    if args.pairs < ab.MIN_PAIRS:
        parser.error(f"--pairs {args.pairs}: at least {ab.MIN_PAIRS}, the fewest a gate decides on")
    return args


def ab_args(args, out: Path) -> argparse.Namespace:
    """scripts.ab's options for one A/A run: FOLDER in both arms, a fixed number of pairs, no early stop."""
    return ab.parse_args(
        [
            args.folder, args.folder, *(f"--workload-file={p}" for p in args.workload_files),
            f"--base-python={args.python}", f"--head-python={args.python}", f"--profile={args.profile}",
            f"--min-pairs={args.pairs}", f"--max-pairs={args.pairs}", f"--budget={1e9:g}", f"--out={out}",
            "--", *args.suite,
        ]
    )  # fmt: skip


def spreads(series_runs: list[dict], at: int, each: bool = False) -> dict[str, tuple[float, int]]:
    """Per metric: (root mean square of the A/A log ratio after ``at`` pairs, over runs and keys; how many).

    ``each``: every pair of a series is an estimate of its own (runs made apart, each against the first).
    """
    out = {}
    for metric in METRICS:
        logs = [
            x
            for series in series_runs
            for (name, _), s in series.items()
            if name == metric and len(s.logs) >= at
            for x in (s.logs if each else [statistics.fmean(s.logs[:at])])
        ]
        if logs:
            out[metric] = (math.sqrt(statistics.fmean(x * x for x in logs)), len(logs))
    return out


def key_spreads(series_runs: list[dict], at: int) -> dict[str, dict[str, tuple[float, int, int]]]:
    """Per metric and key: (root mean square of that key's A/A log ratio after ``at`` pairs; how many; over how
    many members: a scaling index's workloads, a work index's cases). A key is what it measured: estimates of
    other members than its most frequent count are left out."""
    logs: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for series in series_runs:
        for (name, key), s in series.items():
            if len(s.logs) >= at:
                logs.setdefault((name, key), []).append((s.members, statistics.fmean(s.logs[:at])))
    out: dict[str, dict[str, tuple[float, int, int]]] = {}
    for (name, key), found in sorted(logs.items()):
        members = statistics.mode(m for m, _ in found)
        xs = [x for m, x in found if m == members]
        out.setdefault(name, {})[key] = (math.sqrt(statistics.fmean(x * x for x in xs)), len(xs), members)
    return out


def bars_file(spread: dict[str, tuple[float, int]], keys: dict | None = None, **about) -> dict:
    """The bars file's body: each metric's bar from its spread, each key's from its own (module doc), and what
    they came from."""
    missing = [m for m in METRICS if m not in spread]
    if missing:
        raise ResultsError(f"the A/A runs measured no {', '.join(missing)}; give workloads that scale (CPU-bound)")
    return {
        "bars": {m: round(math.expm1(Z * s), 5) for m, (s, _) in spread.items()},
        "spread": {m: round(s, 6) for m, (s, _) in spread.items()},
        "keys": {m: n for m, (_, n) in spread.items()},
        "z": Z,
        "key_spread": {
            m: {
                k: [round(s, 6), n, round(math.expm1(key_quantile(n) * s), 5), members]
                for k, (s, n, members) in by_key.items()
            }
            for m, by_key in (keys or {}).items()
        },
        **about,
        "python": platform.python_version(),
        "node": platform.node(),
    }


def apart(args, argv) -> int:
    """Bars for the two-file gate from runs made apart: each against the first (module doc)."""
    runs = [load([path]) for path in args.apart]
    series: dict = {}
    for later in runs[1:]:
        ab.add_pair(series, ab.pair_values(runs[0], later))
    body = bars_file(
        spreads([series], at=1, each=True),
        kind="apart",
        at_pairs=1,
        runs=len(runs),
        comparisons=len(runs) - 1,
        sources=[Path(p).name for p in args.apart],
        command="python -m scripts.ab_noise " + " ".join(sys.argv[1:] if argv is None else argv),
    )
    write_atomic(Path(args.out), json.dumps(body, indent=1) + "\n")
    for m in METRICS:
        print(f"{m}: bar {body['bars'][m]:.1%} (spread {body['spread'][m]:.2%} over {body['keys'][m]} comparisons)")
    print(f"wrote {args.out}: give it to `python -m scripts.compare --bars {args.out}`")
    return 0


def saved_runs(results: Path, weights: dict | None = None, count: int | None = None) -> list[dict]:
    """The series of the A/A runs in ``results`` (aa-N/base-K.json and head-K.json, K from 1), as measured, a
    grouped key's members weighted by ``weights`` (:func:`scripts.ab_stats.member_weights`)."""
    runs = sorted((p for p in results.glob("aa-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
    runs = runs if count is None else [p for p in runs if int(p.name.split("-")[1]) <= count]
    series_runs = []
    for folder in runs:
        series: dict = {}
        k = 1
        while (folder / f"base-{k}.json").exists() and (folder / f"head-{k}.json").exists():
            pair = load([folder / f"base-{k}.json"]), load([folder / f"head-{k}.json"])
            ab.add_pair(series, ab.pair_values(*pair, weights))
            k += 1
        if k > ab.MIN_PAIRS:
            series_runs.append(series)
    if len(series_runs) < 2:
        raise ResultsError(
            f"--rederive: {len(series_runs)} A/A run(s) of {ab.MIN_PAIRS}+ pairs in {results}; run scripts.ab_noise "
            "without --rederive first"
        )
    return series_runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.apart is not None:
        return apart(args, argv)
    results = Path(args.results)
    first = ab_args(args, results / "aa-1")
    base, head = ab.arms(first)
    zero = {"bars": dict.fromkeys(METRICS, 0.0)}  # nothing stops a run early: every run has all its pairs
    started = time.monotonic()
    if not args.rederive:  # else the runs as measured before: no new one
        for i in range(1, args.runs + 1):
            out = results / f"aa-{i}"
            shutil.rmtree(out, ignore_errors=True)  # no pair of an earlier measurement left among this one's
            out.mkdir(parents=True)
            ab.collect(ab_args(args, out), (base, head), out, zero, {}, say=lambda line, i=i: print(f"run {i}: {line}"))
    # each case's own spread first; then every grouped key again, its cases weighted by them (ab_stats)
    count = None if args.rederive else args.runs
    cases = key_spreads(saved_runs(results, count=count), ab.MIN_PAIRS)
    weights = member_weights({"kind": "ab", "weighted": True, "key_spread": cases})
    series_runs = saved_runs(results, weights, count)
    args.runs = len(series_runs)
    args.pairs = min(max(len(s.logs) for s in series.values()) for series in series_runs)
    body = bars_file(
        spreads(series_runs, ab.MIN_PAIRS),
        key_spreads(series_runs, ab.MIN_PAIRS),
        kind="ab",
        weighted=True,
        at_pairs=ab.MIN_PAIRS,
        runs=args.runs,
        pairs_per_run=args.pairs,
        seconds=None if args.rederive else round(time.monotonic() - started, 1),
        rederived=args.rederive,
        workloads=list(base.workloads),
        profile=args.profile,
        command="python -m scripts.ab_noise " + " ".join(sys.argv[1:] if argv is None else argv),
    )
    write_atomic(Path(args.out), json.dumps(body, indent=1) + "\n")
    for m in METRICS:
        print(f"{m}: bar {body['bars'][m]:.1%} (A/A spread {body['spread'][m]:.2%} over {body['keys'][m]} estimates)")
    print(f"wrote {args.out}: give it to `python -m scripts.ab --bars {args.out}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.ab_noise", main))
