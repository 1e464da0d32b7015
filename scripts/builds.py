"""Across Python builds: one row per build of what the cross-build tables show (serial time, each executor's
points, what a pool of its own costs), in build order (3.11, 3.13, 3.13t, ...)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.executors import cost_order, heading
from common.executors import of as executor_of
from scripts.analysis import Analysis, RunView, ScalingPoint, scaling_points
from scripts.claims import CLAIMS, COST_RANK, Evidence, evidence_of, judge, xi
from scripts.cli import markdown_table
from scripts.costs import cold_start_ms, memory_per_worker, payload_ms_per_mib
from scripts.results import Record


def build_order(build: str) -> tuple[tuple[int, ...], bool]:
    """Sort key of a Python build: by version, the GIL build before the free-threaded one (3.13, 3.13t)."""
    return tuple(int(x) for x in build.rstrip("t").split(".")), build.endswith("t")


def serial_median_s(records: Iterable[Record], workload: str) -> float | None:
    """Median round of the serial scaling case of ``workload`` (None: not measured)."""
    for r in records:
        if r.case == "scaling" and r.executor == "serial" and r.workload == workload:
            return r.median
    return None


@dataclass(frozen=True)
class BuildRow:
    """One Python build's answer for one workload: what the cross-build tables show."""

    build: str
    python: str
    gil_enabled: bool
    serial_s: float | None
    #: Per executor that measured the workload here (common/executors.py order), its points: one per
    #: variant (start method, configuration).
    pools: dict[str, list[ScalingPoint]]
    memory_per_worker: dict[str, float]  # USS bytes per added worker, pools whose workers are interpreters of their own
    gil_twin_ratio: float | None = None  # a free-threaded build's serial time over its GIL twin's (3.13t / 3.13)
    start_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # cold start, interpreter and process pools
    payload_ms_per_mib: dict[str, float] = dataclasses.field(default_factory=dict)  # the same pools' round trip

    def of(self, executor: str) -> list[ScalingPoint]:
        """This build's points of ``executor`` (empty: not measured here)."""
        return self.pools.get(executor, [])

    @property
    def pool_costs(self) -> bool:
        """Whether this build's run measured start-up or payload for an interpreter or process pool."""
        return bool(self.start_ms or self.payload_ms_per_mib)


def _isolated_pools(by_pool: dict[str, float]) -> dict[str, float]:
    """The pools of ``by_pool`` whose workers each run an interpreter of their own (common/executors.py
    ``isolated``), by name: what a build changes about pools of their own."""
    return {k: v for k, v in sorted(by_pool.items()) if (spec := executor_of(k)) is not None and spec.isolated}


def build_rows(
    by_build: dict[str, list[Record]],
    workload: str,
    workers: int | None = None,
    points_of: Callable[[list[Record]], list[ScalingPoint]] = scaling_points,
) -> list[BuildRow]:
    """Per build (one run each), in build order: ``workload``'s serial time and pools at ``workers``
    (None: each run's recorded recommended workers). ``points_of(records)``: the run's scaling points
    (scripts/analysis.py ``Analysis.points_of``, computed once)."""
    rows = []
    for b in sorted(by_build, key=build_order):
        records = by_build[b]
        info = records[0].run.poolbench
        at = workers if workers is not None else int(info["recommended_workers"])
        points = [p for p in points_of(records) if p.workload == workload and p.workers == at]
        mem = memory_per_worker(records)
        twin = by_build.get(b.rstrip("t")) if b.endswith("t") else None
        serial, twin_serial = serial_median_s(records, workload), twin and serial_median_s(twin, workload)
        rows.append(
            BuildRow(
                build=b,
                python=str((info.get("versions") or {}).get("python", "?")),
                gil_enabled=bool(info.get("gil_enabled", True)),
                serial_s=serial,
                pools={name: found for name in cost_order() if (found := [p for p in points if p.executor == name])},
                memory_per_worker=_isolated_pools(mem),
                gil_twin_ratio=serial / twin_serial if serial and twin_serial else None,
                start_ms=_isolated_pools(cold_start_ms(records)),
                payload_ms_per_mib=_isolated_pools(payload_ms_per_mib(records)),
            )
        )
    return rows


# --- the report's section across builds ------------------------------------------------------------------


def builds_section(an: Analysis, evidence_by_run: dict[str, Evidence] | None = None) -> list[str]:
    """Across Python builds (runs of two or more): the claims' verdicts side by side, and what changes.

    Per build, its run with the most CPUs answers. The single-thread cost of a free-threaded build
    is its serial time over that of the build with the GIL of the same version, when both ran.
    """
    views: dict[str, RunView] = {}
    for view in an.runs:  # most CPUs first
        views.setdefault(view.run.python_build, view)
    if len(views) < 2:
        return []
    by_build = {b: v.records for b, v in views.items()}
    builds = sorted(by_build, key=build_order)
    by_run = evidence_by_run if evidence_by_run is not None else evidence_of(an)
    evidence = {b: by_run[views[b].run.source] for b in builds}
    build_table = build_rows(by_build, "cpu_python", points_of=an.points_of)
    lines = ["", "## Across Python builds", ""]
    lines += [
        "The same claims on each Python build (its run with the most CPUs: "
        + ", ".join(f"py{b} = {by_build[b][0].run.label}" for b in builds)
        + ").",
        "",
    ]
    verdicts = {b: {v.topic: v for v in (judge(check, evidence[b]) for check in CLAIMS)} for b in builds}
    topics = list(verdicts[builds[0]])
    lines += markdown_table(
        ["topic", *(f"py{b}" for b in builds)],
        [(t, *(verdicts[b][t].verdict if t in verdicts[b] else "—" for b in builds)) for t in topics],
    )
    lines += ["", "### What changes with the build", ""]
    # a column per executor measured on some build, in the recommendation order (common/executors.py)
    measured = [name for name in cost_order() if any(row.of(name) for row in build_table)]
    rows = []
    for row in build_table:
        b = row.build
        cost = f" ({row.gil_twin_ratio:.2f}× py{b.rstrip('t')})" if row.gil_twin_ratio else ""
        gil = "on (re-enabled at import)" if row.gil_enabled and b.endswith("t") else "on" if row.gil_enabled else "off"
        best = {name: max(row.of(name), key=lambda p: p.speedup, default=None) for name in measured}
        rows.append(
            [
                f"py{b}",
                gil,
                f"{row.serial_s * 1e3:.1f} ms{cost}" if row.serial_s else "—",
                *(xi(p) if p else "—" for p in best.values()),
                ", ".join(f"{k} {v / 2**20:.1f}" for k, v in row.memory_per_worker.items()) or "—",
            ]
        )
    at = evidence[builds[0]].at
    titles = [f"{heading(name)} (w{at})" if i == 0 else heading(name) for i, name in enumerate(measured)]
    lines += markdown_table(["build", "GIL", "cpu_python serial batch", *titles, "MiB (USS) per added worker"], rows)
    lines += [
        "",
        "Speedups are of cpu_python (pure Python, holds the GIL where there is one) at the recommended workers. "
        "A free-threaded build runs it on threads in parallel; a pool of subinterpreters (Python 3.14+) gives each "
        "worker its own GIL; the serial batch shows what a build costs on one thread.",
    ]
    return lines + pool_costs_by_build(build_table)


def _cost_then_name(pool: str) -> tuple[int, str]:
    """Pools in the recommendation order of their executors (common/executors.py), then by name."""
    spec = executor_of(pool)
    return (spec.cost_rank if spec is not None and spec.cost_rank is not None else len(COST_RANK), pool)


def pool_costs_by_build(rows: list) -> list[str]:
    """What a pool of its own costs on each build: start-up and payload, interpreter and process pools.

    Empty unless two builds measured them (cold_start and payload cases): the interpreter pool's
    pickling between interpreters is what changes most between 3.14 and 3.15.
    """
    measured = [r for r in rows if r.pool_costs]
    if len(measured) < 2:
        return []
    pools = sorted({k for r in measured for k in (*r.start_ms, *r.payload_ms_per_mib)}, key=_cost_then_name)

    def cell(values: dict[str, float], pool: str, digits: int) -> str:
        return f"{values[pool]:.{digits}f} ms" if pool in values else "—"

    table = [
        [f"py{r.build}", *(cell(r.start_ms, k, 1) for k in pools), *(cell(r.payload_ms_per_mib, k, 2) for k in pools)]
        for r in measured
    ]
    return [
        "",
        "### Pool costs by build",
        "",
        *markdown_table(["build", *(f"{k} start-up" for k in pools), *(f"{k} payload per MiB" for k in pools)], table),
        "",
        "Start-up: pool creation to its first result (cold_start, median). Payload: the round trip of the "
        "largest payload case per MiB of argument and result (pickled both ways between interpreters or processes).",
    ]
