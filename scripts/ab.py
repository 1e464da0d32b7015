"""A/B gate: ``python -m scripts.ab BASE HEAD --workload-file PATH [...] [-- suite options]``.

Measures two arms in one job, on one machine, interleaved, and gates HEAD against BASE; exit 0 pass (or
improvement), 1 regression, 3 inconclusive, 2 unusable input (one line), as ``scripts.compare``.

* **Arms.** BASE and HEAD are folders (two checkouts of your repository); each ``--workload-file PATH``
  is relative to both, so the same file is measured as each checkout has it. ``--base-python`` /
  ``--head-python`` run an arm under another interpreter or environment (another NumPy, another
  build), and ``--base-option`` / ``--head-option`` give an arm suite options of its own (an allocator
  policy, a start method). What both share goes after ``--``.
* **Interleaved runs.** Each arm runs as short suite runs (``pytest bench --cases scaling --passes 1``,
  your workloads only), in pairs whose order alternates (BASE HEAD, HEAD BASE, ...: ABBA, as asv's
  ``--interleave-rounds``), so what moves the machine over minutes moves both arms alike. The first
  BASE run calibrates the task sizes and every later run of both arms reuses them (``--sizes-from``):
  both arms do the same work per task, and a slower HEAD shows as more time.
* **Paired ratios.** Per pair, every metric of scripts/gating.py (the scaling index, the work index,
  each case's time, speedup and efficiency) is taken as HEAD over BASE; over the pairs, the ratio is
  the geometric mean and its interval Student's t on the pairs' log ratios. A change counts when the
  interval lies wholly on the worse side of 1 *and* the change passes its bar. An index's value in a run
  weighs its cases by one over their A/A spread squared, where the bars file measured every one of them
  (:func:`scripts.ab_stats.member_weights`): the least-noisy mean of the same cases.
* **Bars from measured noise.** Each metric's bar comes from A/A runs of the same code in both arms
  (``python -m scripts.ab_noise``): the spread of its estimate after the fewest pairs a run may stop
  at, times :data:`scripts.ab_noise.Z`. After more pairs the estimate is a mean of more independent
  pairs, so its spread, and the bar with it, shrinks as one over the square root of the pairs
  (:func:`bars_at`; the A/A runs of the evidence check that false alarms stay at zero). Each key the
  A/A runs measured (a workload's work index, a pool's scaling index, a case) has its own spread and bar
  (:func:`key_bars_at`): workloads differ in noise, and a pooled bar held the quiet ones to the noisy
  one's. The defaults
  are this repository's machine's (evidence/ab/bars.json, docs/gate.md's generated block); measure
  your runner's with ``scripts.ab_noise`` and pass ``--bars``.
* **Stopping.** After :data:`MIN_PAIRS` pairs, a run stops as soon as every failing metric's interval
  lies beyond its bar or within it; otherwise at ``--max-pairs`` pairs, or when another pair as slow as
  the slowest so far would pass ``--budget`` seconds (the mean pair let one evidence run end at 121 s).
* **What fails.** By default a regression of the aggregates fails: the scaling index (per pool and
  worker count, over the workloads) and the work index (per workload, over its cases). A single case's
  speedup or time is shown with its verdict but does not fail unless ``--fail-on`` names it: over the
  evidence's 10 A/A runs of 6 pairs (docs/gate.md), the aggregates' estimates stayed within their bars
  (index 0 of 20 past it, work 1 of 30 and not significant), while single cases' had tails the spread
  behind their bars does not describe (speedup 2 of 120 past it, one of them significant: a false alarm;
  time 10 of 150).
* **Denied CPU**: a job denied CPU makes a regression inconclusive, as the two-file gate does with a run
  (scripts/gating.py ``outcome_of``). An arm's runs are one run in pieces, so the rule (common/denied.py)
  is judged over all its cases together, as over a run's (on this idle machine a short run's share reads
  4-13 %, docs/gate.md). The arms ran interleaved on the same minutes, so a neighbour that shared the
  machine denied both: the job counts as denied when both arms were, and its share is the lower one. What
  one arm waited beyond the other is its code's (a lock's wake-ups wait too: HEAD waited 1-2 points more
  than BASE in each of the evidence's lock runs, 10.3 % against 8.3 % in one). Each arm's share, and each
  run's, is kept in the output.

A regression of the scaling index, a speedup or an efficiency is named a *scaling* regression (the pool
scales worse: a lock, contention, pickling); one of the work index or a time, a *time* regression.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts.ab_stats import Series, bars_at, key_bars_at, member_weights, shares
from scripts.analysis import Analysis
from scripts.causes import run_denied
from scripts.cli import Parser, prepare_out, run, write_atomic
from scripts.compare import Sampler
from scripts.containers import MatrixError, workload_names
from scripts.gating import (
    BY_NAME,
    FORMATS,
    METRIC_RECORDS,
    METRICS,
    RENDERERS,
    Gate,
    Row,
    judge,
    load_bars,
    outcome_of,
)
from scripts.results import Record, ResultsError, load

ROOT = Path(__file__).resolve().parents[1]
#: The bars this repository's machine supports (scripts/ab_noise.py wrote them from A/A runs).
DEFAULT_BARS = ROOT / "evidence" / "ab" / "bars.json"
#: The metrics whose regressions fail by default: the aggregates (module doc, "What fails").
DEFAULT_FAIL_ON = ("index", "work")
#: The fewest pairs a run decides on (a t interval from fewer is too wide to say anything), the most,
#: and the default budget in seconds (issue #32: three workloads in two minutes, quick profile).
MIN_PAIRS = 3
MAX_PAIRS = 12
DEFAULT_BUDGET_S = 120.0
DEFAULT_CONFIDENCE = 0.95
#: Passes per run: each adds a round of every point at the cost of its cases only, where a run of its own
#: adds the suite's start-up too (docs/gate.md's A/B evidence was measured at this many).
DEFAULT_PASSES = 3
#: A scaling regression (the pool scales worse) against a time regression (the work got slower).
SCALING_METRICS = ("index", "speedup", "efficiency")


@dataclasses.dataclass(frozen=True)
class Arm:
    """One side of the A/B run: the folder its files are read from, its Python, its own suite options."""

    name: str  # "base" or "head"
    folder: Path
    python: str
    options: tuple[str, ...]
    files: tuple[Path, ...]
    workloads: tuple[str, ...]


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.ab", description=__doc__.splitlines()[0])
    parser.add_argument("base", metavar="BASE", help="folder of the reference side (a checkout of your repository)")
    parser.add_argument("head", metavar="HEAD", help="folder of the side under test")
    parser.add_argument(
        "--workload-file",
        action="append",
        default=[],
        dest="workload_files",
        metavar="PATH",
        help="a workload file, its path relative to both BASE and HEAD (repeat for several)",
    )
    parser.add_argument("--base-python", default=sys.executable, help="the Python of BASE (default: this one)")
    parser.add_argument("--head-python", default=sys.executable, help="the Python of HEAD (default: this one)")
    parser.add_argument(
        "--base-option", action="append", default=[], metavar="OPTION", help="a suite option for BASE only (repeat)"
    )
    parser.add_argument(
        "--head-option", action="append", default=[], metavar="OPTION", help="a suite option for HEAD only (repeat)"
    )
    parser.add_argument("--profile", default="quick", help="the suite's profile for every run (default: quick)")
    parser.add_argument(
        "--passes",
        type=int,
        default=DEFAULT_PASSES,
        help=f"passes of every point in each run (default {DEFAULT_PASSES}: more rounds per suite start-up)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"seconds to spend at most (default {DEFAULT_BUDGET_S:g})",
    )
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS, help=f"pairs of runs at most (default {MAX_PAIRS})")
    parser.add_argument(
        "--min-pairs",
        type=int,
        default=MIN_PAIRS,
        help=f"pairs before a run may stop (default {MIN_PAIRS}; the bars are measured at this many)",
    )
    parser.add_argument(
        "--bars",
        default=str(DEFAULT_BARS),
        help="the bars file scripts.ab_noise wrote (default: this repository's machine's, evidence/ab/bars.json)",
    )
    parser.add_argument(
        "--fail-on",
        default=",".join(DEFAULT_FAIL_ON),
        help=f"comma list of {', '.join(METRICS)}: the metrics whose regressions fail (default: "
        f"{','.join(DEFAULT_FAIL_ON)})",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=DEFAULT_CONFIDENCE,
        help=f"confidence of the pairs' interval (default {DEFAULT_CONFIDENCE})",
    )
    parser.add_argument("--out", default="ab-results", help="folder for every run's results and the gate's outputs")
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), markdown or json")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    parser.epilog = "Options after -- go to every run's `pytest bench` (e.g. -- --workers 1,2)."
    args = parser.parse_args(argv[:cut])
    args.suite = argv[cut + 1 :]
    chosen = tuple(m.strip() for m in args.fail_on.split(","))
    if not chosen or any(m not in METRICS for m in chosen):
        parser.error(f"--fail-on: {args.fail_on!r}; choose from {', '.join(METRICS)}")
    args.fail_on = chosen
    if not args.workload_files:
        parser.error("no --workload-file: name the file(s) of your workloads, relative to BASE and HEAD")
    if args.budget <= 0:
        parser.error(f"--budget {args.budget:g}: give a positive number of seconds")
    if args.passes < 1:
        parser.error(f"--passes {args.passes}: give 1 or more")
    if not 2 <= args.min_pairs <= args.max_pairs:
        parser.error(f"--min-pairs {args.min_pairs} / --max-pairs {args.max_pairs}: need 2 <= min <= max")
    if not 0.5 <= args.confidence < 1:
        parser.error(f"--confidence: {args.confidence} is not between 0.5 and 1 (e.g. 0.95)")
    return args


# --- the arms ----------------------------------------------------------------------------------------------


def arms(args) -> tuple[Arm, Arm]:
    """Both arms, their files checked (present in both, importable) and the workloads both define."""
    out = []
    for name, folder, python, options in (
        ("base", args.base, args.base_python, args.base_option),
        ("head", args.head, args.head_python, args.head_option),
    ):
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise ResultsError(f"{name.upper()} {folder}: not a folder; give a checkout of your repository")
        files = []
        for rel in args.workload_files:
            path = root / rel
            if not path.is_file():
                raise ResultsError(
                    f"--workload-file {rel}: no such file in {name.upper()} ({path}); the path is relative to "
                    "both BASE and HEAD"
                )
            files.append(path)
        try:
            names = workload_names(files)
        except MatrixError as exc:
            raise ResultsError(f"{name.upper()}: {exc}") from None
        defined = tuple(dict.fromkeys(n for p in files for n in names[str(p)]))
        out.append(Arm(name, root, python, tuple(options), tuple(files), defined))
    base, head = out
    shared = tuple(n for n in base.workloads if n in head.workloads)
    if not shared:
        raise ResultsError(
            f"BASE's files define {', '.join(base.workloads) or 'no workload'} and HEAD's "
            f"{', '.join(head.workloads) or 'no workload'}: nothing to compare; both must define a workload of one name"
        )
    return dataclasses.replace(base, workloads=shared), dataclasses.replace(head, workloads=shared)


def command(arm: Arm, args, out: Path, sizes_from: Path | None) -> list[str]:
    """One short run of the suite for ``arm``: its files' workloads, scaling cases, one pass."""
    cmd = [arm.python, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
    cmd += ["--cases", "scaling", "--passes", str(args.passes), "--workloads", ",".join(arm.workloads)]
    if not any(o == "--workers" or o.startswith("--workers=") for o in (*args.suite, *arm.options)):
        cmd += ["--workers", f"1,{len(os.sched_getaffinity(0))}"]  # one worker and every CPU it may use
    for path in arm.files:
        cmd += ["--workload-file", str(path)]
    if sizes_from is not None:
        cmd += ["--sizes-from", str(sizes_from)]
    return [*cmd, *args.suite, *arm.options, "--benchmark-json", str(out)]


def run_arm(arm: Arm, args, out: Path, sizes_from: Path | None) -> list[Record]:
    """One run of ``arm``, its results loaded; ResultsError naming the log when it failed."""
    log = out.with_suffix(".log")
    with open(log, "w") as f:
        done = subprocess.run(
            command(arm, args, out, sizes_from), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0 or not out.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        raise ResultsError(
            f"the {arm.name.upper()} run {out.name} failed (exit {done.returncode}): "
            f"{lines[-1] if lines else 'no output'}; its log is {log}"
        )
    return load([out])


# --- the pairs ---------------------------------------------------------------------------------------------


def pair_values(
    base: list[Record], head: list[Record], weights: dict | None = None
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """Every metric key both runs of one pair measured: (BASE's value, HEAD's value, records under the key). A
    grouped key's value is the weighted geometric mean of its members' (``weights``: :func:`member_weights`)."""
    sides = Sampler(Analysis(base)), Sampler(Analysis(head, salt="head:"))
    out = {}
    for metric in METRIC_RECORDS:
        b_groups, h_groups = metric.members(base), metric.members(head)
        for key in sorted(set(b_groups) & set(h_groups)):
            h_by = {r.name: r for r in h_groups[key]}
            pairs = [
                (b, h_by[b.name])
                for b in b_groups[key]
                if b.name in h_by and sides[0].usable(metric, b) and sides[1].usable(metric, h_by[b.name])
            ]
            if not pairs:
                continue
            w = shares(weights, metric.name, [b.name for b, _ in pairs])
            b_val = math.exp(sum(x * math.log(sides[0].value(metric, b)) for x, (b, _) in zip(w, pairs, strict=True)))
            h_val = math.exp(sum(x * math.log(sides[1].value(metric, h)) for x, (_, h) in zip(w, pairs, strict=True)))
            out[(metric.name, key)] = (b_val, h_val, len(pairs))
    return out


def add_pair(series: dict[tuple[str, str], Series], values: dict[tuple[str, str], tuple[float, float, int]]) -> None:
    for (name, key), (b, h, members) in values.items():
        s = series.setdefault((name, key), Series(BY_NAME[name], key, members))
        s.base.append(b)
        s.head.append(h)


def verdicts(
    series: dict, bars: dict[str, float], confidence: float, pairs: int, keyed: dict | None = None
) -> list[Row]:
    """One row per metric key from the first ``pairs`` pairs, each judged on its key's bar where ``keyed``
    (:func:`key_bars_at`) has one over as many members (a one-workload scaling index is not the A/A runs'
    index over three), else its metric's."""
    rows = []
    for s in series.values():
        n = min(pairs, len(s.logs))
        if n < 1:
            continue
        ratio, lo, hi = s.estimate(confidence, n)
        own, members = (keyed or {}).get((s.metric.name, s.key), (None, None))
        bar = own if own is not None and members in (None, s.members) else bars[s.metric.name]
        verdict = judge(ratio, lo, hi, s.metric.lower_is_worse, bar)
        base = math.exp(statistics.fmean(math.log(v) for v in s.base[:n]))
        name = s.metric.row_name(s.key, s.members)
        rows.append(Row(name, s.metric.name, base, base * ratio, lo, hi, verdict, bar=bar))
    order = {m.name: i for i, m in enumerate(METRIC_RECORDS)}
    grouped = [r for r in rows if BY_NAME[r.metric].grouped]
    per_case = sorted((r for r in rows if not BY_NAME[r.metric].grouped), key=lambda r: (r.name, order[r.metric]))
    return [*sorted(grouped, key=lambda r: (order[r.metric], r.name)), *per_case]


def clear(rows: list[Row], bars: dict[str, float], fail_on: Sequence[str]) -> bool:
    """Whether every failing metric's answer is settled: its interval beyond its bar, or within it."""
    for r in rows:
        if r.metric not in fail_on or r.verdict != "same":
            continue
        bar = math.log1p(bars[r.metric] if r.bar is None else r.bar)
        if not (r.ratio_lo > 0 and -bar < math.log(r.ratio_lo) and math.log(r.ratio_hi) < bar):
            return False
    return True


# --- the run -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What an A/B run measured and decided."""

    gate: Gate
    pairs: int
    stopped: str
    runs: list[str]
    seconds: float
    bars: dict


def collect(
    args, arms_: tuple[Arm, Arm], out: Path, bars: dict, series: dict, *, say=print
) -> tuple[int, str, list, dict]:
    """Pairs of runs into ``series`` until the answer is clear or the budget is spent (module doc):
    (pairs, why it stopped, the runs' files, each arm's runs' records)."""
    base, head = arms_
    started = time.monotonic()
    runs: list[str] = []
    records: dict[str, list[list[Record]]] = {"base": [], "head": []}
    sizes_from: Path | None = None
    pairs, stopped = 0, f"--max-pairs {args.max_pairs}"
    slowest = 0.0  # the longest pair so far: what the next one may take
    while pairs < args.max_pairs:
        pair_started = time.monotonic()
        order = (base, head) if pairs % 2 == 0 else (head, base)
        results = {}
        for arm in order:
            path = out / f"{arm.name}-{pairs + 1}.json"
            results[arm.name] = run_arm(arm, args, path, sizes_from)
            runs.append(path.name)
            records[arm.name].append(results[arm.name])
            if sizes_from is None:  # the first BASE run calibrated: every later run does the same work
                sizes_from = path
        add_pair(series, pair_values(results["base"], results["head"], member_weights(bars)))
        pairs += 1
        slowest = max(slowest, time.monotonic() - pair_started)
        spent = time.monotonic() - started
        say(f"ab: pair {pairs} ({' '.join(a.name for a in order)}) done, {spent:.0f} s")
        now = bars_at(bars, pairs)
        if pairs >= args.min_pairs and clear(
            verdicts(series, now, args.confidence, pairs, key_bars_at(bars, pairs)), now, args.fail_on
        ):
            stopped = "clear"
            break
        if pairs < args.max_pairs and spent + slowest > args.budget:  # another pair as slow would pass the budget
            stopped = f"--budget {args.budget:g} s"
            break
    return pairs, stopped, runs, records


def measure(args, base: Arm, head: Arm, out: Path, bars: dict, *, say=print) -> Outcome:
    """The A/B run (module doc) and its decision."""
    started = time.monotonic()
    series: dict[tuple[str, str], Series] = {}
    pairs, stopped, runs, records = collect(args, (base, head), out, bars, series, say=say)
    rows = verdicts(series, bars_at(bars, pairs), args.confidence, pairs, key_bars_at(bars, pairs))
    machine = job_denied(arm_denied(records["base"]), arm_denied(records["head"]))
    return Outcome(decide(rows, args, (machine, machine)), pairs, stopped, runs, time.monotonic() - started, bars)


def arm_denied(runs: list[list[Record]]) -> dict:
    """One arm's denied-CPU summary (module doc): the run rule over all its runs' cases together, and each
    run's own summary under ``runs``."""
    return {**run_denied([r for run_ in runs for r in run_]), "runs": [run_denied(run_) for run_ in runs]}


def job_denied(base: dict, head: dict) -> dict:
    """The job's denied-CPU summary from its arms' (module doc): denied when both arms were, each share the
    lower arm's; the arms' own summaries under ``arms``."""

    def low(key: str):
        values = [d.get(key) for d in (base, head) if d.get(key) is not None]
        return min(values) if values else None

    return {
        **{k: v for k, v in base.items() if k != "runs"},
        "wait_share": low("wait_share"),
        "steal_share": low("steal_share"),
        "denied": bool(base.get("denied") and head.get("denied")),
        "arms": {"base": base, "head": head},
    }


def decide(rows: list[Row], args, sides: tuple[dict, dict]) -> Gate:
    """The outcome from the rows and the denied-CPU summaries of the two sides (the job's, twice, in an A/B
    run: :func:`job_denied`)."""
    regressions = [r for r in rows if r.verdict == "regression" and r.metric in args.fail_on]
    shown = [r for r in rows if r.verdict == "regression" and r.metric not in args.fail_on]
    outcome, verdict = outcome_of(bool(regressions), [], sides, regressions)
    if outcome == "regression":
        kinds = sorted({"scaling" if r.metric in SCALING_METRICS else "time" for r in regressions})
        verdict = f"{' and '.join(kinds)} regression: " + verdict.removeprefix("regression: ")
    improved = [r for r in rows if r.verdict == "improvement" and r.metric in args.fail_on]
    if outcome == "pass" and improved:
        outcome, verdict = "improvement", "improvement: " + ", ".join(sorted({r.name for r in improved})[:4])
    return Gate(rows, [], [], [], regressions, shown, bool(regressions), outcome, verdict, sides)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base, head = arms(args)
    bars = load_bars(args.bars)
    out = prepare_out(args.out)
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.format == "json" else print
    try:
        done = measure(args, base, head, out, bars, say=say)
    except KeyboardInterrupt:
        print(f"python -m scripts.ab: stopped by Ctrl-C; the runs so far are in {out}", file=sys.stderr)
        return 130
    args.baseline, args.current = str(base.folder), str(head.folder)
    args.bars_of = bars_at(bars, done.pairs)  # the bars the verdicts were judged on
    gate = dataclasses.replace(
        done.gate,
        notes=[
            f"{done.pairs} pairs of runs in {done.seconds:.0f} s (order ABBA; stopped: {done.stopped}); each run's "
            f"results in {out}; bars from {args.bars}",
        ],
        extra={
            "ab": {
                "pairs": done.pairs,
                "stopped": done.stopped,
                "runs": done.runs,
                "seconds": round(done.seconds, 1),
                "bars_file": args.bars,
                "workloads": list(base.workloads),
                "order": "ABBA",
            }
        },
    )
    write_atomic(out / "ab.md", RENDERERS["markdown"](args, gate) + "\n")
    write_atomic(out / "ab.json", RENDERERS["json"](args, gate) + "\n")
    print(RENDERERS[args.format](args, gate))
    return gate.exit_code


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.ab", main))
