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
  single-case bar (``--case-min-effect``): on a shared host a whole run's times move together,
  by up to 42 % between idle quick runs here (docs/gate.md).

A run that was **denied CPU** (its CPU-bound cases' threads waited for a CPU, beyond their own
turns, more than a stated share of what they could use, or the hypervisor stole CPU, judged over
the whole run: common.schema.denied_summary, from the run-queue wait recorded per case) cannot
tell a slower code from a busy neighbour: a regression found against or by such a run is
**inconclusive** (exit 3: re-run), never blamed on the code. A changed effective
CPU count, CPU limit or Python build stays a regression, named as one of the configuration.

A change counts as a regression only when it is both **significant** and **large**: the bootstrap
interval of the ratio current / baseline (resampling the rounds of every side, medians; each side's
draws are its scripts/analysis.py Analysis's, seeded per case as the report's) lies wholly on the
worse side of 1, *and* the point change is worse than ``--min-effect``.
pytest-benchmark's ``--benchmark-compare-fail=mean:5%`` is a bare threshold, which on a noisy
machine either misses regressions or fails builds for nothing; a significance test alone flags
changes too small to matter once rounds are many. The defaults were set from measured run-to-run
noise (docs/gate.md): by default the gate fails on the index (``--min-effect``)
and on single-case speedups (``--case-min-effect``); times and efficiencies are shown, and fail
only when named in ``--fail-on``.

Cases found on one side only are listed; a case missing from CURRENT fails the gate unless
``--allow-missing`` (a case that crashed leaves no result, and must not pass for silence). A
baseline from a different sweep (profile or task sizes) is refused with exit code 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.reference import defects_line
from scripts.analysis import Analysis
from scripts.cli import Parser, run
from scripts.metrics import (
    CONFIDENCE,
    interval,
    run_denied,
)
from scripts.results import Record, ResultsError, Run, latest_runs, load

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
#: The gate's outcomes and their exit statuses (exit 2 is for input it cannot compare at all).
OUTCOMES = {"pass": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE}
FORMATS = ("text", "markdown", "json")
#: Version of the ``--format json`` layout (docs/gate.md). 2 added ``outcome``,
#: ``denied`` (each side's CPU-denial summary) and the ``work`` metric.
COMPARE_SCHEMA = 2
METRICS = ("index", "work", "speedup", "efficiency", "time")
DEFAULT_FAIL_ON = ("index", "work", "speedup")
#: Defaults set above the noise of unchanged quick runs on a shared 2-core machine: docs/gate.md,
#: generated from evidence/gate/ (python -m scripts.evidence).
DEFAULT_MIN_EFFECT = 0.25
DEFAULT_CASE_MIN_EFFECT = 0.5
DEFAULT_CONFIDENCE = 0.99
#: machine_info fields that must agree before absolute times are compared.
SAME_MACHINE_KEYS = ("node", "machine", "processor", "python_implementation", "python_version")


@dataclass(frozen=True)
class Row:
    """One metric of one case, baseline against current."""

    name: str
    metric: str
    baseline: float
    current: float
    ratio_lo: float
    ratio_hi: float
    verdict: str  # same, regression, improvement
    baseline_ci: tuple[float, float] | None = None  # each side's own 95 % interval (speedup, efficiency, index)
    current_ci: tuple[float, float] | None = None

    @property
    def change(self) -> float:
        return self.current / self.baseline - 1.0


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
        "--min-effect",
        type=float,
        default=DEFAULT_MIN_EFFECT,
        help=f"smallest relative change of the scaling index that counts (default: {DEFAULT_MIN_EFFECT} = 25 %%)",
    )
    parser.add_argument(
        "--case-min-effect",
        type=float,
        default=DEFAULT_CASE_MIN_EFFECT,
        help=f"smallest relative change of one case that counts (default: {DEFAULT_CASE_MIN_EFFECT} = 50 %%)",
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
        if not 0 <= getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag}: {getattr(args, name)} is not between 0 and 1 (0.25 means 25 %)")
    if not 0.5 <= args.confidence < 1:
        parser.error(f"--confidence: {args.confidence} is not between 0.5 and 1 (e.g. 0.99)")
    return args


# --- statistics -----------------------------------------------------------------------------------


def judge(point: float, lo: float, hi: float, lower_is_worse: bool, min_effect: float) -> str:
    """``regression`` / ``improvement`` when the interval excludes 1 *and* the change passes the effect size."""
    change = point - 1.0
    if lower_is_worse:
        if hi < 1.0 and change <= -min_effect:
            return "regression"
        if lo > 1.0 and change >= min_effect:
            return "improvement"
    else:
        if lo > 1.0 and change >= min_effect:
            return "regression"
        if hi < 1.0 and change <= -min_effect:
            return "improvement"
    return "same"


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
            "(bench/plan.py), so their times measure different work; run the current side with "
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


def _index_members(records: list[Record]) -> dict[str, list[Record]]:
    """Scaling cases grouped by index: pool and worker count (2 and more), CPU-bound kinds that can scale."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        if r.case != "scaling" or r.executor == "serial" or r.kind == "io" or r.workers < 2:
            continue
        if r.executor == "thread" and r.gil == "holds":
            continue  # cannot scale on threads, whatever happens to the machine
        groups.setdefault(f"index[{r.pool}-w{r.workers}]", []).append(r)
    return groups


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

    def point(self, r: Record) -> float:
        return self._point(r).speedup

    def ideal(self, r: Record) -> float:
        """The point's ideal as the analysis has it (an existing cluster's: its workers' CPUs)."""
        return self._point(r).ideal

    def draws(self, r: Record) -> np.ndarray:
        """Draws of the speedup from its estimate (scripts.metrics ``estimate_draws``)."""
        return self.an.draws_of(r)

    def ci(self, r: Record) -> tuple[float, float]:
        """The speedup's own 95 % interval, as the report states it."""
        p = self._point(r)
        return p.speedup_lo, p.speedup_hi

    def medians(self, r: Record) -> np.ndarray:
        return self.an.medians(r)


def samplers(base: list[Record], cur: list[Record], seed: int | None) -> tuple[Sampler, Sampler]:
    """Each side analysed once. Draws are seeded per case by file and case name (as the report's);
    two files of the same name, or ``--seed``, salt them so the two sides' draws stay independent."""
    same_name = bool({Path(r.run.source).name for r in base} & {Path(r.run.source).name for r in cur})
    b_salt = "" if seed is None else f"seed {seed}:"
    c_salt = f"seed {seed}:current:" if seed is not None else ("current:" if same_name else "")
    return Sampler(Analysis(base, salt=b_salt)), Sampler(Analysis(cur, salt=c_salt))


def compare(
    base: list[Record], cur: list[Record], args, sides: tuple[Sampler, Sampler]
) -> tuple[list[Row], list[str], list[str], bool]:
    """(rows, names only in baseline, names only in current, absolute times compared?)."""
    b_by, c_by = {r.name: r for r in base}, {r.name: r for r in cur}
    only_base = sorted(set(b_by) - set(c_by))
    only_cur = sorted(set(c_by) - set(b_by))
    bs, cs = sides
    absolute = args.absolute == "always" or (args.absolute == "auto" and same_machine(base[0], cur[0]))
    absolute = absolute and not size_changes(base, cur)  # other work: its time is no regression
    rows = []

    b_groups, c_groups = _index_members(base), _index_members(cur)
    for key in sorted(set(b_groups) & set(c_groups)):
        names = sorted({r.name for r in b_groups[key]} & {r.name for r in c_groups[key]})
        pairs = [(b_by[n], c_by[n]) for n in names if bs.has(b_by[n]) and cs.has(c_by[n])]
        if not pairs:
            continue
        b_point = math.exp(sum(math.log(bs.point(b)) for b, _ in pairs) / len(pairs))
        c_point = math.exp(sum(math.log(cs.point(c)) for _, c in pairs) / len(pairs))
        b_draws = _geomean([bs.draws(b) for b, _ in pairs])
        c_draws = _geomean([cs.draws(c) for _, c in pairs])
        lo, hi = interval(c_draws / b_draws, args.confidence)
        verdict = judge(c_point / b_point, lo, hi, True, args.min_effect)
        rows.append(
            Row(
                f"{key} ({len(pairs)} workload{'s' if len(pairs) > 1 else ''})",
                "index",
                b_point,
                c_point,
                lo,
                hi,
                verdict,
                interval(b_draws, CONFIDENCE),
                interval(c_draws, CONFIDENCE),
            )
        )

    if absolute:
        rows += _work_rows(base, cur, bs, cs, args)

    for name in sorted(set(b_by) & set(c_by)):
        b, c = b_by[name], c_by[name]
        if absolute:
            bd, cd = bs.medians(b), cs.medians(c)
            lo, hi = interval(cd / bd, args.confidence)
            verdict = judge(c.median / b.median, lo, hi, False, args.case_min_effect)
            rows.append(Row(name, "time", b.median, c.median, lo, hi, verdict))
        if not (bs.has(b) and cs.has(c)):
            continue
        b_ideal, c_ideal = bs.ideal(b), cs.ideal(c)
        for metric, scale_b, scale_c in (("speedup", 1.0, 1.0), ("efficiency", b_ideal, c_ideal)):
            b_draws, c_draws = bs.draws(b) / scale_b, cs.draws(c) / scale_c
            lo, hi = interval(c_draws / b_draws, args.confidence)
            base_v, cur_v = bs.point(b) / scale_b, cs.point(c) / scale_c
            verdict = judge(cur_v / base_v, lo, hi, True, args.case_min_effect)
            (b_lo, b_hi), (c_lo, c_hi) = bs.ci(b), cs.ci(c)
            rows.append(
                Row(
                    name,
                    metric,
                    base_v,
                    cur_v,
                    lo,
                    hi,
                    verdict,
                    (b_lo / scale_b, b_hi / scale_b),
                    (c_lo / scale_c, c_hi / scale_c),
                )
            )
    return rows, only_base, only_cur, absolute


def _work_rows(base: list[Record], cur: list[Record], bs: Sampler, cs: Sampler, args) -> list[Row]:
    """A ``work[workload]`` row per workload: the geometric mean current / baseline time of its scaling cases."""
    # I/O workloads are left out, as from the scaling index: their times are the disk's and the sleep's
    b_by = {r.name: r for r in base if r.case == "scaling" and r.kind != "io"}
    c_by = {r.name: r for r in cur if r.case == "scaling" and r.kind != "io"}
    by_workload: dict[str, list[tuple[Record, Record]]] = {}
    for name in sorted(set(b_by) & set(c_by)):
        by_workload.setdefault(b_by[name].workload, []).append((b_by[name], c_by[name]))
    rows = []
    for workload, pairs in sorted(by_workload.items()):
        point = math.exp(sum(math.log(c.median / b.median) for b, c in pairs) / len(pairs))
        draws = _geomean([cs.medians(c) / bs.medians(b) for b, c in pairs])
        lo, hi = interval(draws, args.confidence)
        b_time = math.exp(sum(math.log(b.median) for b, _ in pairs) / len(pairs))
        rows.append(
            Row(
                f"work[{workload}] ({len(pairs)} case{'s' if len(pairs) > 1 else ''})",
                "work",
                b_time,
                b_time * point,
                lo,
                hi,
                judge(point, lo, hi, False, args.case_min_effect),
            )
        )
    return rows


def _fmt(metric: str, value: float, ci: tuple[float, float] | None = None) -> str:
    if metric in ("time", "work"):
        return f"{value * 1e3:.3f} ms"
    if ci is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def render(rows: list[Row], only_base: list[str], only_cur: list[str], notes: list[str]) -> str:
    """One line per row: each side's value (with its own 95 % interval), the change, the ratio's interval."""
    width = max([len(r.name) for r in rows] + [20])
    cols = [(_fmt(r.metric, r.baseline, r.baseline_ci), _fmt(r.metric, r.current, r.current_ci)) for r in rows]
    side = max([len(x) for pair in cols for x in pair] + [12])
    lines = [
        f"{'case':<{width}}  {'metric':<10}  {'baseline':>{side}}  {'current':>{side}}  {'change':>8}  "
        f"{'ratio interval':>17}  verdict",
    ]
    for r, (b, c) in zip(rows, cols, strict=True):
        flag = r.verdict.upper() if r.verdict == "regression" else r.verdict
        lines.append(
            f"{r.name:<{width}}  {r.metric:<10}  {b:>{side}}  {c:>{side}}  "
            f"{r.change:>+8.1%}  [{r.ratio_lo:6.3f}, {r.ratio_hi:6.3f}]  {flag}"
        )
    lines += [f"only in baseline (missing now): {name}" for name in only_base]
    lines += [f"only in current (new): {name}" for name in only_cur]
    lines.append(
        f"speedup, efficiency and index values carry their own {CONFIDENCE:.0%} interval (bootstrap over rounds, "
        "serial rounds paired with the pool's where recorded); the ratio interval is the gate's"
    )
    lines += notes
    return "\n".join(lines)


@dataclass(frozen=True)
class Gate:
    """Everything the gate decided, whatever the output format."""

    rows: list[Row]
    only_base: list[str]
    only_cur: list[str]
    notes: list[str]
    regressions: list[Row]  # regressions of the metrics in --fail-on
    shown: list[Row]  # regressions of other metrics: shown, not failing
    fails: bool  # a regression (or a missing case) was found
    outcome: str = "pass"  # pass, regression or inconclusive (OUTCOMES)
    verdict: str = ""  # the one line that says which, and why
    denied: tuple[dict, dict] | None = None  # each side's denied_summary (baseline, current)

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    @property
    def fell(self) -> list[str]:
        return sorted({r.name for r in self.regressions + self.shown if r.metric in ("speedup", "index")})


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
    """What changed in the configuration between the runs: effective CPUs, CPU limit, Python build."""
    out = []
    if base.effective_cpus != cur.effective_cpus:
        out.append(f"effective CPUs changed: {base.effective_cpus:g} -> {cur.effective_cpus:g}")
    b_quota, c_quota = base.poolbench.get("cpu_quota"), cur.poolbench.get("cpu_quota")
    if b_quota != c_quota:
        shown = ["none" if q is None else f"{q:g}" for q in (b_quota, c_quota)]
        out.append(f"CPU quota changed: {shown[0]} -> {shown[1]}")
    if base.python_build != cur.python_build:
        out.append(f"Python build changed: {base.python_build} -> {cur.python_build}")
    return out


def outcome_of(fails: bool, changed: list[str], denied: tuple[dict, dict], regressions: list[Row]) -> tuple[str, str]:
    """The gate's outcome and its one line (module doc): pass, regression (of the code or of the
    configuration) or inconclusive (a side was denied CPU, so a regression, or a pass against a
    slowed baseline, says nothing about the code)."""
    base_denied, cur_denied = (bool(d.get("denied")) for d in denied)
    what = ", ".join(sorted({r.name for r in regressions})[:4]) or "a case is missing"
    if fails and changed:
        return "regression", f"regression of the configuration ({'; '.join(changed)}): {what}"
    if (fails and (base_denied or cur_denied)) or base_denied:
        sides = [name for name, d in (("the baseline", base_denied), ("this run", cur_denied)) if d]
        share = max((d.get("wait_share") or 0.0) for d in denied)
        return (
            "inconclusive",
            f"inconclusive: {' and '.join(sides)} {'was' if len(sides) == 1 else 'were'} denied CPU (waited for a CPU "
            f"up to {share:.0%} of the CPU time the cases could use; another program shared the machine); re-run "
            "on an idle machine",
        )
    if fails:
        return "regression", f"regression: {what}"
    return "pass", "pass: no regression beyond noise" + (
        "; this run was denied CPU and passed anyway" if cur_denied else ""
    )


def _tally(args, gate: Gate) -> str:
    return (
        f"{len(gate.regressions)} regression(s) that fail the gate ({', '.join(args.fail_on)}) in {len(gate.rows)} "
        f"comparisons, {len(gate.shown)} more shown only; min effect {args.min_effect:.0%} (index), "
        f"{args.case_min_effect:.0%} (one case), {args.confidence:.0%} intervals; "
        f"{len(gate.only_base)} case(s) missing now, {len(gate.only_cur)} new"
    )


def render_text(args, gate: Gate) -> str:
    text = render(gate.rows, gate.only_base, gate.only_cur, gate.notes) + "\n\n" + _tally(args, gate)
    if gate.fell:
        text += "\nspeedup fell: " + ", ".join(gate.fell)
    return text + "\n" + gate.verdict


def render_markdown(args, gate: Gate) -> str:
    """A pull-request comment or job summary: the verdict first, what changed, then every row folded."""
    mark = {"pass": "✅", "regression": "❌", "inconclusive": "⚠️"}[gate.outcome]
    lines = [
        f"{mark} **poolbench gate: {gate.outcome}** ({gate.exit_code}): {gate.verdict}",
        "",
        _tally(args, gate),
        "",
    ]
    changed = [r for r in gate.rows if r.verdict != "same"]
    header = ["case", "metric", "baseline", "current", "change", "ratio interval", "verdict"]

    def cells(r: Row) -> list[str]:
        flag = f"**{r.verdict}**" if r in gate.regressions else r.verdict
        return [
            f"`{r.name}`",
            r.metric,
            _fmt(r.metric, r.baseline, r.baseline_ci),
            _fmt(r.metric, r.current, r.current_ci),
            f"{r.change:+.1%}",
            f"[{r.ratio_lo:.3f}, {r.ratio_hi:.3f}]",
            flag,
        ]

    def table(rows: list[Row]) -> list[str]:
        return [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(cells(r)) + " |" for r in rows),
        ]

    if changed:
        lines += ["Changed beyond noise:", "", *table(changed), ""]
    lines += [f"- missing now (only in baseline): `{n}`" for n in gate.only_base]
    lines += [f"- new (only in current): `{n}`" for n in gate.only_cur]
    lines += [f"- {n}" for n in gate.notes]
    lines += [
        "",
        f"<details><summary>all {len(gate.rows)} comparisons</summary>",
        "",
        *table(gate.rows),
        "",
        "</details>",
    ]
    return "\n".join(lines)


def render_json(args, gate: Gate) -> str:
    def row(r: Row) -> dict:
        return {
            "name": r.name,
            "metric": r.metric,
            "baseline": r.baseline,
            "current": r.current,
            "baseline_interval": list(r.baseline_ci) if r.baseline_ci else None,
            "current_interval": list(r.current_ci) if r.current_ci else None,
            "change": r.change,
            "ratio_interval": [r.ratio_lo, r.ratio_hi],
            "verdict": r.verdict,
            "fails_gate": r in gate.regressions,
        }

    return json.dumps(
        {
            "compare_schema": COMPARE_SCHEMA,
            "baseline": args.baseline,
            "current": args.current,
            "passed": gate.outcome == "pass",
            "outcome": gate.outcome,
            "verdict": gate.verdict,
            "exit_code": gate.exit_code,
            "denied": {"baseline": gate.denied[0], "current": gate.denied[1]} if gate.denied else None,
            "fail_on": list(args.fail_on),
            "min_effect": args.min_effect,
            "case_min_effect": args.case_min_effect,
            "confidence": args.confidence,
            "rows": [row(r) for r in gate.rows],
            "missing": gate.only_base,
            "new": gate.only_cur,
            "speedup_fell": gate.fell,
            "notes": gate.notes,
        },
        indent=1,
    )


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}


def work(args, base: list[Record], cur: list[Record]) -> int:
    gate = decide(args, base, cur)
    print(RENDERERS[getattr(args, "format", "text")](args, gate))
    return gate.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return work(args, one_run(args.baseline), one_run(args.current))


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.compare", main))
