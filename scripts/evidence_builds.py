"""Evidence blocks of the container matrix (docs/container-matrix.md) and of Python builds (docs/builds.md),
whose table has the interpreter pool's column."""

from __future__ import annotations

from scripts.builds import build_rows, pool_costs_by_build
from scripts.claims import xi
from scripts.evidence_files import (
    machine_line,
    points_of,
    records_of,
    runs_of,
    seconds,
    target_text,
    wall_s,
)
from scripts.results import Record


def _limit_runs(profile: str) -> dict[str, list[Record]]:
    return {p.stem: records_of(p) for p in runs_of(f"matrix/{profile}/*.json")}


def block_matrix() -> list[str]:
    quick, default = _limit_runs("quick"), _limit_runs("default")
    q = ", ".join(
        f"`{name}` {seconds(wall_s(rs))} (effective CPUs {rs[0].run.effective_cpus:g})" for name, rs in quick.items()
    )
    d = []
    for name, rs in default.items():
        points = [p for p in points_of(rs) if p.pool != "serial" and p.kind != "io"]
        at = [p for p in points if p.workers == p.recommended_workers]
        worst = min(points, key=lambda p: p.speedup)
        d.append(
            f"`{name}` {seconds(wall_s(rs))}: CPU-bound speedups at the recommended "
            f"{at[0].recommended_workers} worker(s) "
            f"{min(p.speedup for p in at):.2f}–{max(p.speedup for p in at):.2f}× (ideal 1), the worst "
            f"{worst.speedup:.2f}× ({worst.workload}, {worst.pool}, {worst.workers} workers)"
        )
    spread = []
    for profile, runs in (("quick", quick), ("default", default)):
        for r in runs.get("cpus-1") or []:
            if r.case == "scaling" and r.workload == "cpu_python" and r.executor != "serial" and r.workers == 2:
                spread.append(
                    f"{profile} {r.pool}: {min(r.samples) * 1e3:.0f}–{max(r.samples) * 1e3:.0f} ms "
                    f"(median {r.median * 1e3:.0f} ms, {r.extra.get('throttled_periods')} throttled periods)"
                )
    first = next(iter(quick.values()))
    return [
        f"Measured here (2-core host, image cached; in the containers {machine_line(first).split(', ', 2)[0]}, "
        f"{machine_line(first).split(', ', 2)[1]}): the quick matrix took {q}. With the default profile: "
        + "; ".join(d)
        + ". Rounds of the `cpu_python` batch on 2 workers inside `cpus-1` (two workers on a one-CPU quota "
        "meet the quota's stalls): " + "; ".join(spread) + " (`bash evidence/measure.sh`, topic `matrix`).",
    ]


#: The physical-limit targets on 2 CPUs (issue 13), checked here against the evidence, never in tests.
FREE_THREADED_TARGET = 1.7
INTERPRETER_TARGET = 1.7
PROCESS_EFFICIENCY_TARGET = 0.90


def block_builds() -> list[str]:
    runs = {rs[0].run.python_build: rs for rs in (records_of(p) for p in runs_of("builds/*.json"))}
    table = build_rows(runs, "cpu_python", workers=2, points_of=points_of)
    builds = [row.build for row in table]
    rows, targets = [], []
    for row in table:
        b = row.build
        procs = row.of("process")
        thread, interpreter = (next(iter(row.of(name)), None) for name in ("thread", "interpreter"))
        rows.append(
            [
                f"py{b} ({row.python})",
                "on" if row.gil_enabled else "off",
                f"{row.serial_s * 1e3:.1f} ms",
                xi(thread) if thread else "—",
                xi(interpreter) if interpreter else "—",
                ", ".join(f"{xi(p)} ({p.speedup / p.ideal:.0%})" for p in procs) or "—",
                ", ".join(f"{k} {v / 2**20:.1f}" for k, v in row.memory_per_worker.items()) or "—",
            ]
        )
        if b.endswith("t") and thread:
            targets.append(target_text(f"py{b} threads {thread.speedup:.2f}×", thread.speedup, FREE_THREADED_TARGET))
        if interpreter:
            speed = interpreter.speedup
            targets.append(target_text(f"py{b} interpreter pool {speed:.2f}×", speed, INTERPRETER_TARGET))
        for p in procs:
            eff = p.speedup / p.ideal
            targets.append(target_text(f"py{b} {p.pool} efficiency {eff:.2f}", eff, PROCESS_EFFICIENCY_TARGET))
    costs = [f"py{r.build} {r.gil_twin_ratio:.2f}× py{r.build.rstrip('t')}" for r in table if r.gil_twin_ratio]
    first = runs[builds[0]]
    lines = [
        "| build | GIL | cpu_python serial batch | threads, 2 workers | interpreter pool, 2 "
        "| processes, 2 (efficiency) | MiB per added worker |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"Measured here (`bash evidence/measure.sh` topic `builds`: `scripts.matrix --pythons "
        f"{','.join(builds)} --limits unlimited`, default profile, {first[0].run.effective_cpus:g} effective CPUs, "
        "one container at a time, every build with the first one's task sizes). Single-thread cost of the "
        "free-threaded build: "
        + ("; ".join(costs) if costs else "not measured (no build with the GIL of the same version)")
        + ". Targets: "
        + "; ".join(targets)
        + ".",
    ]
    costs_table = pool_costs_by_build(table)
    if costs_table:  # the interpreter pool's start-up and payload, build by build (3.14 against 3.15)
        lines += [line for line in costs_table if not line.startswith("### ")][1:]
    return lines
