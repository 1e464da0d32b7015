"""Evidence blocks of what a run measures against the physical limits (docs/guide.md), the causes the report
names, and the front page's end-of-run table (README.md)."""

from __future__ import annotations

import math
import statistics

from common.checks import combined
from common.denied import DENIED_SHARE
from common.executors import family
from scripts import agreement
from scripts.analysis import Analysis, ScalingPoint, find
from scripts.causes import run_denied
from scripts.claims import xi
from scripts.evidence_files import (
    EVIDENCE,
    ROOT,
    SOLO_BAND,
    analysis_of,
    cases_run,
    machine_line,
    points_of,
    records_of,
    runs_of,
    seconds,
    wall_s,
)
from scripts.results import Record, ResultsError


def block_limits() -> list[str]:
    paths = runs_of("limits/default-run*.json")
    runs = [records_of(p) for p in paths]
    views = [analysis_of(p) for p in paths]
    points = [an.points for an in views]
    read = [agreement.one_run(str(p)) for p in paths]
    cases = agreement.agreement(read)
    n = len(paths)
    apart = agreement.other_work(read)  # sizes differ: not compared
    cpu = next((c for c in cases if c.key[0] == "cpu_python" and family(c.key[1]) == "process" and c.key[2] == 2), None)
    if cpu is None:  # left out of the comparison (other work in each run): the row says so
        effs, met = ["not compared: task sizes differ"] * n, 0
    else:
        effs = [f"{q.efficiency:.2f} [{q.efficiency_lo:.2f}–{q.efficiency_hi:.2f}]" for q in cpu.points]
        met = sum(q.efficiency >= agreement.EFFICIENCY_GOAL for q in cpu.points)
    at_c = [c for c in cases if c.at_c and c.kind != "io"]
    within = sum(c.spread <= agreement.SPREAD_GOAL for c in at_c)
    widest = sorted(at_c, key=lambda c: -c.spread)[:3]
    held = sum(c.held()[0] for c in cases)
    by_ci = sum(c.held_by_confidence()[0] for c in cases)
    pairs = sum(c.held()[1] for c in cases)
    half = agreement.median_half_width(at_c)
    sizes = [{w: s.get("param") for w, s in r[0].run.poolbench["sizes"].items()} for r in runs]
    methods = sorted({s.get("method") for r in runs for s in r[0].run.poolbench["sizes"].values()})
    header = "| goal (issues #10, #18, #19, #30) | " + " | ".join(f"run {i + 1}" for i in range(n)) + " | met? |"
    lines = [
        header,
        "| --- | " + " | ".join("---" for _ in range(n)) + " | --- |",
        *_physics_rows(points),
        *_reference_rows(views),
        _denied_row(runs),
        f"| `cpu_python`, processes, 2 workers: efficiency ≥ 0.90 in every run | {' | '.join(effs)} | "
        f"{'yes' if met == n else 'no'}, {met} of {n} |",
        f"| the runs did the same work: every task size equal |{' |' * n} "
        f"{'yes' if all(s == sizes[0] for s in sizes) else 'no'} (methods: {', '.join(methods)})"
        + (f"; left out of the rows below, other work in each run: {', '.join(apart)}" if apart else "")
        + " |",
        f"| every CPU-bound pool case at W = C: the runs' speedups within 5 % of their mean |{' |' * n} "
        f"{within} of {len(at_c)}; widest "
        + ", ".join(f"`{w}` {p} {c.spread:.1%}" for c in widest for (w, p, _) in [c.key])
        + " |",
        f"| each run's 95 % prediction interval holds the other runs' figures, ≥ 90 % of (case, run pair) |"
        f"{' |' * n} {'yes' if held / pairs >= agreement.AGREEMENT_GOAL else 'no'}: {held} of {pairs} = "
        f"{held / pairs:.1%} (the 95 % confidence interval: {by_ci / pairs:.0%}) |",
        f"| ... with intervals this narrow: median prediction half-width ≤ 5 % (CPU-bound pool cases at W = C) |"
        f"{' |' * n} {'yes' if half <= agreement.HALF_WIDTH_GOAL else 'no'}: {half:.1%} |",
        "",
        *variance_levels(runs),
        f"{machine_line(runs[0])}; `bash evidence/measure.sh` (three `pytest bench` runs, one after the other, the "
        "later two keeping the first one's calibration).",
    ]
    return lines


def _reference_rows(views: list[Analysis]) -> list[str]:
    """The reference checked in each run (issue #30): one-worker pools, points against their limit, the run's own
    check, and the probes against the serial batch."""
    n = len(views)
    solo, above, checks, bias = [], [], [], []
    for an in views:
        users = {w.get("workload") for w in an.records[0].run.poolbench.get("workload_files") or []}
        cpu_bound = [p for p in an.points if p.kind != "io" and p.pool != "serial" and p.workload not in users]
        ones = [p for p in cpu_bound if p.workers == 1]
        outside = [p for p in ones if not SOLO_BAND[0] <= p.speedup <= SOLO_BAND[1]]
        lo, hi = min(p.speedup for p in ones), max(p.speedup for p in ones)
        named = "".join(f"; `{p.workload}` {p.pool} w1 {p.speedup:.2f}×" for p in outside)
        solo.append((f"{lo:.2f}–{hi:.2f} ({len(ones) - len(outside)} of {len(ones)} within{named})", not outside))
        pools = [p for p in an.points if p.pool != "serial" and p.workers <= p.effective_cpus]
        over = [p for p in pools if p.speedup_lo > p.ideal * 1.02]
        named = ", ".join(f"`{p.workload}` {p.pool} w{p.workers}" for p in over[:2])
        above.append((str(len(over)) + (f" ({named})" if over else ""), not over))
        found = an.defects(an.runs[0])
        checks.append(("none" if not found else "; ".join(d.name for d in found), not found))
        together = [p.bias for p in an.points if p.bias is not None and p.bias.df and p.kind != "io"]
        if together:
            c = combined(together)
            bias.append((f"{c.value:.3f} [{c.low:.3f}–{c.high:.3f}]", c.low <= 1.0 <= c.high))
        else:
            bias.append(("—", False))

    def row(goal: str, cells: list[tuple[str, bool]]) -> str:
        met = sum(ok for _, ok in cells)
        return f"| {goal} | " + " | ".join(c for c, _ in cells) + f" | {'yes' if met == n else 'no'}, {met} of {n} |"

    band = f"{SOLO_BAND[0]:.2f}–{SOLO_BAND[1]:.2f}×"
    return [
        row(f"every one-worker pool of a built-in CPU-bound workload: {band} of serial", solo),
        row("no point at W ≤ C whose interval's low end lies above its ideal × 1.02", above),
        row("the run's own check (common/checks.py `run_defects`) names no defect", checks),
        row("the probes against the serial batch, CPU-bound workloads together: 1.0 within the interval", bias),
    ]


def variance_levels(runs: list[list[Record]]) -> list[str]:
    """Where the variance of a pool case's log speedup lives: rounds, passes within a run, or runs.

    Kalibera & Jones' question, per pool scaling case measured in every run: the standard error of a
    pass's mean log speedup from its rounds (rounds), the spread of the passes' log speedups within a
    run (passes), and of the runs' log speedups (runs), as standard deviations; medians over cases
    (common/reference.py ``Paired``).
    """
    by_name = [{r.name: r for r in rs if r.case == "scaling" and r.executor != "serial" and r.paired} for rs in runs]
    rounds_sd, passes_sd, runs_sd = [], [], []
    for name in set(by_name[0]).intersection(*by_name[1:]):
        per_run = []
        for b in by_name:
            pairing = b[name].paired
            assert pairing is not None
            logs = [math.log(x) for x in pairing.round_speedups()]
            sizes = [len(r) for r in pairing.rounds]
            chunks, at = [], 0
            for size in sizes:
                chunks.append(logs[at : at + size])
                at += size
            if len(chunks) > 1:
                passes_sd.append(statistics.stdev(math.log(x) for x in pairing.pass_speedups()))
            rounds_sd.extend(statistics.stdev(c) / math.sqrt(len(c)) for c in chunks if len(c) > 1)
            per_run.append(math.log(pairing.speedup()))
        runs_sd.append(statistics.stdev(per_run))
    if not runs_sd:
        return []
    parts = [f"rounds (a pass's standard error) {statistics.median(rounds_sd):.1%}"] if rounds_sd else []
    if passes_sd:
        parts.append(f"passes within a run {statistics.median(passes_sd):.1%}")
    parts.append(f"runs {statistics.median(runs_sd):.1%}")
    return [
        f"Where the spread lives ({len(runs_sd)} pool cases, log speedup, standard deviations, median over cases): "
        + ", ".join(parts)
        + ". The intervals are built from the passes (common/reference.py): a run's passes stand for the runs "
        "that follow when the passes' spread, over √passes, matches the runs'."
    ]


def _denied_row(runs: list[list[Record]]) -> str:
    """Whether each run had the CPU it asked for (issue #23): its denied run-queue wait, run-wide."""
    summaries = [run_denied(r) for r in runs]
    cells = [f"{(d['wait_share'] or 0.0):.1%} ({d['denied_cases']} of {d['cases']} cases)" for d in summaries]
    ok = sum(not d["denied"] for d in summaries)
    return (
        f"| the run had the CPU it asked for: denied run-queue wait ≤ {DENIED_SHARE:.0%} | "
        + " | ".join(cells)
        + f" | {'yes' if ok == len(runs) else 'no'}, {ok} of {len(runs)} |"
    )


def _physics_rows(runs: list[list[ScalingPoint]]) -> list[str]:
    """The 2-CPU targets of the physics, per run, at 2 workers (issue #18 keeps them)."""

    def row(goal: str, cells: list[tuple[str, bool]]) -> str:
        met = sum(ok for _, ok in cells)
        return (
            f"| {goal} | "
            + " | ".join(c for c, _ in cells)
            + f" | {'yes' if met == len(cells) else 'no'}, {met} of {len(cells)} |"
        )

    def at2(points: list[ScalingPoint], workload: str, pool: str) -> ScalingPoint:
        found = find(points, workload, pool, 2)
        if found is None:
            raise ResultsError(f"evidence/limits: no {workload} on {pool} at 2 workers; re-run evidence/measure.sh")
        return found

    def pair(points: list[ScalingPoint]) -> tuple[str, bool]:
        t, p = at2(points, "hash_alloc", "thread"), at2(points, "hash_alloc", "process")
        apart = abs(t.speedup - p.speedup) / max(t.speedup, p.speedup)
        return f"{t.speedup:.2f}× / {p.speedup:.2f}× ({apart:.0%} apart)", apart <= 0.10 and min(
            t.speedup, p.speedup
        ) >= 1.6

    return [
        row(
            "`cpu_python`, threads, 2 workers: ≤ 1.1× (the GIL)",
            [(xi(q), q.speedup <= 1.1) for q in (at2(r, "cpu_python", "thread") for r in runs)],
        ),
        row(
            "`cpu_python`, processes, 2 workers: ≥ 1.8×",
            [(xi(q), q.speedup >= 1.8) for q in (at2(r, "cpu_python", "process") for r in runs)],
        ),
        row(
            "`numpy_ufunc`, threads, 2 workers: ≥ 1.6×",
            [(xi(q), q.speedup >= 1.6) for q in (at2(r, "numpy_ufunc", "thread") for r in runs)],
        ),
        row("`hash_alloc`, threads / processes, 2 workers: within 10 %, both ≥ 1.6×", [pair(r) for r in runs]),
    ]


def block_causes() -> list[str]:
    """What the report names beside each recommendation, for run 1 of the three default runs."""
    path = runs_of("limits/default-run*.json")[0]
    recs = records_of(path)
    at = int(recs[0].run.poolbench["recommended_workers"])
    lines = [
        f"| workload | pool | speedup at {at} workers | of its ideal | what held it back (measured) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in points_of(recs):
        if p.workers != at or p.pool == "serial":
            continue
        held = p.cause.text if p.cause else "— (at its ideal within this run's noise)"
        lines.append(f"| `{p.workload}` | {p.pool} | {xi(p)} | {p.efficiency:.0%} | {held} |")
    lines += ["", f"From `{path.relative_to(ROOT).as_posix()}` ({machine_line(recs)}), as `scripts.report` reads it."]
    return lines


def block_frontpage() -> list[str]:
    """README's front page: the end of the main job as a user saw it, each speedup checked against the report's."""
    path = EVIDENCE / "frontpage" / "main-job.json"
    records = records_of(path)
    table = (EVIDENCE / "frontpage" / "terminal.txt").read_text().splitlines()
    at = int(records[0].run.poolbench["recommended_workers"])
    points = {(p.workload, p.pool): p for p in points_of(records) if p.workers == at}
    header = next(i for i, line in enumerate(table) if line.strip().startswith("workload"))
    pools = table[header].split()[1:]
    for line in table[header + 1 :]:
        cells = line.split()
        if len(cells) != len(pools) + 1 or not cells[1].endswith("×"):
            break
        for pool, cell in zip(pools, cells[1:], strict=True):
            p = points.get((cells[0], pool))
            if p is None or abs(p.speedup - float(cell.rstrip("×"))) > 0.006:
                raise ResultsError(
                    f"evidence/frontpage/terminal.txt: {cells[0]} {pool} {cell} is not the run's "
                    f"{'missing point' if p is None else f'{p.speedup:.3f}'}; measure both again "
                    "(ONLY=frontpage bash evidence/measure.sh)"
                )
    return [
        "```text",
        *table,
        "```",
        "",
        "![speedup per workload, with 95 % intervals](evidence/frontpage/summary.png)",
        "",
        f"The end of the main job here ({machine_line(records)}; {cases_run(records)} cases in "
        f"{seconds(wall_s(records))}; "
        "`bash evidence/measure.sh` topic `frontpage`), and the report's summary plot of the same run. Every "
        "speedup in the table is the one the report states for that run (`evidence/frontpage/main-job.json`), "
        "checked whenever this block is generated.",
    ]
