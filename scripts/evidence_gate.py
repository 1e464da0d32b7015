"""The evidence blocks of the regression gate (docs/gate.md): unchanged reruns, a lost CPU, a busy neighbour
and a workload made slower, each gated with the bars derived from the unchanged runs; and the A/B gate's bars
and decisions."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from scripts import compare, gating
from scripts.ab import DEFAULT_FAIL_ON
from scripts.ab_stats import bars_at, key_bars_at, key_quantile
from scripts.evidence_files import (
    EVIDENCE,
    machine_line,
    records_of,
    runs_of,
)


def _gate(base: Path, cur: Path) -> gating.Gate:
    args = compare.parse_args([str(base), str(cur)])
    return compare.decide(args, compare.one_run(str(base)), compare.one_run(str(cur)))


def _index_changes(gate: gating.Gate) -> list[float]:
    return [r.change for r in gate.rows if r.metric == "index"]


def _outcomes(gates: list[gating.Gate]) -> str:
    counts = {o: sum(g.outcome == o for g in gates) for o in gating.OUTCOMES}
    return ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "none"


def _work_changes(gate: gating.Gate) -> list[float]:
    return [r.change for r in gate.rows if r.metric == "work"]


def _span(values: list[float], sign: str = "+") -> str:
    """``-4.2% to +41.9%`` (``sign=""``: shares, which have none)."""
    return f"{min(values):{sign}.1%} to {max(values):{sign}.1%}" if values else "not compared"


def block_gate() -> list[str]:
    runs = runs_of("gate/gate-run*.json")
    onecpu = runs_of("gate/gate-onecpu*.json")
    busy = runs_of("gate/gate-busy*.json")
    same = [_gate(runs[0], p) for p in runs[1:]]
    lost = [_gate(runs[0], p) for p in onecpu]
    loud = [_gate(runs[0], p) for p in busy]
    slowed = _gate(runs_of("gate/gate-work-base.json")[0], runs_of("gate/gate-work-slowed.json")[0])
    same_index = [x for g in same for x in _index_changes(g)]
    lost_index = [x for g in lost for x in _index_changes(g)]
    case_drops = [r.change for g in same for r in g.rows if r.metric == "speedup" and "io_file" not in r.name]
    io_drops = [r.change for g in same for r in g.rows if r.metric == "speedup" and "io_file" in r.name]
    alarms = sum(g.outcome != "pass" for g in same)
    shares = [g.denied[1]["wait_share"] or 0.0 for g in loud if g.denied]
    idle_shares = [g.denied[1]["wait_share"] or 0.0 for g in same if g.denied]
    slowed_row = next(r for r in slowed.rows if r.metric == "work" and r.name.startswith("work[slowable]"))

    def short(name: str) -> str:
        return f"`{name.removeprefix('test_scaling[').rstrip(']')}`"

    bars = json.loads(runs_of("gate/bars.json")[0].read_text())
    fell = ["; ".join(f"{', '.join(map(short, g.fell)) or 'none'} (run {i + 1})" for i, g in enumerate(lost))]
    met = {
        "busy": all(g.outcome == "inconclusive" for g in loud),
        "idle": alarms == 0,
        "onecpu": all(g.outcome == "regression" for g in lost),
        "slowed": slowed.outcome == "regression" and slowed_row.verdict == "regression",
    }
    return [
        f"Bars (`python -m scripts.ab_noise --apart` over the {bars['runs']} unchanged runs, each against the "
        f"first: bar = exp({bars['z']} × spread) − 1, the spread the root mean square of the log ratio): "
        + ", ".join(f"{m} {b:.1%} (spread {bars['spread'][m]:.1%})" for m, b in bars["bars"].items())
        + ". They are set from the same unchanged runs the first row gates, so that row checks the rule, "
        "not a held-out sample.",
        "",
        "| runs | scaling index change (each pool × worker count ≥ 2) | work index change (same machine) "
        "| single-case speedup change | outcome |",
        "| --- | --- | --- | --- | --- |",
        f"| unchanged, {len(same)} comparisons | {_span(same_index)} (standard deviation "
        f"{statistics.pstdev(same_index):.1%}) | {_span([x for g in same for x in _work_changes(g)])} | "
        f"{_span(case_drops)} (`io_file`, disk-bound, {_span(io_drops)}: excluded from the index) | "
        f"{_outcomes(same)} |",
        f"| one CPU (`taskset -c 0`), {len(lost)} comparisons | {_span(lost_index)} | "
        f"{_span([x for g in lost for x in _work_changes(g)])} | see below | {_outcomes(lost)} |",
        f"| a busy loop on one of the CPUs, {len(loud)} comparisons | "
        f"{_span([x for g in loud for x in _index_changes(g)])} | {_span([x for g in loud for x in _work_changes(g)])} "
        f"| | {_outcomes(loud)} |",
        f"| `slowable` made 30 % slower (`POOLBENCH_SLOWDOWN=1.3`), 1 comparison | "
        f"{_span(_index_changes(slowed))} | `{slowed_row.name}` {slowed_row.change:+.1%} | | {_outcomes([slowed])} |",
        "",
        "Targets (issue #23): a busy loop beside the run, "
        f"{sum(g.outcome == 'inconclusive' for g in loud)} of {len(loud)} inconclusive and "
        f"{sum(g.outcome == 'regression' for g in loud)} regression (met: {'yes' if met['busy'] else 'no'}); "
        f"idle reruns, {alarms} false alarm(s) in {len(same)} (met: {'yes' if met['idle'] else 'no'}); one CPU, "
        f"{sum(g.outcome == 'regression' for g in lost)} of {len(lost)} regression (met: "
        f"{'yes' if met['onecpu'] else 'no'}); code made 30 % slower on an idle machine, "
        f"{'caught' if met['slowed'] else 'NOT caught'}. Run-queue wait of the scaling cases, as a share of the "
        f"CPU time they could use: busy runs {_span(shares, sign='')}, idle reruns "
        f"{_span(idle_shares, sign='')}.",
        "",
        f"What fell past the gate in the one-CPU runs (scaling indexes and single cases): {fell[0]}. "
        f"{machine_line(records_of(runs[0]))}; "
        "`bash evidence/measure.sh` (topic `gate`: six `pytest bench --profile quick` runs, three under "
        "`taskset -c 0`, each gated against the first with the bars above; topic `denied`: three quick runs "
        "beside a `while True: pass` loop, gated against the first; a quick run with `--workload-file "
        "evidence/slowable.py`, then the same with `POOLBENCH_SLOWDOWN=1.3`, gated against it).",
    ]


#: Issue #32's targets for the A/B gate on this machine.
AB_AA_RUNS, AB_CAUGHT_10, AB_CAUGHT_5, AB_BUDGET_S = 10, 10, 8, 120.0
AB_KINDS = {
    "same": "the same code in both arms (A/A)",
    "slow10": "HEAD 10 % slower (`SLOWDOWN = 1.10`)",
    "slow5": "HEAD 5 % slower (`SLOWDOWN = 1.05`)",
    "lock": "HEAD hashes three quarters of `ab_hash` under a lock (`LOCKED = 0.75`)",
}


def _key_bars(bars: dict, late: int) -> list[str]:
    """The keys of the failing metrics, each with its own bar (a bars file without keys: none)."""
    keyed = key_bars_at(bars, late)
    rows = [
        f"| `{key}` ({members[0] if members else '?'}) | {spread:.2%} | {n} | {key_quantile(n):.2f} | "
        f"{math.expm1(key_quantile(n) * spread):.1%} | "
        f"{keyed[(m, key)][0]:.1%} |"
        for m in DEFAULT_FAIL_ON
        for key, (spread, n, _, *members) in (bars.get("key_spread") or {}).get(m, {}).items()
    ]
    if not rows:
        return []
    return [
        "Each key of a failing metric is held to its own bar (scripts.ab `key_bars_at`): bar = exp(t × spread × "
        f"√({bars['at_pairs']} / n)) − 1, t the one-sided 0.1 % point of Student's t with one degree of freedom per "
        "estimate behind the key's spread"
        + (", its cases weighted by one over their own spread squared (`member_weights`)" * bool(bars.get("weighted")))
        + ":",
        "",
        f"| key (members) | A/A spread after {bars['at_pairs']} pairs | estimates | t "
        f"| bar after {bars['at_pairs']} pairs | after {late} |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]


def block_ab() -> list[str]:
    """The A/B gate (docs/gate.md): its bars from A/A runs, and what it decided on A/A, slowed and locked HEADs."""
    bars = json.loads(runs_of("ab/bars.json")[0].read_text())
    late = 2 * bars["at_pairs"]
    later = bars_at(bars, late)
    again = " (measured first, the bars derived from them again by these rules: `--rederive`)"
    lines = [
        f"Bars (`scripts.ab_noise`: {bars['runs']} A/A runs of {bars['pairs_per_run']} pairs"
        f"{again if bars.get('rederived') else ''}, the estimate after "
        f"{bars['at_pairs']} pairs; after n pairs, bar = exp({bars['z']} × spread × √({bars['at_pairs']} / n)) − 1, "
        "a mean of n pairs spreading as 1/√n):",
        "",
        f"| metric | A/A spread after {bars['at_pairs']} pairs (root mean square of the log ratio) | estimates "
        f"| bar after {bars['at_pairs']} pairs | after {late} |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {m} | {bars['spread'][m]:.2%} | {bars['keys'][m]} | {bars['bars'][m]:.1%} | {later[m]:.1%} |"
            for m in bars["bars"]
        ),
        "",
        *_key_bars(bars, late),
        "| HEAD | runs | outcomes | caught | pairs | wall time | what the gate named (first run) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    found: dict[str, list[dict]] = {}
    for kind in AB_KINDS:
        found[kind] = [json.loads(p.read_text()) for p in sorted(EVIDENCE.glob(f"ab/runs/{kind}-*.json"))]
    for kind, what in AB_KINDS.items():
        runs = found[kind]
        if not runs:
            continue
        outcomes = {o: sum(r["outcome"] == o for r in runs) for o in dict.fromkeys(r["outcome"] for r in runs)}
        caught = sum(r["outcome"] == "regression" for r in runs)
        pairs = [r["ab"]["pairs"] for r in runs]
        walls = [r["ab"]["seconds"] for r in runs]
        named = runs[0]["verdict"]
        lines.append(
            f"| {what} | {len(runs)} | {', '.join(f'{n} {o}' for o, n in outcomes.items())} | {caught} of {len(runs)} "
            f"| {min(pairs)}–{max(pairs)} | {min(walls):.0f}–{max(walls):.0f} s | {named} |"
        )
    aa, s10, s5, lock = (found[k] for k in AB_KINDS)
    alarms = sum(r["outcome"] != "pass" for r in aa)
    caught10 = sum(r["outcome"] == "regression" for r in s10)
    caught5 = sum(r["outcome"] == "regression" for r in s5)
    scaling = sum(r["outcome"] == "regression" and r["verdict"].startswith("scaling") for r in lock)
    every = [r["ab"]["seconds"] for rs in found.values() for r in rs]
    workloads = len(aa[0]["ab"]["workloads"]) if aa else 0
    lines += [
        "",
        f"Targets (issue #32): A/A, {alarms} false alarm(s) in {len(aa)} (target 0 in {AB_AA_RUNS}: "
        f"{'met' if alarms == 0 and len(aa) >= AB_AA_RUNS else 'NOT met'}); 10 % slower, caught {caught10} of "
        f"{len(s10)} ({'met' if caught10 >= AB_CAUGHT_10 else 'NOT met'}); 5 % slower, caught {caught5} of "
        f"{len(s5)} (target {AB_CAUGHT_5} of 10: {'met' if caught5 >= AB_CAUGHT_5 else 'NOT met'}); the lock, caught "
        f"as a scaling regression in {scaling} of {len(lock)} "
        f"({'met' if lock and scaling == len(lock) else 'NOT met'}); "
        f"{workloads} workloads in at most {max(every):.0f} s of wall time (target {AB_BUDGET_S:.0f} s: "
        f"{'met' if every and max(every) <= AB_BUDGET_S else 'NOT met'}).",
        "",
        f"Measured here (Python {bars['python']}; `bash evidence/measure.sh` topic `ab`: evidence/abwork.py "
        "copied into an arm folder per HEAD, its knob edited in the copy; `python -m scripts.ab_noise` for the "
        "bars, then each `python -m scripts.ab BASE HEAD --workload-file abwork.py --bars bars.json`, quick "
        "profile, workers 1 and every CPU as scripts.ab runs by default).",
    ]
    return lines
