"""The evidence block of the dask executor (docs/cluster.md): its two configurations in three runs, the overhead
model against each, a cluster of containers, and a dask task taken apart by hand."""

from __future__ import annotations

import json
import statistics

from common.executors import family
from scripts.claims import xi
from scripts.costs import MODEL_TOLERANCE, OverheadModel, overhead_model
from scripts.evidence_files import (
    EVIDENCE,
    ROOT,
    machine_line,
    points_of,
    records_of,
    runs_of,
)

#: The pools of the dask runs (evidence/measure.sh, topic dask), as results name them.
DASK_POOLS = ("dask/default", "dask/tuned", "process/fork")
#: Issue #20's bars: the tuned configuration's cpu_python speedup at W = C; the model's distance
#: from the scaling case (scripts/costs.py MODEL_TOLERANCE).
DASK_SPEEDUP_TARGET = 1.5
#: How long evidence/dask_parts.py lets a cluster settle (its SETTLE_S), as the block says it.
SETTLE_TEXT = "0.3 s"


def _parts_rows(rows: list[dict], workload: str) -> list[str]:
    """evidence/dask_parts.py's lines of one workload as table rows, one per configuration (W = 1 and 2)."""
    by = {(r["config"], r["W"]): r for r in rows if r.get("workload_name") == workload}
    out = []
    for config in dict.fromkeys(r["config"] for r in rows if r.get("workload_name") == workload):
        one, two = by.get((config, 1)), by.get((config, 2))
        if one is None or two is None:
            continue
        apart = f"{two['sched_ms']:.2f}" if two["sched_ms"] else "—"
        out.append(
            f"| {config} | {one['speedup']:.2f}× | {two['speedup']:.2f}× | {two['over_ms']:.1f} | "
            f"{two['task_x']:.2f} | {two['loop_ms']:.2f} | {two['client_ms'] + two['nanny_ms']:.2f} | {apart} | "
            f"{two['noop_ms']:.2f} |"
        )
    return out


def block_dask() -> list[str]:
    """dask's two configurations in three default runs, the overhead model against each, and the parts by hand."""
    paths = runs_of("dask/dask-run*.json")
    runs = [records_of(p) for p in paths]
    at = int(runs[0][0].run.poolbench["recommended_workers"])
    lines = [
        f"| workload | pool | speedup at {at} workers, runs 1–{len(runs)} |",
        "| --- | --- | --- |",
    ]
    points = [{(p.workload, p.pool): p for p in points_of(recs) if p.workers == at} for recs in runs]
    for workload in ("cpu_python", "numpy_ufunc"):
        for pool in DASK_POOLS:
            got = [pts.get((workload, pool)) for pts in points]
            if any(g is None for g in got):
                continue
            lines.append(f"| `{workload}` | {pool} | " + "; ".join(xi(g) for g in got) + " |")
    tuned = [pts[("cpu_python", "dask/tuned")].speedup for pts in points if ("cpu_python", "dask/tuned") in pts]
    held = sum(s >= DASK_SPEEDUP_TARGET for s in tuned)
    settles = [
        float(x)
        for recs in runs
        for r in recs
        if r.case == "scaling" and family(r.pool) == "dask"
        for x in r.extra.get("settle_samples_s") or []
    ]
    lines += [
        "",
        f"Target (issue #20): `dask/tuned` `cpu_python` at {at} workers ≥ {DASK_SPEEDUP_TARGET}× in "
        f"{held} of {len(tuned)} runs ({'met' if held == len(tuned) else 'NOT met in every run'}; "
        + ", ".join(f"{s:.2f}×" for s in tuned)
        + ")."
        + (
            f" Before each serial probe of a dask case the cluster settled (`settle_samples_s`) in a median of "
            f"{statistics.median(settles) * 1e3:.0f} ms, at most {max(settles) * 1e3:.0f} ms."
            if settles
            else ""
        ),
        "",
        "| run | pool | cost per task, by the clock (`cpu_python`) | CPU per task beyond a task alone "
        "| one map call over the batch | model [band] | clock vs model | CPU per empty task | empty tasks predict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ms(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f} ms"

    per_config: dict[str, list[OverheadModel]] = {}
    for i, recs in enumerate(runs, 1):
        for m in overhead_model(recs, points=points_of(recs)):
            band = "—" if m.model_ms is None else f"{m.model_ms:.2f} ms [{m.model_lo:.2f}, {m.model_hi:.2f}]"
            lines.append(
                f"| {i} | {m.pool} | {m.measured_ms:.2f} ms [{m.measured_lo:.2f}, {m.measured_hi:.2f}] "
                f"| {ms(m.cpu_ms)} | {ms(m.call_ms)} | {band} | {'—' if m.gap is None else f'{m.gap:+.0%}'} "
                f"| {ms(m.empty_cpu_ms)} | {ms(m.empty_model_ms)} |"
            )
            if family(m.pool) == "dask" and m.gap is not None:
                per_config.setdefault(m.pool, []).append(m)
    models = [m for ms_ in per_config.values() for m in ms_]
    close = sum(abs(m.gap) <= MODEL_TOLERANCE for m in models)
    banded = sum(bool(m.in_band) for m in models)
    means = {
        pool: (statistics.fmean(m.model_ms for m in ms_), statistics.fmean(m.measured_ms for m in ms_))
        for pool, ms_ in per_config.items()
    }
    pooled = bool(means) and all(abs(meas / model - 1) <= MODEL_TOLERANCE for model, meas in means.values())
    under = [m.measured_ms / m.empty_model_ms for m in models if m.empty_model_ms]
    lines += [
        "",
        f"Target (issue #20): the report's model within {MODEL_TOLERANCE:.0%} of the scaling case's cost per task, "
        f"for both dask configurations. Run by run: {close} of {len(models)} within {MODEL_TOLERANCE:.0%} of the "
        f"model, {banded} of {len(models)} inside its band (the clock's cost itself is noisy: serial time × "
        "(ideal / speedup − 1) moves by tens of per cent for a few per cent of noise in a speedup near its "
        f"ideal). Mean of the {len(runs)} runs, model against clock: "
        + "; ".join(
            f"{pool} {model:.2f} against {meas:.2f} ms ({meas / model - 1:+.0%})"
            for pool, (model, meas) in means.items()
        )
        + f" ({'met' if pooled else 'NOT met'} on the means)."
        + (
            f" Against the empty tasks' prediction (W × a call's latency / n + their CPU per task, the kind of "
            f"figure the report once used alone) the clock's cost is {min(under):.1f}–{max(under):.1f}×."
            if under
            else ""
        ),
    ]
    for path in sorted(EVIDENCE.glob("dask/cluster-*.json")):  # topic cluster, when it was measured
        recs = records_of(path)
        shape = path.stem.removeprefix("cluster-")
        pts = [p for p in points_of(recs) if p.executor == "dask" and p.workload == "cpu_python"]
        lines += [
            "",
            f"On a cluster of containers (`scripts.matrix --cluster {shape}`: a scheduler and worker containers of "
            "one CPU each and the suite as client, all on one network namespace; the cluster as dask starts it, "
            "`external`): `cpu_python` "
            + ", ".join(f"at {p.workers} workers {xi(p)}" for p in pts)
            + " over the client's serial task; "
            + "; ".join(
                f"{m.pool}: cost per task by the clock {m.measured_ms:.2f} ms [{m.measured_lo:.2f}, "
                f"{m.measured_hi:.2f}], one map call {ms(m.latency_ms)}, the empty tasks predict {ms(m.empty_model_ms)}"
                for m in overhead_model(recs, points=points_of(recs))
                if family(m.pool) == "dask"
            )
            + ". No CPU-time model there: the scheduler's and the workers' CPU is spent in other containers, outside "
            f"the suite's process tree (`{path.relative_to(ROOT).as_posix()}`).",
        ]
    parts_path = runs_of("dask/parts.jsonl")[0]
    rows = [json.loads(line) for line in parts_path.read_text().splitlines() if line.strip()]
    head = rows[0]
    header = [
        "| configuration | speedup, 1 worker | 2 workers | cost per task at 2 (ms) | task thread's CPU / serial "
        "| worker's other threads (ms CPU per task) | suite's process: client, scheduler, nannies | scheduler "
        "apart | empty task (ms, 200 in one map) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    intro = (
        f"By hand (`evidence/dask_parts.py --rounds 9`, Python {head['python']}, distributed {head['distributed']}, "
        f"{head['cpus']} CPUs; medians of 9 batches of 6 tasks per worker; CPU per part read from each thread's "
        "schedstat). `cpu_python` (holds the GIL):"
    )
    lines += ["", intro, "", *header, *_parts_rows(rows, "cpu_python")]
    lines += ["", "`numpy_ufunc` (releases the GIL):", "", *header, *_parts_rows(rows, "numpy_ufunc")]
    check = next((r["probe_check"] for r in rows if "probe_check" in r), None)
    if check:
        lines += [
            "",
            "The suite's pairing, checked: a serial task timed right after a batch of 12 on 2 workers, and "
            f"{SETTLE_TEXT} later (medians of 12 batches): "
            + "; ".join(
                f"{pool} {c['probe_now_ms']:.1f} against {c['probe_later_ms']:.1f} ms "
                f"({c['probe_now_ms'] / c['probe_later_ms'] - 1:+.0%}), paired speedup {c['speedup_now']:.2f}× "
                f"against {c['speedup_later']:.2f}×"
                for pool, c in check.items()
            )
            + ".",
        ]
    lines += [
        "",
        f"From `{'`, `'.join(p.relative_to(ROOT).as_posix() for p in [*paths, parts_path])}` ({machine_line(runs[0])}; "
        "`bash evidence/measure.sh`, topic `dask`: `pytest bench --cases scaling,dispatch --workloads "
        "cpu_python,numpy_ufunc --executors serial,process,dask`, default profile, three runs).",
    ]
    return lines
