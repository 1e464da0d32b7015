"""The tutorial's claims about threads and processes, each checked against one run's measurements.

Each ``claim_*`` function takes the :class:`Evidence` of one run and returns a :class:`Verdict`:
the claim, what was measured, and confirmed / refuted / depends (with its condition) / not
measured (with the case that would measure it). Every threshold a verdict turns on is named below
with its reason; scripts/report.py renders the verdicts, the corrections and the recommendations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common import executors
from common.executors import family
from scripts.analysis import ScalingPoint, find, scaling_points
from scripts.causes import per_task_us
from scripts.costs import cold_start_ms, memory_per_worker, payload_ms_per_mib
from scripts.results import Record, Run

#: Below this many effective CPUs nothing runs in parallel (1.5: a quota of 1.5 CPUs can overlap two).
PARALLEL_CPUS = 1.5
#: CPUs kept busy on average (tree CPU time / wall time) that show work running in parallel.
PARALLEL_BUSY = 1.5
#: CPUs kept busy below which threads are taking turns (one CPU's worth plus scheduling slack).
TAKING_TURNS_BUSY = 1.3
#: Cheapest first, for recommendations among pools the results cannot tell apart (each executor's
#: ``cost_rank`` in common/executors.py, the one place it is stated): threads share memory,
#: processes cost start-up and pickling, a dask cluster adds a scheduler round trip per task; an
#: interpreter pool (Python 3.14+) sits between: one process, but a subinterpreter per worker and
#: pickling between them.
COST_RANK = {name: executors.REGISTRY[name].cost_rank for name in executors.cost_order()}


def recommendation_order() -> str:
    """The recommendation order in words, cheapest first (common/executors.py)."""
    return "no pool, then " + ", ".join(executors.REGISTRY[k].words for k in executors.cost_order())


#: Threads "do not scale" below this speedup on 2+ CPUs; one above it for GIL-holding code refutes the GIL claim.
NO_SCALING = 1.15
#: Process workers must cost this much more memory (USS per added worker) than threads to confirm the claim.
MEMORY_MARGIN_BYTES = 2**20
#: A process pool's round trip per MiB must exceed a thread pool's by this factor (pickling and copying).
COPY_COST_RATIO = 10
#: A process pool's cold start must exceed a thread pool's by this factor.
START_COST_RATIO = 3
#: Efficiency that counts as "every core used" when it lies within the interval or below its top.
PARALLEL_EFFICIENCY = 0.8


@dataclass(frozen=True)
class Verdict:
    topic: str
    claim: str
    measured: str
    verdict: str


NOT_MEASURED = "not measured"


def times(value: float) -> str:
    return f"{value:.2f}×"


def xi(p: ScalingPoint) -> str:
    """A speedup with its 95 % interval: ``1.85× [1.80–1.90]``."""
    return f"{p.speedup:.2f}× [{p.speedup_lo:.2f}–{p.speedup_hi:.2f}]"


def why(p: ScalingPoint | None) -> str:
    """`` (threads used 1.0 of 2 CPUs: the GIL)``: a point's measured cause, where it is off its ideal,
    and a mark on a point that was denied CPU (another program took it) whatever its cause."""
    if p is None:
        return ""
    parts = [p.cause.text] if p.cause is not None and p.cause.cause != "none" else []
    if p.signals is not None and p.signals.denied and not (p.cause and p.cause.cause == "denied"):
        parts.append("denied CPU: another program shared the CPUs")
    return f" ({'; '.join(parts)})" if parts else ""


def xiw(p: ScalingPoint) -> str:
    """:func:`xi` followed by :func:`why`: a speedup, its interval, and why it falls short."""
    return xi(p) + why(p)


def _above(a: ScalingPoint, b: ScalingPoint) -> bool:
    """``a`` is faster than ``b`` beyond doubt: their 95 % intervals do not overlap."""
    return a.speedup_lo > b.speedup_hi


class Evidence:
    """The records of one run and what is derived from them, for the claim checks."""

    def __init__(self, records: list[Record], points: list[ScalingPoint] | None = None) -> None:
        """``points``: the run's scaling points as an Analysis computed them (scripts/analysis.py);
        None: computed here."""
        self.records = records
        self.run: Run = records[0].run
        self.points: list[ScalingPoint] = scaling_points(records) if points is None else points
        self.cpus = self.run.effective_cpus
        self.at = int(self.run.poolbench["recommended_workers"])  # as the run recorded it
        #: The points a claim has read since :func:`judge` began it.
        self.used: list[ScalingPoint] = []

    def point(self, workload: str, pool: str, workers: int | None = None) -> ScalingPoint | None:
        return self._use(find(self.points, workload, pool, workers or self.at))

    def widest(self, workload: str, pool: str) -> ScalingPoint | None:
        options = [p for p in self.points if p.workload == workload and p.executor == pool]
        return self._use(max(options, key=lambda p: p.workers) if options else None)

    def _use(self, p: ScalingPoint | None) -> ScalingPoint | None:
        if p is not None:
            self.used.append(p)
        return p


def judge(check: Callable[[Evidence], Verdict], ev: Evidence) -> Verdict:
    """A claim's verdict, or "not judged" where it read a point of a measurement defect (common/checks.py: above its
    physical limit, or a pool whose one-worker A/A test failed in this run): a verdict built on a figure
    the run itself distrusts would state the machine's fault as the executor's."""
    ev.used = []
    verdict = check(ev)
    bad = list(dict.fromkeys(f"{p.workload} {p.pool} w{p.workers} {xi(p)}" for p in ev.used if p.defect))
    if not bad:
        return verdict
    return dataclasses.replace(
        verdict,
        verdict=f"not judged: a measurement defect in this run ({'; '.join(bad)}); run it again",
    )


def claim_concurrency(ev: Evidence) -> Verdict:
    claim = "Threads run concurrently (take turns); processes run in parallel."
    t, p = ev.point("cpu_python", "thread"), ev.point("cpu_python", "process")
    u = ev.point("numpy_ufunc", "thread")
    if not (t and p and t.cpu_busy and p.cpu_busy):
        return Verdict("concurrency type", claim, "", f"{NOT_MEASURED}: needs the scaling case of cpu_python")
    text = f"CPUs kept busy at {ev.at} workers, cpu_python: threads {t.cpu_busy:.2f}, processes {p.cpu_busy:.2f}"
    if u and u.cpu_busy:
        text += f"; numpy_ufunc on threads {u.cpu_busy:.2f}"
    if ev.cpus < PARALLEL_CPUS:
        return Verdict("concurrency type", claim, text, f"depends: with {ev.cpus:g} CPUs nothing runs in parallel")
    if u and u.cpu_busy and u.cpu_busy >= PARALLEL_BUSY:
        return Verdict(
            "concurrency type", claim, text, "depends: true for Python code; threads run in parallel in GIL-free code"
        )
    ok = t.cpu_busy < TAKING_TURNS_BUSY and p.cpu_busy >= PARALLEL_BUSY
    return Verdict("concurrency type", claim, text, "confirmed" if ok else "refuted")


def claim_workload(ev: Evidence) -> Verdict:
    claim = "Threads suit I/O-bound work; processes suit CPU-bound work."
    io_t, io_p = ev.widest("io_sleep", "thread"), ev.widest("io_sleep", "process")
    cpu_t, cpu_p = ev.point("cpu_python", "thread"), ev.point("cpu_python", "process")
    nat_t, nat_p = ev.point("numpy_ufunc", "thread"), ev.point("numpy_ufunc", "process")
    if not (io_t and io_p and cpu_t and cpu_p):
        return Verdict(
            "ideal workload", claim, "", f"{NOT_MEASURED}: needs the scaling cases of io_sleep and cpu_python"
        )
    text = (
        f"io_sleep at {io_t.workers} workers: threads {xi(io_t)}, processes {xi(io_p)}; "
        f"cpu_python at {ev.at}: threads {xiw(cpu_t)}, processes {xiw(cpu_p)}"
    )
    io_ok = not _above(io_p, io_t)
    cpu_ok = _above(cpu_p, cpu_t) or ev.cpus < PARALLEL_CPUS
    if nat_t and nat_p:
        text += f"; numpy_ufunc at {ev.at}: threads {xiw(nat_t)}, processes {xiw(nat_p)}"
        if io_ok and cpu_ok and not _above(nat_p, nat_t) and ev.cpus >= PARALLEL_CPUS:
            return Verdict(
                "ideal workload", claim, text, "depends: threads also suit CPU-bound native code that releases the GIL"
            )
    return Verdict("ideal workload", claim, text, "confirmed" if io_ok and cpu_ok else "refuted")


def claim_gil(ev: Evidence) -> Verdict:
    claim = "The GIL keeps threads from running CPU-bound code in parallel."
    parts, holds, releases = [], [], []
    cpu_bound = dict.fromkeys(p.workload for p in ev.points if p.kind != "io")  # built-ins and the user's
    for name in cpu_bound:
        t = ev.point(name, "thread")
        if t:
            parts.append(f"{name} ({t.gil}) {xiw(t)}")
            (holds if t.gil == "holds" else releases).append(t.speedup_lo)
    if not holds:
        return Verdict("GIL", claim, "", f"{NOT_MEASURED}: needs the scaling case of cpu_python on threads")
    text = f"thread speedup at {ev.at} workers: " + ", ".join(parts)
    sub = [p for name in cpu_bound if (p := ev.point(name, "interpreter")) and p.gil == "holds"]
    if sub:  # the same GIL-holding code, one GIL per worker
        text += "; interpreter pool (a GIL per subinterpreter): " + ", ".join(f"{p.workload} {xi(p)}" for p in sub)
    if ev.cpus < PARALLEL_CPUS:
        return Verdict("GIL", claim, text, f"depends: with {ev.cpus:g} CPUs no executor runs code in parallel")
    if max(holds) >= NO_SCALING:  # the low end of the interval: scaled beyond doubt
        return Verdict("GIL", claim, text, "refuted: GIL-holding code scaled on threads")
    if releases and max(releases) >= NO_SCALING:
        return Verdict(
            "GIL", claim, text, "depends: confirmed for code that holds the GIL; C code that releases it scales"
        )
    return Verdict("GIL", claim, text, "confirmed")


def _thread_and_processes(by_pool: dict[str, float]) -> tuple[float | None, dict[str, float]]:
    """A per-pool figure split into the thread pool's and each process pool's (by start method)."""
    return by_pool.get("thread"), {k: v for k, v in by_pool.items() if family(k) == "process"}


def _per_pool(
    what: str, by_pool: dict[str, float], show_thread: Callable[[float], str], show: Callable[[float], str]
) -> str:
    """``what: threads …, process/fork …[; interpreter pool …]``: one per-pool figure as the claims show it."""
    thread, procs = _thread_and_processes(by_pool)
    text = f"{what}: threads {show_thread(thread or 0.0)}, " + ", ".join(
        f"{k} {show(v)}" for k, v in sorted(procs.items())
    )
    value = by_pool.get("interpreter")  # measured where Python has the pool (3.14+)
    return text if value is None else f"{text}; interpreter pool {show(value)}"


def claim_memory(ev: Evidence) -> Verdict:
    claim = "Processes cost more memory than threads."
    uss = memory_per_worker(ev.records, "uss_tree_bytes")
    thread, procs = _thread_and_processes(uss)
    if thread is None or not procs:
        return Verdict("memory", claim, "", f"{NOT_MEASURED}: needs the memory case (`--cases memory`)")
    mib = 2**20
    text = _per_pool(
        "memory (USS) per added worker", uss, lambda v: f"{v / mib:.2f} MiB", lambda v: f"{v / mib:.1f} MiB"
    )
    ok = min(procs.values()) > max(thread, 0) + MEMORY_MARGIN_BYTES
    return Verdict("memory", claim, text, "confirmed" if ok else "refuted")


def claim_communication(ev: Evidence) -> Verdict:
    claim = "Threads share memory; processes pay to pickle and copy data between them."
    per_mib = payload_ms_per_mib(ev.records)
    thread, procs = _thread_and_processes(per_mib)
    if thread is None or not procs:
        return Verdict("communication", claim, "", f"{NOT_MEASURED}: needs the payload case (`--cases payload`)")
    dispatch = per_task_us(ev.records, "dispatch")
    text = _per_pool("round trip per MiB of payload", per_mib, lambda v: f"{v:.3f} ms", lambda v: f"{v:.2f} ms")
    chunk = {k: v for k, v in dispatch.items() if family(k[0]) == "process"}
    if chunk:
        c1 = [v for (pool, c), v in chunk.items() if c == 1]
        cmax = max(chunk, key=lambda k: k[1])
        if c1:
            text += (
                f"; empty task through a process pool {min(c1):.0f} µs (chunksize 1), "
                f"{chunk[cmax]:.1f} µs (chunksize {cmax[1]})"
            )
    ok = min(procs.values()) > COPY_COST_RATIO * max(thread, 1e-6)
    return Verdict("communication", claim, text, "confirmed" if ok else "refuted")


def claim_startup(ev: Evidence) -> Verdict:
    claim = "Processes take longer to start than threads."
    cold = cold_start_ms(ev.records)
    thread, procs = _thread_and_processes(cold)
    if thread is None or not procs:
        return Verdict("start-up", claim, "", f"{NOT_MEASURED}: needs the cold_start case (`--cases cold_start`)")
    text = _per_pool("pool creation to first result", cold, lambda v: f"{v:.2f} ms", lambda v: f"{v:.1f} ms")
    ok = min(procs.values()) > START_COST_RATIO * thread
    return Verdict("start-up", claim, text, "confirmed" if ok else "refuted")


def claim_isolation(ev: Evidence) -> Verdict:
    claim = "A crash in a process worker leaves the program running; a crash in a thread takes it down."
    crashes = [r for r in ev.records if r.case == "crash"]
    if not crashes:
        return Verdict(
            "crash isolation",
            claim,
            "",
            f"{NOT_MEASURED}: a `crash` case (a worker that kills itself) would measure it",
        )
    by_pool: dict[str, list[Record]] = {}
    for r in crashes:
        by_pool.setdefault(r.pool, []).append(r)
    parts, verdicts = [], {}
    for pool, rs in sorted(by_pool.items()):
        died = [r for r in rs if not r.extra.get("parent_survived")]
        verdicts[pool] = not died
        how = ", ".join(
            f"{r.workload.removeprefix('crash_')}: "
            + (
                f"died ({r.extra.get('signal') or 'exit ' + str(r.extra.get('returncode'))})"
                if r in died
                else f"{r.extra.get('outcome')} after {float(r.extra.get('detect_s') or 0) * 1e3:.0f} ms"
            )
            for r in rs
        )
        parts.append(f"{pool}: {how}")
    text = "; ".join(parts)
    threads_die = verdicts.get("thread") is False
    processes_survive = all(v for k, v in verdicts.items() if family(k) == "process")
    if "thread" not in verdicts or not any(family(k) == "process" for k in verdicts):
        return Verdict("crash isolation", claim, text, "depends: measured on one executor only")
    return Verdict("crash isolation", claim, text, "confirmed" if threads_die and processes_survive else "refuted")


def claim_parallelism(ev: Evidence) -> Verdict:
    claim = "Processes use every core for CPU-bound work."
    p = ev.point("cpu_python", "process")
    if not p:
        return Verdict("parallelism", claim, "", f"{NOT_MEASURED}: needs the scaling case of cpu_python on processes")
    text = (
        f"cpu_python on processes at {p.workers} workers: speedup {xi(p)} of an ideal {p.ideal:g} "
        f"(efficiency {p.efficiency:.0%} [{p.efficiency_lo:.0%}–{p.efficiency_hi:.0%}]) with {ev.cpus:g} effective CPUs"
        + why(p)
    )
    if ev.cpus < PARALLEL_CPUS:
        return Verdict("parallelism", claim, text, f"depends: {ev.cpus:g} effective CPUs leave nothing to parallelise")
    if p.efficiency_hi >= PARALLEL_EFFICIENCY:  # within the interval or below it
        return Verdict("parallelism", claim, text, "confirmed")
    cause = f" ({p.cause.text})" if p.cause is not None else ""
    return Verdict("parallelism", claim, text, f"depends: efficiency below 80 % here{cause}")


CLAIMS: tuple[Callable[[Evidence], Verdict], ...] = (
    claim_concurrency,
    claim_workload,
    claim_gil,
    claim_memory,
    claim_communication,
    claim_startup,
    claim_isolation,
    claim_parallelism,
)


def corrections(ev: Evidence) -> list[str]:
    """Stale tutorial claims against what the executors did in this run."""
    defaults = ev.run.poolbench.get("executor_defaults")
    if not isinstance(defaults, dict):
        return ["Executor defaults were not recorded in these results (older schema)."]
    cpus = ev.run.poolbench.get("cpu_count")
    out = []
    thread_default = defaults.get("thread_max_workers")
    if isinstance(thread_default, int) and isinstance(cpus, int):
        verdict = "stale" if thread_default != cpus * 5 else "matches here"
        out.append(
            f"*“ThreadPoolExecutor defaults to processors × 5 workers”* — {verdict}: with {cpus} CPUs visible, "
            f"`ThreadPoolExecutor()` chose {thread_default} workers here (Python "
            f"{ev.run.poolbench['versions']['python']}: min(32, CPUs + 4) since 3.8), not {cpus * 5}."
        )
    if defaults.get("thread_initializer"):
        out.append(
            "*“Only ProcessPoolExecutor takes an initializer”* — stale: `ThreadPoolExecutor` accepts "
            "`initializer`/`initargs` here too (since Python 3.7)."
        )
    process_default = defaults.get("process_max_workers")
    if isinstance(process_default, int) and process_default > ev.cpus:
        out.append(
            f"Both defaults size for the CPUs the OS shows, not this process's limit: `ProcessPoolExecutor()` chose "
            f"{process_default} workers, `ThreadPoolExecutor()` {thread_default}, with {ev.cpus:g} effective CPUs."
        )
    return out


def recommend(ev: Evidence) -> list[tuple[str, str, str, str, str]]:
    """Per workload: (workload, kind, choice, evidence, what held it back); the cheapest choice as good as the best.

    "As good" means the two 95 % intervals overlap: the results cannot tell them apart, so the
    cheaper one wins: no pool (serial: a speedup of exactly 1), then threads before processes,
    fewer workers before more. Nothing is capped at the ideal: a point above its physical limit is
    a measurement defect, named as one (scripts/analysis.py), and never chosen for it; two workers
    as fast as four within their intervals are chosen before them anyway. What held it back: the
    measured cause of the chosen pool's shortfall from its ideal (of the best pool's, when the
    choice is serial), or "at its ideal".
    """
    rows = []
    for workload in dict.fromkeys(p.workload for p in ev.points):
        options = [p for p in ev.points if p.workload == workload and p.pool != "serial" and not p.defect]
        if not options:
            continue
        best = max(options, key=lambda p: p.speedup)
        floor = best.speedup_lo
        good = [p for p in options if p.speedup_hi >= floor]
        pick = min(good, key=lambda p: (COST_RANK.get(p.executor, len(COST_RANK)), p.workers))
        if floor <= 1.0:
            choice = "no pool (serial): no executor beat serial beyond its 95 % interval"
            held = best
        else:
            choice = f"`{pick.pool}`, max_workers={pick.workers}"
            held = pick
        if held.cause is None:
            back = f"{held.pool} w{held.workers}: at its ideal within this run's noise"
        else:
            back = f"{held.pool} w{held.workers} at {held.efficiency:.0%} of its ideal: {held.cause.text}"
        rows.append(
            (
                workload,
                f"{pick.kind}, {pick.gil} the GIL",
                choice,
                f"{xi(pick)} (best measured: {best.pool} w{best.workers} {xi(best)})",
                back,
            )
        )
    return rows


def evidence_of(an: Any) -> dict[str, Evidence]:
    """Per run (by source), its claims' Evidence (scripts/claims.py), from the analysis' points."""
    return {view.run.source: Evidence(view.records, view.points) for view in an.runs}
