"""Evidence blocks of the sampling plan (docs/guide.md): what each profile costs, what the main job costs at
any CPU count (the model fitted to this host's runs), how a run grows with its sweep, and the host's own
speed phases."""

from __future__ import annotations

import json
import statistics

import numpy as np

from common.executors import family
from common.plan import PROFILE_SETTINGS, SWEEP_CAP, TARGET_TASK_S, batch_tasks, main_job_seconds, sweep
from scripts.evidence_files import (
    ROOT,
    cases_run,
    machine_line,
    records_of,
    runs_of,
    seconds,
    wall_s,
)
from scripts.results import Record


def _task_range(records: list[Record]) -> str:
    """The calibrated workloads' serial task times at start (machine_info sizes), fastest–slowest."""
    sizes = records[0].run.poolbench.get("sizes") or {}
    times = [v["task_s"] * 1e3 for v in sizes.values() if v.get("method") == "calibrated" and v.get("task_s")]
    return f"{min(times):.1f}–{max(times):.1f} ms" if times else "not recorded"


def block_profiles() -> list[str]:
    quick = records_of(runs_of("gate/gate-run1.json")[0])
    defaults = [records_of(p) for p in runs_of("limits/default-run*.json")]
    rows = []
    for name, runs in (("quick", [quick]), ("default", defaults)):
        cfg = runs[0][0].run.poolbench["config"]
        plan_ = runs[0][0].run.poolbench["plan"]
        batches = plan_["batch_tasks"]
        walls = sorted(wall_s(rs) for rs in runs)
        wall = seconds(walls[0]) if len(walls) == 1 else f"{walls[0]:.0f}–{seconds(walls[-1])} ({len(walls)} runs)"
        rows.append(
            f"| `{name}` | {cfg['target_task_s'] * 1e3:g} ms ({_task_range(runs[0])}) | "
            f"{cfg['tasks_per_cpu']} ({', '.join(f'W={w}: {n}' for w, n in batches.items())}) | "
            f"{cfg['rounds']} × {cfg['passes']} | {wall}, {cases_run(runs[0])} cases |"
        )
    full = PROFILE_SETTINGS["full"]
    rows.append(
        f"| `full` | {TARGET_TASK_S['full'] * 1e3:g} ms | {full['tasks_per_cpu']} | {full['rounds']} "
        f"× {full['passes']} | not measured here |"
    )
    return [
        "| profile | one serial task: target (calibrated here, fastest–slowest workload) | tasks per busy CPU "
        "(batch at each W here) | timed rounds × passes (after one warm-up task per worker) "
        "| wall time of `pytest bench` here |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Measured with {machine_line(quick)} (`bash evidence/measure.sh`: `pytest bench --profile quick` and three "
        "`pytest bench` runs; wall time = the run's `started_at` to its save).",
    ]


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a + b·x (b = 0 when every x is the same)."""
    if len(set(xs)) < 2:
        return statistics.mean(ys), 0.0
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def cost_model(records: list[Record]) -> dict:
    """The constants of common/plan.main_job_seconds, fitted to one measured run (common/plan.py).

    Per scaling case of a pool, what its wall time (``case_wall_s``) held beyond its rounds and
    probes (pool start, warm-up, checks, shutdown, the meter's readings) is fitted as a + b·W per pool
    type; memory cases as a + b·W; everything else (the other case types, the session's start,
    calibration and save) is the rest of the run's wall time.
    """
    run = records[0].run
    cfg = run.poolbench["config"]
    sizes = run.poolbench.get("sizes") or {}
    scaling = [r for r in records if r.case == "scaling"]
    task_s = {}
    for r in scaling:
        if r.executor == "serial":
            t = (sizes.get(r.workload) or {}).get("task_s") or r.median / r.tasks
            task_s[r.workload] = -t if r.kind == "io" else t
    fits = {}
    for pool in sorted({r.pool for r in scaling if r.executor != "serial"}):
        xs, ys = [], []
        for r in scaling:
            if r.pool != pool or "case_wall_s" not in r.extra:
                continue
            passes = max(len(r.passes), 1)
            # the probes' timed tasks, and their untimed warm ones (schema 7) as long again per task
            timed_tasks = r.extra.get("serial_tasks") or 1
            probes = sum(r.extra.get("serial_samples_s") or []) * (
                1 + (r.extra.get("serial_warm_tasks") or 0) / timed_tasks
            )
            per_task = abs(task_s.get(r.workload, r.median / r.tasks))
            warm = per_task * (1 if r.kind == "io" else r.workers / min(r.workers, r.run.effective_cpus))
            # schema 9: a warm batch of one task per CPU the pool can use before each timed round
            round_warm = per_task * len(r.samples) if r.extra.get("round_warm_tasks") else 0.0
            timed = sum(r.samples) + probes + warm * passes + round_warm
            xs.append(r.workers)
            ys.append((r.extra["case_wall_s"] - timed) / passes)
        fits[pool] = _fit_line(xs, ys)
    memory = [r for r in records if r.case == "memory" and r.executor != "serial" and "case_wall_s" in r.extra]
    mem = _fit_line([r.workers for r in memory], [r.extra["case_wall_s"] for r in memory]) if memory else (0.0, 0.0)
    counted = sum(r.extra.get("case_wall_s", 0.0) for r in records if r.case in ("scaling", "memory"))
    return {
        "task_s": task_s,
        "pools": len(fits),
        "rounds": cfg["rounds"],
        "passes": cfg["passes"],
        "per_cpu": cfg["tasks_per_cpu"],
        "case_overhead_s": statistics.mean(a for a, _ in fits.values()),
        "start_per_worker_s": statistics.mean(b for _, b in fits.values()),
        "memory_case_s": mem,
        "memory_pools": len({r.pool for r in memory}),
        "other_s": wall_s(records) - counted,
        "round_warm": any(r.extra.get("round_warm_tasks") for r in scaling),
    }


def block_plan() -> list[str]:
    runs = [records_of(p) for p in runs_of("limits/default-run*.json")]
    models = [cost_model(r) for r in runs]
    measured = [wall_s(r) for r in runs]
    k = models[0]["per_cpu"]
    # The model times every round at its ideal; this host's runs took longer (GIL-bound work on
    # threads, contention): each run's measured / modelled wall time, carried to the other C as is.
    factors = [w / main_job_seconds(2, **mod) for w, mod in zip(measured, models, strict=True)]
    lines = [
        "| effective CPUs C | workers swept | batch at W = 1 / W = C / W = 4C | scaling cases | main job |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in (2, 16, 64, 128):
        ws = sweep(c)
        m = models[0]
        cases = m["passes"] * len(m["task_s"]) * (1 + m["pools"] * len(ws))
        est = [main_job_seconds(c, **mod) for mod in models]
        top = min(4 * c, SWEEP_CAP)
        cost = (
            f"measured {min(measured):.0f}–{seconds(max(measured))} (model {min(est):.0f}–{max(est):.0f} s)"
            if c == 2
            else f"model {min(est) / 60:.1f}–{max(est) / 60:.1f} min; at this host's measured/model "
            f"{min(e * f for e, f in zip(est, factors, strict=True)) / 60:.1f}–"
            f"{max(e * f for e, f in zip(est, factors, strict=True)) / 60:.1f} min"
        )
        lines.append(
            f"| {c} | {', '.join(map(str, ws))} | {batch_tasks(1, c, k)} / {batch_tasks(c, c, k)} / "
            f"{batch_tasks(top, c, k)} | {cases} | {cost} |"
        )
    m = models[0]
    dispatch = [
        r.median / r.tasks
        for recs in runs
        for r in recs
        if r.case == "dispatch" and family(r.pool) == "process" and r.extra.get("chunksize") == 1
    ]
    target = runs[0][0].run.poolbench["config"]["target_task_s"]
    if dispatch:
        lines += [
            "",
            f"A process pool's empty-task dispatch at chunksize 1 (the dispatch case, {len(dispatch)} runs): "
            f"{min(dispatch) * 1e6:.0f}–{max(dispatch) * 1e6:.0f} µs per task, {min(dispatch) / target:.1%}–"
            f"{max(dispatch) / target:.1%} of the default profile's {target * 1e3:g} ms task.",
        ]
    lines += [
        "",
        f"Model (common/plan.main_job_seconds), its constants fitted to each of the three default runs here: "
        f"a scaling case of a pool costs a warm-up of one task per worker and {m['rounds']} timed rounds (about "
        f"k = {k} task times each, "
        + ("each after a warm batch of one task per CPU, " if m.get("round_warm") else "")
        + "with a serial probe of a warm and a timed task before the first and after each) "
        "plus "
        f"{m['case_overhead_s'] * 1e3:.0f} ms + {m['start_per_worker_s'] * 1e3:.1f} ms per worker (pool start, "
        f"warm-up, readings, shutdown: fitted per pool type, W ≤ 8, and extrapolated linearly), "
        f"× {m['passes']} passes; memory cases {m['memory_case_s'][0] * 1e3:.0f} ms + "
        f"{m['memory_case_s'][1] * 1e3:.1f} ms per worker; the other case types and the session "
        f"{m['other_s']:.0f} s as measured (they run at fixed sizes). Task times are the calibrated ones, which "
        "any host matches by construction; a real many-core host's pool start and memory per worker may "
        f"differ. The model times every round at its ideal speed; here each run took {min(factors):.2f}–"
        f"{max(factors):.2f}× the model (GIL-bound work on threads runs on one CPU, contention), the factor "
        "the last column carries to larger C. Same pools as here (serial, thread, process/fork; 3.14 adds "
        "a pool of subinterpreters).",
    ]
    return lines


def _sweep(option: str, note: str) -> list[tuple[str, int, int, float]]:
    """(row label, values given to the option, cases, wall seconds) per growth run of ``option``."""
    out = []
    for path in sorted(runs_of(f"growth/growth-{option}-*.json"), key=lambda p: len(p.stem)):
        recs = records_of(path)
        values = path.stem.removeprefix(f"growth-{option}-")
        out.append((f"`--{option} {values}` ({note})", len(values.split(",")), len(recs), wall_s(recs)))
    return out


def block_growth() -> list[str]:
    first = records_of(runs_of("growth/growth-workers-*.json")[0])
    n_workloads = len(first[0].run.poolbench["config"]["workloads"])
    by_workers = _sweep("workers", f"{n_workloads} workloads")
    rows = [(name, n, w) for name, _, n, w in [*by_workers, *_sweep("workloads", "workers 1, 2, 4, 8")]]
    xs_w, ys_w = [k for _, k, _, _ in by_workers], [w for _, _, _, w in by_workers]
    cases, walls = [n for _, n, _ in rows], [w for _, _, w in rows]
    bw, aw = np.polyfit(xs_w, ys_w, 1)
    bc, ac = np.polyfit(cases, walls, 1)
    r2 = float(np.corrcoef(cases, walls)[0, 1] ** 2)
    lines = ["| sweep (quick profile) | cases | wall time |", "| --- | --- | --- |"]
    lines += [f"| {name} | {n} | {w:.1f} s |" for name, n, w in rows]
    lines += [
        "",
        f"Fitted (least squares): each worker count added to `--workers` adds {bw:.1f} s (wall ≈ {aw:.1f} s + "
        f"{bw:.1f} s × worker counts, {n_workloads} workloads); over all {len(rows)} runs, wall ≈ {ac:.1f} s + "
        f"{bc:.2f} s × cases (r² = {r2:.2f}).",
    ]
    return lines


def block_phases() -> list[str]:
    """The host's speed phases (docs/guide.md): evidence/host_phases.py's three probes, none of the suite's code."""
    path = runs_of("phases/phases.json")[0]
    data = json.loads(path.read_text())
    per_cpu = data["per_cpu"]
    rows = [
        "| probe (cpu_python's task, a plain loop) | measured |",
        "| --- | --- |",
        f"| 8 fresh processes, median of 15 tasks each (CPU time): spread of the medians | "
        f"{data['fresh_spread']:.1%} (medians {min(data['fresh_processes_s']) * 1e3:.1f}–"
        f"{max(data['fresh_processes_s']) * 1e3:.1f} ms) |",
        f"| one process, 8 such blocks 0.3 s apart: spread | {data['blocks_spread']:.1%} (medians "
        f"{min(data['one_process_blocks_s']) * 1e3:.1f}–{max(data['one_process_blocks_s']) * 1e3:.1f} ms) |",
    ]
    for cpu, d in per_cpu.items():
        rows.append(
            f"| CPU {cpu}, {data['seconds']:g} s of tasks back to back (all CPUs at once): the slowest tenth of the "
            f"tasks over the fastest tenth; the slowest second over the fastest (each second's median) | "
            f"{d['levels']:.2f}×; {d['seconds_levels']:.2f}× ({d['tasks']} tasks, "
            f"median {d['median_s'] * 1e3:.1f} ms) |"
        )
    rows.append(
        f"| the CPUs' throughput over those {data['seconds']:g} s, fastest over slowest | "
        f"{data['cpu_rate_ratio']:.3f}× |"
    )
    return [
        *rows,
        "",
        f"Python {data['python']}, CPUs {', '.join(map(str, data['cpus']))}; `bash evidence/measure.sh` topic "
        "`phases` (`python evidence/host_phases.py --json`: "
        f"`{path.relative_to(ROOT).as_posix()}`). A spread in one process over time as large as across fresh "
        "processes says the host moves, not the process; two speed levels show as a slowest-over-fastest ratio "
        "well above 1 on each CPU, and slow seconds as the same of the seconds.",
    ]
