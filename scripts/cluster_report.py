"""The dask executor's section of the report: "One machine or a cluster" (named by its record, common/executors.py).

dask's measured costs against the local pools: where the cluster ran and with which configurations,
the cost per task by the clock against the overhead model, payload per MiB, crash isolation on a
dask worker, and cpu_python's speedup beside the local pools'. Empty when dask did not run.
"""

from __future__ import annotations

from scripts.analysis import RunView
from scripts.claims import xi
from scripts.costs import model_lines, overhead_model, payload_ms_per_mib


def section(view: RunView) -> list[str]:
    """ "One machine or a cluster": dask's measured costs against thread and process pools (empty without dask)."""
    records = view.records
    if not any(r.executor == "dask" for r in records):
        return []
    per_mib = payload_ms_per_mib(records)
    dask_info = records[0].run.poolbench.get("dask") or {}
    configs = dask_info.get("configs") or {}
    where = (
        f"the cluster at `{dask_info['scheduler']}` ({dask_info.get('workers')} workers, its own settings)"
        if dask_info.get("scheduler")
        else "a LocalCluster of single-threaded worker processes on this machine, started per case"
    )
    lines = [
        "",
        "## One machine or a cluster",
        "",
        f"The dask executor (`Client.get_executor(pure=False)`, {where}) against the local pools.",
    ]
    described = []
    for name, spec in configs.items():
        if not spec:
            continue
        settings = ", ".join(f"`{k}: {v}`" for k, v in (spec.get("settings") or {}).items()) or "dask's own settings"
        described.append(f"`dask/{name}`: {settings}; results gathered {spec.get('gather')}")
    if described:
        where_told = ' (docs/cluster.md, "dask: where a task\'s time goes").'
        lines += ["", "Configurations: " + "; ".join(described) + where_told]

    lines += model_lines(view)
    if per_mib:
        lines += [
            "",
            "Round trip per MiB of payload (argument and result): "
            + ", ".join(f"{pool} {v:.2f} ms" for pool, v in sorted(per_mib.items()))
            + ".",
        ]
    if not overhead_model(records, points=view.points):
        lines += ["", "Not modelled: run the `dispatch` case (schema 6: it times one map call) with dask."]
    crashes = [r for r in records if r.case == "crash" and r.executor == "dask"]
    if crashes:
        parts = []
        for r in crashes:
            e = r.extra
            how = (
                f"{e.get('outcome')} after {float(e.get('detect_s') or 0):.1f} s"
                if e.get("parent_survived")
                else f"the client died ({e.get('signal') or e.get('returncode')})"
            )
            if e.get("allowed_failures") is not None:
                how += f" (the task re-run on a new worker up to {e['allowed_failures']} times first)"
            parts.append(
                f"{r.pool} {r.workload.removeprefix('crash_')}: {how}"
                + ("; a new cluster worked" if e.get("recovered") else "")
            )
        lines += ["", "Crash isolation on dask (a task that kills its worker process): " + "; ".join(parts) + "."]
    points = [p for p in view.points if p.workload == "cpu_python" and p.pool != "serial"]
    dask_points = [p for p in points if p.executor == "dask"]
    if dask_points:
        sizes = {p.workers for p in dask_points}
        recommended = dask_points[0].recommended_workers
        at = recommended if recommended in sizes else max(sizes)
        same = sorted((p for p in points if p.workers == at), key=lambda p: (p.executor != "dask", p.pool))
        lines += [
            "",
            f"`cpu_python` at {at} workers: "
            + ", ".join(f"{p.pool} {xi(p)}" for p in same)
            + " (speedup over serial; the scheduler and the client share this machine's CPUs with the workers).",
        ]
    return lines
