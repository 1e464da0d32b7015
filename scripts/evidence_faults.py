"""Evidence blocks of faults (docs/faults.md, docs/guide.md): crash isolation, the allocator policies' page
faults and speedups, and how long an interrupted run takes to stop."""

from __future__ import annotations

import json
import statistics

import numpy as np

from scripts.analysis import ScalingPoint
from scripts.claims import xi
from scripts.evidence_files import (
    machine_line,
    points_of,
    records_of,
    runs_of,
)
from scripts.results import Record


def block_crash() -> list[str]:
    crashes = [r for r in records_of(runs_of("crash/crash.json")[0]) if r.case == "crash"]
    out = []
    threads = [r for r in crashes if r.executor == "thread"]
    how = sorted({r.extra.get("signal") or f"exit code {r.extra.get('returncode')}" for r in threads})
    died = all(not r.extra.get("parent_survived") for r in threads)
    out.append(f"thread pools {'died with every crash' if died else 'survived a crash'} ({', '.join(how)})")
    for method in sorted({r.variant for r in crashes if r.executor == "process"}):
        procs = [r for r in crashes if r.executor == "process" and r.variant == method]
        ms = [float(r.extra["detect_s"]) * 1e3 for r in procs]
        ok = all(r.extra.get("parent_survived") and r.extra.get("recovered") for r in procs)
        outcome = "/".join(sorted({str(r.extra.get("outcome")) for r in procs}))
        out.append(
            f"process pools ({method}) raised {outcome} after {min(ms):.0f}–{max(ms):.0f} ms"
            + (", their owner survived and a new pool worked afterwards" if ok else ", NOT all recovered")
        )
    return [
        "Measured here (`pytest bench --cases crash --start-methods fork,spawn`, "
        f"{machine_line(crashes)}): " + "; ".join(out) + "."
    ]


#: The local pools of the allocator runs (evidence/measure.sh, topic faults), as results name them;
#: the runs' other pools (an embedded cluster's configurations) follow as the runs name them.
LOCAL_FAULT_POOLS = ("thread", "process/fork", "process/forkserver", "process/spawn")
MALLOC_POLICIES = ("neutral", "fixed", "dynamic")


def _per_task_faults(r: Record) -> float:
    """Faults per task over every timed round of every pass."""
    return float(r.extra["minor_faults"]) / (r.tasks * len(r.samples))


def _steady_faults(r: Record) -> float:
    """Faults per task in steady state: the median of the passes' own figures. A pool thread's new malloc
    arena now and then grows once more in its second or third task (one array's pages; a plain
    ThreadPoolExecutor does it too, docs/guide.md), which lands in the first pass's rounds; the later
    passes' threads take over the grown arenas."""
    per_pass = r.by_pass.get("minor_faults", ())
    if len(per_pass) < 2 or any(v is None for v in per_pass):
        return _per_task_faults(r)
    return statistics.median(float(f) / (r.tasks * n) for f, n in zip(per_pass, r.passes, strict=True))


def block_faults() -> list[str]:
    runs = {m: records_of(runs_of(f"faults/malloc-{m}.json")[0]) for m in MALLOC_POLICIES}
    others = {r.pool for recs in runs.values() for r in recs if r.executor != "serial"} - set(LOCAL_FAULT_POOLS)
    fault_pools = (*LOCAL_FAULT_POOLS, *sorted(others))
    workloads = list(dict.fromkeys(r.workload for r in runs["neutral"] if r.case == "scaling"))
    config = runs["neutral"][0].run.poolbench["config"]
    faults: dict[tuple[str, str, str], float] = {}
    steady: dict[tuple[str, str, str], float] = {}
    speed: dict[tuple[str, str, str], ScalingPoint] = {}
    rows_f, rows_s = [], []
    for m, recs in runs.items():
        at = {(r.workload, r.pool, r.workers): r for r in recs if r.case == "scaling"}
        points = {(p.workload, p.pool, p.workers): p for p in points_of(recs)}
        for w in workloads:
            for pool in ("serial", *fault_pools):
                rec = at.get((w, pool, 1 if pool == "serial" else 2))
                if rec is not None:
                    faults[(m, w, pool)] = _per_task_faults(rec)
                    steady[(m, w, pool)] = _steady_faults(rec)
                if (w, pool, 2) in points:
                    speed[(m, w, pool)] = points[(w, pool, 2)]
            cells = [f"{faults[(m, w, p)]:,.1f}" if (m, w, p) in faults else "—" for p in ("serial", *fault_pools)]
            rows_f.append(f"| `{m}` | `{w}` | " + " | ".join(cells) + " |")
            serial_ms = at[(w, "serial", 1)].median * 1e3
            rows_s.append(
                f"| `{m}` | `{w}` | {serial_ms:.0f} ms | "
                + " | ".join(xi(speed[(m, w, p)]) if (m, w, p) in speed else "—" for p in fault_pools)
                + " |"
            )
    pools = " | ".join(fault_pools)
    t, pr = speed[("neutral", "hash_alloc", "thread")], speed[("neutral", "hash_alloc", "process/fork")]
    apart = abs(t.speedup - pr.speedup) / max(t.speedup, pr.speedup)
    close = apart <= 0.10 and min(t.speedup, pr.speedup) >= 1.6

    def shares_of(per_task: dict[tuple[str, str, str], float]) -> dict[str, float]:
        """Neutral's faults per task as a share of fixed's, worst of the workloads, by pool."""
        return {
            p: max(per_task[("neutral", w, p)] / per_task[("fixed", w, p)] for w in workloads)
            for p in ("serial", *fault_pools)
            if all(("neutral", w, p) in per_task and per_task.get(("fixed", w, p)) for w in workloads)
        }

    shares, all_rounds = shares_of(steady), shares_of(faults)
    worst = max(shares.values())
    return [
        "Minor page faults per task (serial: its own case; pools at 2 workers):",
        "",
        f"| policy | workload | serial | {pools} |",
        "| --- | --- | --- | " + " | ".join("---" for _ in fault_pools) + " |",
        *rows_f,
        "",
        "Speedup over serial at 2 workers, and the serial batch it divides:",
        "",
        f"| policy | workload | serial batch | {pools} |",
        "| --- | --- | --- | " + " | ".join("---" for _ in fault_pools) + " |",
        *rows_s,
        "",
        f"Targets (issue #18), `neutral`: `hash_alloc` at 2 workers, threads {xi(t)} and processes (fork) {xi(pr)}, "
        f"{apart:.0%} apart (target: within 10 %, both ≥ 1.6×: {'met' if close else 'NOT met'}); steady-state "
        "faults per task (the median of the passes' own figures) as a share of `fixed`'s, worst of the workloads: "
        + ", ".join(f"{p} {v:.2%}" for p, v in shares.items())
        + f" (target ≤ 1 % for every executor: {'met' if worst <= 0.01 else 'NOT met'}); over every round of "
        "every pass, as in the table: " + ", ".join(f"{p} {v:.2%}" for p, v in all_rounds.items()) + ".",
        "",
        f"Measured here ({machine_line(runs['neutral'])}; `bash evidence/measure.sh`, topic `faults`: `pytest bench "
        f"--cases scaling --workloads {','.join(workloads)} --executors {','.join(config['executors'])} "
        f"--start-methods {','.join(config['start_methods'])} --workers {','.join(map(str, config['workers']))} "
        "--malloc POLICY`, default profile, one run per policy).",
    ]


def block_interrupts() -> list[str]:
    path = runs_of("interrupts/interrupt-times.jsonl")[0]
    times = sorted(json.loads(line)["exit_s"] for line in path.read_text().splitlines() if line.strip())
    slowest = max(
        (json.loads(line) for line in path.read_text().splitlines() if line.strip()), key=lambda d: d["exit_s"]
    )
    return [
        f"Measured here, from the signal to the end of the process, over {len(times)} interrupted runs of the "
        "interruption sweep (`POOLBENCH_INTERRUPT_TIMES=times.jsonl .venv/bin/python -m pytest "
        "tests/test_interrupts.py "
        f'-m "interrupt_sweep or not interrupt_sweep"`): median {statistics.median(times):.2f} s, 90th percentile '
        f"{float(np.quantile(times, 0.9)):.2f} s, slowest {times[-1]:.2f} s (`{slowest['point']}`)."
    ]
