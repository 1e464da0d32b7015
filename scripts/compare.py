"""Regression gate: ``python -m scripts.compare BASELINE CURRENT``; exit 0 pass, 1 regression, 3 inconclusive.

Compares two runs of the same sweep case by case, from their per-round samples:

* **speedup** (serial / pool, within each run) and **efficiency** (speedup / ideal) always: they are
  dimensionless, so they travel between machines and cancel most machine drift;
* **time** (the round times themselves) only when both runs come from the same machine and CPU
  limit, or when asked (``--absolute always``);
* a **scaling index** per pool and worker count (2 and more): the geometric mean speedup over
  the CPU-bound workloads that can scale there (on threads, only those that release the GIL).
  One case's speedup swings with the machine; the index averages that out, while a lost CPU or a
  slower pool moves every term the same way;
* a **work index** per workload, on the same machine only: the geometric mean time ratio over the
  workload's scaling cases (serial and every pool). Speedups cannot see code that got slower
  everywhere alike (serial too); times can, where the machine is the same. It is held to the
  single-case bar (``--case-min-effect``): on a shared host a whole run's times move together
  (docs/gate.md's generated block shows how far between idle runs here).

A run that was **denied CPU** (its CPU-bound cases' threads waited for a CPU, beyond their own
turns, more than a stated share of what they could use, or the hypervisor stole CPU, judged over
the whole run: common.denied.denied_summary, from the run-queue wait recorded per case) cannot
tell a slower code from a busy neighbour: a regression found against or by such a run is
**inconclusive** (exit 3: re-run), never blamed on the code. A changed effective
CPU count, CPU limit or Python build stays a regression, named as one of the configuration.

A change counts as a regression only when it is both **significant** and **large**: the bootstrap
interval of the ratio current / baseline (resampling the rounds of every side, medians; each side's
draws are its scripts/analysis.py Analysis's, seeded per case as the report's) lies wholly on the
worse side of 1, *and* the point change is worse than the metric's bar (``--bars``: scripts.ab_noise
derives each from runs of unchanged code made apart; ``--min-effect`` / ``--case-min-effect`` override).
pytest-benchmark's ``--benchmark-compare-fail=mean:5%`` is a bare threshold, which on a noisy
machine either misses regressions or fails builds for nothing; a significance test alone flags
changes too small to matter once rounds are many. The default bars come from measured run-to-run
noise (docs/gate.md): by default the gate fails on the indexes and on single-case speedups; times and
efficiencies are shown, and fail only when named in ``--fail-on``. For a change of your own code,
``scripts.ab`` measures both sides in one job and sees far smaller changes.

Cases found on one side only are listed; a case missing from CURRENT fails the gate unless
``--allow-missing`` (a case that crashed leaves no result, and must not pass for silence). A
baseline from a different sweep (profile or task sizes) is refused with exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.checks import defects_line
from scripts.analysis import CONFIDENCE, Analysis, interval
from scripts.causes import run_denied
from scripts.cli import Parser, run
from scripts.gating import (
    FORMATS,
    METRIC_RECORDS,
    METRICS,
    RENDERERS,
    Gate,
    Metric,
    Row,
    bars,
    judge,
    load_bars,
    outcome_of,
)
from scripts.results import Record, ResultsError, Run, latest_runs, load

DEFAULT_FAIL_ON = ("index", "work", "speedup")
#: The bars this repository's machine supports between runs made apart: scripts.ab_noise --apart wrote them
#: from its unchanged quick runs (evidence/measure.sh, topic gate; docs/gate.md's generated block).
DEFAULT_BARS = Path(__file__).resolve().parents[1] / "evidence" / "gate" / "bars.json"
DEFAULT_CONFIDENCE = 0.99
#: machine_info fields that must agree before absolute times are compared.
SAME_MACHINE_KEYS = ("node", "machine", "processor", "python_implementation", "python_version")


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.compare", description=__doc__.splitlines()[0])
    parser.add_argument("baseline", metavar="BASELINE", help="results file or folder of the reference run")
    parser.add_argument("current", metavar="CURRENT", help="results file or folder of the run under test")
    parser.add_argument(
        "--fail-on",
        default=",".join(DEFAULT_FAIL_ON),
        help="comma list of index, speedup, efficiency, time: the metrics whose regressions fail the gate "
        f"(default: {','.join(DEFAULT_FAIL_ON)})",
    )
    parser.add_argument(
        "--bars",
        default=str(DEFAULT_BARS),
        help="each metric's smallest change that counts, a file of scripts.ab_noise --apart (default: this "
        "repository's machine's, evidence/gate/bars.json)",
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=None,
        help="smallest relative change of the scaling index that counts, instead of its bar (0.25 = 25 %%)",
    )
    parser.add_argument(
        "--case-min-effect",
        type=float,
        default=None,
        help="smallest relative change of one case (and of the work index) that counts, instead of their bars",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=DEFAULT_CONFIDENCE,
        help=f"confidence of the bootstrap interval (default: {DEFAULT_CONFIDENCE})",
    )
    parser.add_argument(
        "--absolute",
        choices=("auto", "always", "never"),
        default="auto",
        help="compare absolute times: auto = only when machine and CPU limit match (default)",
    )
    parser.add_argument("--allow-missing", action="store_true", help="do not fail when a case is missing in CURRENT")
    parser.add_argument(
        "--across-builds",
        action="store_true",
        help="compare runs of different Python builds (3.11 against 3.13t, say); refused by default",
    )
    parser.add_argument(
        "--allow-size-change",
        action="store_true",
        help="compare runs whose task sizes differ (each calibrated on its own host): speedups and efficiency "
        "only, absolute times left out; refused by default (run the current side with --sizes-from BASELINE)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="bootstrap seed (default: each case's own, from its file and case name, as the report's intervals)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default: a table for a terminal or CI log), markdown (for a pull-request comment or a job "
        "summary) or json (for a bot; COMPARE_SCHEMA in the output)",
    )
    args = parser.parse_args(argv)
    chosen = [m.strip() for m in args.fail_on.split(",")]
    if not chosen or any(m not in METRICS for m in chosen):
        parser.error(f"--fail-on: {args.fail_on!r}; choose from {', '.join(METRICS)}")
    args.fail_on = tuple(chosen)
    for name in ("min_effect", "case_min_effect"):
        if getattr(args, name) is not None and not 0 <= getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag}: {getattr(args, name)} is not between 0 and 1 (0.25 means 25 %)")
    if not 0.5 <= args.confidence < 1:
        parser.error(f"--confidence: {args.confidence} is not between 0.5 and 1 (e.g. 0.99)")
    return with_bars(args)


# --- statistics -----------------------------------------------------------------------------------


# --- inputs ---------------------------------------------------------------------------------------


def one_run(path: str) -> list[Record]:
    records = latest_runs(load([path]))
    labels = sorted({r.run.label for r in records})
    if len(labels) > 1:
        raise ResultsError(
            f"{path}: holds runs of {len(labels)} CPU limits ({', '.join(labels)}); give one results file per side"
        )
    return records


def check_same_sweep(
    base: list[Record],
    cur: list[Record],
    names: tuple[str, str],
    across_builds: bool = False,
    allow_size_change: bool = False,
) -> None:
    """Refuse runs whose task sizes differ (their speedups measure different work), or builds unless told."""
    b_build, c_build = base[0].run.python_build, cur[0].run.python_build
    if b_build != c_build and not across_builds:
        raise ResultsError(
            f"{names[0]} ran on Python {b_build} but {names[1]} on {c_build}: another build changes the answer "
            "itself (the GIL, the interpreter's speed, the default start method), so a change there is not a "
            "regression of the same thing; pass --across-builds to compare them anyway"
        )
    b_malloc, c_malloc = malloc_policy(base[0].run), malloc_policy(cur[0].run)
    if b_malloc != c_malloc:
        raise ResultsError(
            f"{names[0]} ran with --malloc {b_malloc} but {names[1]} with --malloc {c_malloc}: the allocator changes "
            "every allocating task's time; save a baseline with the same --malloc (results before schema 4 used fixed)"
        )
    b_cfg = base[0].run.poolbench.get("config", {})
    c_cfg = cur[0].run.poolbench.get("config", {})
    if b_cfg.get("profile") != c_cfg.get("profile"):
        raise ResultsError(
            f"{names[0]} is profile {b_cfg.get('profile')!r} but {names[1]} is {c_cfg.get('profile')!r}; "
            "save a baseline with the same --profile"
        )
    changed = size_changes(base, cur)
    if changed and not allow_size_change:
        raise ResultsError(
            f"{names[0]} and {names[1]} ran different task sizes ({changed[0]}): each calibrated its own "
            "(bench/calibration.py), so their times measure different work; run the current side with "
            f"--sizes-from {names[0]}, or pass --allow-size-change to compare speedups only"
        )


def size_changes(base: list[Record], cur: list[Record]) -> list[str]:
    """Each workload whose task parameter, or each case whose batch, differs between the runs.

    A batch that differs because the effective CPU count did (common/plan.batch_tasks) is the
    configuration change configuration_changes names, not a size change.
    """
    out = []
    current = {r.name: r for r in cur}
    seen = set()
    for b in base:
        c = current.get(b.name)
        if c is None:
            continue
        if b.extra.get("task_param") != c.extra.get("task_param") and b.workload not in seen:
            seen.add(b.workload)
            out.append(f"{b.workload}: {b.extra.get('task_param')!r} against {c.extra.get('task_param')!r}")
        elif b.tasks != c.tasks and b.run.effective_cpus == c.run.effective_cpus:
            out.append(f"{b.name}: {b.tasks} tasks against {c.tasks}")
    return out


def malloc_policy(run: Run) -> str:
    """The allocator policy a run measured under: recorded since schema 4; before, fixed unless --malloc dynamic."""
    malloc = run.poolbench.get("malloc")
    if isinstance(malloc, dict) and malloc.get("policy"):
        return str(malloc["policy"])
    return "fixed" if run.poolbench.get("malloc_mmap_threshold") else "dynamic"


def same_machine(base: Record, cur: Record) -> bool:
    bm, cm = base.run.machine, cur.run.machine
    same = all(bm.get(k) == cm.get(k) for k in SAME_MACHINE_KEYS)
    same = same and (bm.get("cpu") or {}).get("brand_raw") == (cm.get("cpu") or {}).get("brand_raw")
    return same and base.run.effective_cpus == cur.run.effective_cpus


# --- comparison -----------------------------------------------------------------------------------


def _geomean(values: Sequence[np.ndarray]) -> np.ndarray:
    return np.exp(np.mean(np.log(np.vstack(values)), axis=0))


class Sampler:
    """One side's scaling points and bootstrap draws, read off its :class:`~scripts.analysis.Analysis`:
    the same draws, and so the same intervals, as the report's for that file."""

    def __init__(self, an: Analysis) -> None:
        self.an = an

    def has(self, r: Record) -> bool:
        return r.case == "scaling" and r.executor != "serial" and self.an.point_of(r) is not None

    def _point(self, r: Record):
        point = self.an.point_of(r)
        assert point is not None, r.name  # callers ask has() first
        return point

    def value(self, metric: Metric, r: Record) -> float:
        """One record's figure of ``metric`` on this side (the metric's ``quantity``)."""
        if metric.quantity == "time":
            return r.fastest
        p = self._point(r)
        return p.speedup / p.ideal if metric.per_ideal else p.speedup

    def draws(self, metric: Metric, r: Record) -> np.ndarray:
        """Its draws: the speedup's from its estimate (scripts/analysis.py ``estimate_draws``), or the fastest
        round's bootstrap."""
        if metric.quantity == "time":
            return self.an.fastest(r)
        return self.an.draws_of(r) / (self._point(r).ideal if metric.per_ideal else 1.0)

    def ci(self, metric: Metric, r: Record) -> tuple[float, float] | None:
        """A speedup's own 95 % interval, as the report states it (None for a time)."""
        if metric.quantity == "time":
            return None
        p = self._point(r)
        scale = p.ideal if metric.per_ideal else 1.0
        return p.speedup_lo / scale, p.speedup_hi / scale

    def usable(self, metric: Metric, r: Record) -> bool:
        return metric.quantity == "time" or self.has(r)


def samplers(base: list[Record], cur: list[Record], seed: int | None) -> tuple[Sampler, Sampler]:
    """Each side analysed once. Draws are seeded per case by file and case name (as the report's);
    two files of the same name, or ``--seed``, salt them so the two sides' draws stay independent."""
    same_name = bool({Path(r.run.source).name for r in base} & {Path(r.run.source).name for r in cur})
    b_salt = "" if seed is None else f"seed {seed}:"
    c_salt = f"seed {seed}:current:" if seed is not None else ("current:" if same_name else "")
    return Sampler(Analysis(base, salt=b_salt)), Sampler(Analysis(cur, salt=c_salt))


def metric_rows(
    metric: Metric, base: list[Record], cur: list[Record], args, sides: tuple[Sampler, Sampler]
) -> list[Row]:
    """One row per key of ``metric`` that both sides measured: the geometric mean over its records matched by
    name, each side's draws likewise, and the ratio's interval."""
    bs, cs = sides
    b_groups, c_groups = metric.members(base), metric.members(cur)
    rows = []
    for key in sorted(set(b_groups) & set(c_groups)):
        c_by = {r.name: r for r in c_groups[key]}
        pairs = [
            (b, c_by[b.name])
            for b in b_groups[key]
            if b.name in c_by and bs.usable(metric, b) and cs.usable(metric, c_by[b.name])
        ]
        if not pairs:
            continue
        b_point = math.exp(sum(math.log(bs.value(metric, b)) for b, _ in pairs) / len(pairs))
        c_point = math.exp(sum(math.log(cs.value(metric, c)) for _, c in pairs) / len(pairs))
        b_draws = _geomean([bs.draws(metric, b) for b, _ in pairs])
        c_draws = _geomean([cs.draws(metric, c) for _, c in pairs])
        lo, hi = interval(c_draws / b_draws, args.confidence)
        verdict = judge(c_point / b_point, lo, hi, metric.lower_is_worse, bars(args)[metric.name])
        if metric.quantity == "time":
            cis: tuple = (None, None)
        elif metric.grouped:
            cis = (interval(b_draws, CONFIDENCE), interval(c_draws, CONFIDENCE))
        else:
            cis = (bs.ci(metric, pairs[0][0]), cs.ci(metric, pairs[0][1]))
        rows.append(Row(metric.row_name(key, len(pairs)), metric.name, b_point, c_point, lo, hi, verdict, *cis))
    return rows


def compare(
    base: list[Record], cur: list[Record], args, sides: tuple[Sampler, Sampler]
) -> tuple[list[Row], list[str], list[str], bool]:
    """(rows, names only in baseline, names only in current, absolute times compared?).

    Rows come in the order of ``METRIC_RECORDS``: the indexes first, then each case's time, speedup and
    efficiency together."""
    b_by, c_by = {r.name: r for r in base}, {r.name: r for r in cur}
    only_base = sorted(set(b_by) - set(c_by))
    only_cur = sorted(set(c_by) - set(b_by))
    absolute = args.absolute == "always" or (args.absolute == "auto" and same_machine(base[0], cur[0]))
    absolute = absolute and not size_changes(base, cur)  # other work: its time is no regression
    grouped, per_case = [], []
    for metric in METRIC_RECORDS:
        if metric.same_machine and not absolute:
            continue
        (grouped if metric.grouped else per_case).extend(metric_rows(metric, base, cur, args, sides))
    order = {m.name: i for i, m in enumerate(METRIC_RECORDS)}
    per_case.sort(key=lambda r: (r.name, order[r.metric]))
    return grouped + per_case, only_base, only_cur, absolute


def decide(args, base: list[Record], cur: list[Record]) -> Gate:
    check_same_sweep(
        base,
        cur,
        (args.baseline, args.current),
        getattr(args, "across_builds", False),
        getattr(args, "allow_size_change", False),
    )
    sides = samplers(base, cur, args.seed)
    rows, only_base, only_cur, absolute = compare(base, cur, args, sides)
    if not rows and not only_base:
        raise ResultsError(f"{args.baseline} and {args.current} share no case to compare; run the same sweep")
    notes = []
    for name, side in (("baseline", sides[0]), ("current", sides[1])):  # the physical limit, checked on each side
        for view in side.an.runs:
            if line := defects_line(side.an.defects(view)):
                notes.append(f"{name}: {line}")
    if size_changes(base, cur):
        notes.append("absolute times not compared: the task sizes differ (--allow-size-change)")
    elif not absolute:
        notes.append(
            "absolute times not compared: different machine or CPU limit "
            f"({base[0].run.label} vs {cur[0].run.label}); --absolute always to force"
        )
    changed = configuration_changes(base[0].run, cur[0].run)
    notes += changed
    regressions = [r for r in rows if r.verdict == "regression" and r.metric in args.fail_on]
    shown = [r for r in rows if r.verdict == "regression" and r.metric not in args.fail_on]
    missing_fails = bool(only_base) and not args.allow_missing
    fails = bool(regressions) or missing_fails
    denied = (run_denied(base), run_denied(cur))
    outcome, verdict = outcome_of(fails, changed, denied, regressions)
    return Gate(rows, only_base, only_cur, notes, regressions, shown, fails, outcome, verdict, denied)


def configuration_changes(base: Run, cur: Run) -> list[str]:
    """What changed in the configuration between the runs: effective CPUs, CPU limit, Python build, huge pages."""
    out = []
    if base.effective_cpus != cur.effective_cpus:
        out.append(f"effective CPUs changed: {base.effective_cpus:g} -> {cur.effective_cpus:g}")
    b_quota, c_quota = base.poolbench.get("cpu_quota"), cur.poolbench.get("cpu_quota")
    if b_quota != c_quota:
        shown = ["none" if q is None else f"{q:g}" for q in (b_quota, c_quota)]
        out.append(f"CPU quota changed: {shown[0]} -> {shown[1]}")
    if base.python_build != cur.python_build:
        out.append(f"Python build changed: {base.python_build} -> {cur.python_build}")
    b_pages, c_pages = huge_pages(base), huge_pages(cur)
    if b_pages != c_pages:
        out.append(f"transparent huge pages changed: {b_pages} -> {c_pages} (NumPy tasks' times move with them)")
    return out


def huge_pages(run: Run) -> str:
    """Whether a run's tasks could get transparent huge pages: recorded since schema 11 (``malloc.huge_pages``);
    before, they were as the host set them."""
    malloc = run.poolbench.get("malloc")
    pages = malloc.get("huge_pages") if isinstance(malloc, dict) else None
    if not isinstance(pages, dict):
        return "as the host set them"
    return "off" if pages.get("off") else f"as the host set them ({pages.get('host')})"


def work(args, base: list[Record], cur: list[Record]) -> int:
    gate = decide(args, base, cur)
    print(RENDERERS[getattr(args, "format", "text")](args, gate))
    return gate.exit_code


def with_bars(args):
    """``args`` with each metric's bar (``args.bars_of``): the bars file's, --min-effect and --case-min-effect
    in place of theirs where given."""
    own = dict(load_bars(args.bars)["bars"])
    for m in METRIC_RECORDS:
        given = args.min_effect if m.bar == "index" else args.case_min_effect
        if given is not None:
            own[m.name] = given
    args.bars_of = own
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return work(args, one_run(args.baseline), one_run(args.current))


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.compare", main))
