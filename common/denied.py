"""The busy-machine rules: whether a run started on a busy machine, and whether it was denied CPU.

The suite records the counters (bench/readings.py); the terminal, the report and the gate call these
rules, so every reader draws the same line.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The 1-minute load average per effective CPU above which a run counts as busy (pyperf warns on a
#: busy system too): more runnable tasks than CPUs means another program shared them.
BUSY_LOAD_PER_CPU = 1.0


def was_busy(loadavg_start: Sequence[float] | None, effective_cpus: float | None) -> bool:
    """Whether the load at the start of a run (before any case ran) exceeded its CPUs."""
    return bool(loadavg_start and effective_cpus and loadavg_start[0] > BUSY_LOAD_PER_CPU * float(effective_cpus))


def busy_line(
    loadavg_start: Sequence[float] | None, loadavg_end: Sequence[float] | None, effective_cpus: float | None
) -> str | None:
    """The one sentence, for the terminal and the report, that a run started on a busy machine (None: it did not).

    The suite itself keeps about one CPU busy per running worker, so the load at the start (before
    any case) is the clean signal; the end's is shown beside it.
    """
    if not loadavg_start or not was_busy(loadavg_start, effective_cpus):
        return None
    end = f", {loadavg_end[0]:g} at the end" if loadavg_end else ""
    return (
        f"the machine was busy: load average {loadavg_start[0]:g} at the start{end}, for {float(effective_cpus):g} "
        "CPUs; other programs shared the CPUs, so these numbers may be slow and noisy"
    )


#: Share of the CPU time a run's CPU-bound scaling cases could have had (min(W, C) CPUs over their
#: timed rounds) that their threads may have waited for a CPU, beyond their own turns, before the
#: run counts as denied CPU. Judged over the whole run, not per case: a process pool's own helper
#: threads wait for the CPUs its busy workers hold, which in a quick-profile case of 30 ms rounds
#: reads as up to 30 % on an idle machine, and averages out over a run. The share sits between what
#: idle runs and runs beside a busy loop on one CPU read: docs/gate.md's generated block (the
#: ``gate`` evidence topic) shows both, measured.
DENIED_SHARE = 0.10
#: Share of the host's CPU time (all its CPUs over the timed rounds) that the hypervisor may steal
#: for other guests before the run counts as denied CPU.
STEAL_SHARE = 0.05


def denied_wait_share(
    wait_s: float | None, cpu_s: float | None, wall_s: float, workers: int, cpus: float
) -> float | None:
    """Run-queue wait that the tree's own demand cannot explain, over ``wall_s × min(W, C)``; None unknown.

    The tree must wait for its own turns in two ways, and neither counts: W > C busy workers wait
    ``(W − C) × wall`` between them, and a tree that keeps all C CPUs busy (W = C workers beside
    the parent's own threads) waits for itself. What it waited beyond both, ``min(wait − (W − C) ×
    wall, C × wall − cpu)``, another program took: it waited while CPUs it did not use were busy.
    """
    if wait_s is None or cpu_s is None or wall_s <= 0 or workers < 1 or cpus <= 0:
        return None
    beyond_turns = wait_s - wall_s * max(0.0, workers - cpus)
    denied = max(0.0, min(beyond_turns, cpus * wall_s - cpu_s))
    return denied / (wall_s * min(float(workers), cpus))


def steal_share(steal_s: float | None, wall_s: float, host_cpus: int | None) -> float | None:
    """Stolen CPU time as a share of the host's CPU time over ``wall_s`` (None: not reported)."""
    if steal_s is None or wall_s <= 0 or not host_cpus:
        return None
    return max(0.0, steal_s) / (wall_s * host_cpus)


def denied_summary(
    cases: Sequence[tuple[float | None, float | None, float | None, float, int]], cpus: float, host_cpus: int | None
) -> dict:
    """Whether a run was denied CPU, from its CPU-bound scaling cases' (cpu_wait_s, steal_s, cpu_time_s, wall_s,
    workers): I/O cases are left out by the callers (their waits are the disk's, and CPUs are not what they use).

    ``wait_share``: the cases' denied run-queue wait (:func:`denied_wait_share`) over the CPU time
    they could have had, all cases together; ``steal_share`` likewise for steal; ``denied`` when
    either passes its stated share;
    ``denied_cases``: how many cases passed DENIED_SHARE on their own. Shares are None where the
    kernel kept no such counter.
    """
    excess = usable = steal = steal_wall = 0.0
    waits = steals = denied_cases = 0
    for wait_s, steal_s, cpu_s, wall_s, workers in cases:
        share = denied_wait_share(wait_s, cpu_s, wall_s, workers, cpus)
        if share is not None:
            waits += 1
            usable += wall_s * min(float(workers), cpus)
            excess += share * wall_s * min(float(workers), cpus)
            denied_cases += share > DENIED_SHARE
        if steal_s is not None and wall_s > 0:
            steals += 1
            steal += max(0.0, steal_s)
            steal_wall += wall_s
    wait_share = excess / usable if waits and usable > 0 else None
    stolen = steal_share(steal, steal_wall, host_cpus) if steals else None
    return {
        "wait_share": None if wait_share is None else round(wait_share, 6),
        "steal_share": None if stolen is None else round(stolen, 6),
        "cases": len(cases),
        "denied_cases": denied_cases,
        "denied": bool((wait_share or 0.0) > DENIED_SHARE or (stolen or 0.0) > STEAL_SHARE),
        "wait_threshold": DENIED_SHARE,
        "steal_threshold": STEAL_SHARE,
    }


def denied_line(summary: dict | None) -> str | None:
    """The one sentence, for the terminal, the report and the gate, that a run was denied CPU (None: it was not)."""
    if not summary or not summary.get("denied"):
        return None
    parts = []
    if (summary.get("wait_share") or 0.0) > DENIED_SHARE:
        parts.append(
            f"its scaling cases waited for a CPU {summary['wait_share']:.0%} of the CPU time they could use "
            f"(above {DENIED_SHARE:.0%}; {summary['denied_cases']} of {summary['cases']} cases on their own)"
        )
    if (summary.get("steal_share") or 0.0) > STEAL_SHARE:
        parts.append(
            f"the hypervisor stole {summary['steal_share']:.0%} of the host's CPU time (above {STEAL_SHARE:.0%})"
        )
    return (
        "the run was denied CPU: "
        + " and ".join(parts)
        + "; another program or guest shared the CPUs, so its speedups are low and not the code's"
    )
