"""The gate's outcome, whatever computed it: one row per metric of a case, the decision, and how it is written.

scripts/compare.py measures two runs against each other and decides (:class:`Gate`); this module holds
what the decision is made of and its three renderings (text for a log, Markdown for a pull request,
JSON for a bot), so that every tool that gates reads and writes one shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.executors import gil_bound
from common.reference import CONFIDENCE
from scripts.results import Record, ResultsError

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


#: The gate's outcomes and their exit statuses (exit 2 is for input it cannot compare at all).
OUTCOMES = {"pass": EXIT_OK, "improvement": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE}


FORMATS = ("text", "markdown", "json")


#: Version of the ``--format json`` layout (docs/gate.md). 2 added ``outcome``,
#: ``denied`` (each side's CPU-denial summary) and the ``work`` metric; 3 replaced ``min_effect`` and
#: ``case_min_effect`` with ``bars`` (each metric's), added the outcome ``improvement`` and, from
#: scripts/ab.py, ``ab`` (its pairs of runs); 4 added each row's ``bar`` (the bar it was judged on: its key's
#: own in an A/B run whose bars file measured the key, else its metric's).
COMPARE_SCHEMA = 4


def _index_members(records: list[Record]) -> dict[str, list[Record]]:
    """Scaling cases grouped by pool and worker count (2 and more), CPU-bound work that can scale there."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        if r.case != "scaling" or r.executor == "serial" or r.kind == "io" or r.workers < 2:
            continue
        if gil_bound(r.executor, r.gil, bool(r.run.poolbench.get("gil_enabled", True))):
            continue  # cannot scale on threads, whatever happens to the machine
        groups.setdefault(f"index[{r.pool}-w{r.workers}]", []).append(r)
    return groups


def _work_members(records: list[Record]) -> dict[str, list[Record]]:
    """Scaling cases grouped by workload, serial and every pool; I/O left out (its time is the disk's, the sleep's)."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        if r.case == "scaling" and r.kind != "io":
            groups.setdefault(f"work[{r.workload}]", []).append(r)
    return groups


def _pool_cases(records: list[Record]) -> dict[str, list[Record]]:
    return {r.name: [r] for r in records if r.case == "scaling" and r.executor != "serial"}


def _every_case(records: list[Record]) -> dict[str, list[Record]]:
    return {r.name: [r] for r in records}


@dataclass(frozen=True)
class Metric:
    """One thing the gate compares, defined once for every tool that gates (scripts/compare.py, scripts/ab.py).

    A metric's value on one side is the geometric mean, over the records its ``members`` groups under one
    key, of each record's ``quantity``: ``speedup`` (the scaling point's, as the analysis has it; over its
    ideal for efficiency) or ``time`` (the fastest round). Lower is worse for a speedup, higher for a time.

    Why the fastest round: noise on a shared host only ever adds time, and here it comes in phases (a vCPU
    runs 1.3-1.7× slower for a fraction of a second to seconds), so a run's few rounds split between two
    speeds and their median jumps between them; the fastest round is the one least disturbed (as timeit and
    Julia's BenchmarkTools take it). Replayed on the 33 saved A/B runs of docs/gate.md's evidence (quick
    profile, 3 rounds per case), with bars re-derived from its 10 A/A runs for each choice: a 5 % slowdown
    caught in 9 of 10 with the fastest round, 6 with the mean or geometric mean, 5 with the median; 10 %
    and the lock caught in all, A/A false alarms alike (1 of 10, the scaling index).
    """

    name: str
    quantity: str  # "speedup" or "time"
    members: Callable[[list[Record]], dict[str, list[Record]]]
    bar: str  # which bar it is held to: "index" (--min-effect) or "case" (--case-min-effect)
    per_ideal: bool = False  # efficiency: the speedup over the point's ideal
    same_machine: bool = False  # absolute times: only between runs of one machine and CPU limit
    grouped: bool = False  # a key stands for several records (its row names how many)

    @property
    def lower_is_worse(self) -> bool:
        return self.quantity == "speedup"

    def row_name(self, key: str, members: int) -> str:
        if not self.grouped:
            return key
        what = "workload" if self.name == "index" else "case"
        return f"{key} ({members} {what}{'s' if members > 1 else ''})"


#: Every metric, in the order the gate's rows list them: the indexes, then each case's rows.
METRIC_RECORDS = (
    Metric("index", "speedup", _index_members, "index", grouped=True),
    Metric("work", "time", _work_members, "case", same_machine=True, grouped=True),
    Metric("time", "time", _every_case, "case", same_machine=True),
    Metric("speedup", "speedup", _pool_cases, "case"),
    Metric("efficiency", "speedup", _pool_cases, "case", per_ideal=True),
)
METRICS = tuple(m.name for m in METRIC_RECORDS)
BY_NAME = {m.name: m for m in METRIC_RECORDS}


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
    bar: float | None = None  # the bar it was judged on, where it has one of its own (scripts/ab.py: a key's)

    @property
    def change(self) -> float:
        return self.current / self.baseline - 1.0


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
    extra: dict | None = None  # what the tool that gated adds to its JSON (scripts/ab.py: its pairs)

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    @property
    def fell(self) -> list[str]:
        return sorted({r.name for r in self.regressions + self.shown if r.metric in ("speedup", "index")})


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
        f"speedup, efficiency and index values carry their own {CONFIDENCE:.0%} interval (as the report states it: "
        "from the passes, the serial probes paired with the pool's rounds); the ratio interval is the gate's"
    )
    lines += notes
    return "\n".join(lines)


def load_bars(path: str) -> dict:
    """The bars file scripts.ab_noise wrote: ``{"bars": {metric: share}, ...}``; ResultsError with the fix."""
    try:
        data = json.loads(Path(path).read_text())
        bars = {m: float(data["bars"][m]) for m in METRICS}
    except FileNotFoundError:
        raise ResultsError(
            f"--bars {path}: no such file; measure your machine's with `python -m scripts.ab_noise`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ResultsError(
            f"--bars {path}: not a bars file of scripts.ab_noise (a share per metric: {', '.join(METRICS)}); "
            "write one with `python -m scripts.ab_noise`"
        ) from None
    if any(not 0 <= b < 10 for b in bars.values()):
        raise ResultsError(f"--bars {path}: every bar must be a share of 0 or more (0.05 is 5 %)")
    return {**data, "bars": bars}


def bars(args) -> dict[str, float]:
    """The smallest change that counts, per metric: a tool's own (``args.bars_of``), or --min-effect for the
    index and --case-min-effect for the rest."""
    own = getattr(args, "bars_of", None)
    if own is not None:
        return dict(own)
    return {m.name: args.min_effect if m.bar == "index" else args.case_min_effect for m in METRIC_RECORDS}


def _tally(args, gate: Gate) -> str:
    if getattr(args, "bars_of", None) is not None:
        bar = "bars " + ", ".join(f"{m} {b:.1%}" for m, b in bars(args).items())
    else:
        bar = f"min effect {args.min_effect:.0%} (index), {args.case_min_effect:.0%} (one case)"
    return (
        f"{len(gate.regressions)} regression(s) that fail the gate ({', '.join(args.fail_on)}) in {len(gate.rows)} "
        f"comparisons, {len(gate.shown)} more shown only; {bar}, {args.confidence:.0%} intervals; "
        f"{len(gate.only_base)} case(s) missing now, {len(gate.only_cur)} new"
    )


def render_text(args, gate: Gate) -> str:
    text = render(gate.rows, gate.only_base, gate.only_cur, gate.notes) + "\n\n" + _tally(args, gate)
    if gate.fell:
        text += "\nspeedup fell: " + ", ".join(gate.fell)
    return text + "\n" + gate.verdict


def render_markdown(args, gate: Gate) -> str:
    """A pull-request comment or job summary: the verdict first, what changed, then every row folded."""
    mark = {"pass": "✅", "improvement": "✅", "regression": "❌", "inconclusive": "⚠️"}[gate.outcome]
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
            "bar": r.bar if r.bar is not None else bars(args).get(r.metric),
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
            "bars": bars(args),
            "confidence": args.confidence,
            "rows": [row(r) for r in gate.rows],
            "missing": gate.only_base,
            "new": gate.only_cur,
            "speedup_fell": gate.fell,
            "notes": gate.notes,
            **(gate.extra or {}),
        },
        indent=1,
    )


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
