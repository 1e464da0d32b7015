"""The results schema, the profiles and the pool-size rule: what the suite writes and the scripts read.

Everything here is part of the contract between ``bench`` (which records) and ``scripts`` (which
read, plot and gate); docs/results-schema.md, documents it for users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Bumped when a key of extra_info or machine_info["poolbench"] is added, changes meaning or goes
#: away; the loader (scripts/results.py) reads every version listed here. History:
#:
#: 1. first release.
#: 2. scaling cases of pools add ``serial_samples_s`` (serial rounds paired with the pool's rounds;
#:    a version-1 file has none); machine_info adds ``workload_files``.
#: 3. machine_info adds ``io_dir`` and ``io_fstype`` (where ``io_file`` writes), ``cpu_time_source``
#:    and ``cpu_time_resolution_s`` (what ``cpu_time_s`` was read from), ``loadavg_start`` and
#:    ``loadavg_end``; ``cpu_time_s`` is read at nanosecond resolution where Linux allows (it was
#:    10 ms ticks); ``rss_peak_bytes`` and the throttling counters cover the timed rounds only
#:    (they included warm-up rounds); extra_info adds ``minor_faults`` (the tree's minor page faults
#:    over the timed rounds); machine_info adds ``started_at`` (when the run started, UTC) and
#:    ``dask`` (the dask executor's version and cluster; null when it did not run), ``python_build``
#:    (``3.11``, ``3.13t``) and ``free_threaded`` (the interpreter was built without the GIL;
#:    ``gil_enabled`` says whether the GIL was on at the end of the run, after every import), and
#:    ``interpreter`` (for the interpreter pool: which modules imported in a subinterpreter, and the
#:    workloads left out; null when it did not run); ``executor`` may be ``interpreter``.
#: 4. machine_info adds ``malloc`` (the allocator policy: ``policy``, ``settings``, ``libc``,
#:    ``applied``, ``note``; bench/allocator.py); the default policy is ``neutral`` (it was
#:    ``fixed``, whose ``malloc_mmap_threshold`` was 131072), so task times of workloads that
#:    allocate large buffers are not comparable with version 3 results made with the default;
#:    extra_info adds ``cpu_wait_s`` (run-queue wait of the tree's threads over the timed rounds) and
#:    ``steal_s`` (the host's steal time over them); machine_info adds ``cpu_wait_source`` and
#:    ``cpu_denied`` (denied_summary of the run's scaling cases).
#: 5. the sampling plan (bench/plan.py): task sizes are calibrated per host, recorded per workload
#:    in machine_info ``sizes`` ({param, method, task_s, target_s, tries}) with the rules in
#:    ``plan``; a scaling batch holds k tasks per busy CPU (``tasks`` grows with the worker count);
#:    ``serial_samples_s`` times a serial probe of ``serial_tasks`` tasks after each timed round
#:    (it timed the whole batch, after every round); extra_info adds ``serial_tasks``, ``task_s``
#:    (the workload's serial task time at start), ``pass`` and ``passes``: every scaling point is
#:    measured in ``passes`` records, one per pass, that the loader joins into one; every case adds
#:    ``case_wall_s`` (its whole wall time: pool start, warm-up, rounds, probes, checks, shutdown).
#: 6. dask runs in named configurations (bench/cluster.py CONFIGS): a dask case's ``start_method``
#:    holds its configuration (``default``, ``tuned``; ``external`` for an existing cluster; it was
#:    null), so its pool reads ``dask/default``; dask cases add ``dask_config`` (name, how results
#:    are gathered, the settings as the scheduler and a worker hold them); machine_info ``dask``
#:    adds ``configs``; dispatch cases at chunksize 1 add ``latency_samples_s`` (one ``map`` of an
#:    empty task per worker, timed after the rounds); scaling cases of dask pools add
#:    ``settle_samples_s`` (the wait, before each serial probe, for the cluster to finish releasing
#:    the round: bench/cluster.py ``DaskExecutor.settle``); scaling cases of pools add
#:    ``serial_cpu_samples_s`` (each serial probe's own CPU time, the calling thread's);
#:    machine_info adds ``skipped_executors`` (``executor``, ``why``: asked for or in the default
#:    set, but missing on this Python or install).
#: 7. the serial reference is a bracket of warm probes (common/reference.py): ``serial_samples_s``
#:    holds one probe before the first timed round and one after each (rounds + 1 per pass; it held
#:    one cold task after each round), each timing ``serial_tasks`` tasks after
#:    ``serial_warm_tasks`` (new) untimed ones, each on the next of the process's CPUs in turn
#:    (``serial_cpus``, new), and ``serial_cpu_samples_s`` likewise; round i's
#:    reference is the mean of probes i−1 and i. machine_info adds ``gc`` (garbage collection:
#:    the suite's heap frozen before every case and each worker's start-up heap, how many objects);
#:    ``plan`` and ``config`` add ``probe_warm_tasks``, ``plan`` adds ``reference`` (the rule in
#:    words). Speedups of schema 5-6 read 3-14 % high where the first task after a pool round ran
#:    cold (issue #30).
SCHEMA_VERSION = 7

#: Schema versions the loader accepts.
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)

#: extra_info keys every poolbench benchmark carries.
REQUIRED_EXTRA = (
    "case",
    "workload",
    "kind",
    "gil",
    "executor",
    "start_method",
    "workers",
    "tasks",
    "chunksize",
    "effective_cpus",
)

#: machine_info["poolbench"] keys every poolbench result carries.
REQUIRED_MACHINE = ("effective_cpus", "recommended_workers", "cpu_count")

#: Task sizes, batch sizes and rounds (workloads/registry.py sizes, bench/config.py rounds).
PROFILES = ("quick", "default", "full")


def recommended_workers(effective_cpus: float) -> int:
    """Pool size for CPU-bound work: the effective CPUs rounded up, at least 1.

    Rounded up (as loky does), not down (as Uber's automaxprocs does): with a quota of 1.5 CPUs,
    two workers can use the whole quota, one worker only two thirds of it. The cost is that the
    two stall together when the quota runs out, which the throttling counters record. (The
    ``1e-9`` keeps a quota read as 2.0000000001 CPUs at 2.)
    """
    return max(1, math.ceil(effective_cpus - 1e-9))


#: Set by scripts.matrix for the runs of a matrix across Python builds (``--pythons``): an executor
#: named in ``--executors`` that the build lacks is left out of that build's run with one line and
#: recorded (machine_info ``skipped_executors``), instead of failing the run (bench/config.py).
SKIP_MISSING_ENV = "POOLBENCH_SKIP_MISSING_EXECUTORS"

#: A file the suite writes at its first stop signal, ``{"stopped_by": "SIGTERM"}`` (bench/stopping.py):
#: how scripts.matrix tells a suite stopped by a signal (exit 2) from one pytest stopped for a
#: collection error (also exit 2), without reading the wording of a message.
STATUS_FILE_ENV = "POOLBENCH_STATUS_FILE"

#: Workload files for ``pytest bench``, ':'-separated, read before ``--workload-file`` (bench/conftest.py);
#: scripts.matrix sets it to the files' paths inside its containers.
WORKLOAD_FILES_ENV = "POOLBENCH_WORKLOAD_FILES"

#: Set by scripts.matrix for a cluster of containers (``--cluster``): how many workers the cluster should
#: have before the suite reads its size (worker containers connect a few seconds after start).
CLUSTER_WORKERS_ENV = "POOLBENCH_DASK_WORKERS"

#: File systems whose fsync reaches no disk: ``io_file`` there measures memory, not I/O
#: (recorded as machine_info ``io_fstype``; the report cautions).
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")

#: The 1-minute load average per effective CPU above which a run counts as busy (pyperf warns on a
#: busy system too): more runnable tasks than CPUs means another program shared them.
BUSY_LOAD_PER_CPU = 1.0


def python_build(version: str, free_threaded: bool = False) -> str:
    """A Python build as the results name it: ``3.11``, ``3.13t`` (free-threaded), from ``3.13.5``."""
    major_minor = ".".join(str(version).split(".")[:2])
    return major_minor + ("t" if free_threaded else "")


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
#: reads as up to 30 % on an idle machine, and averages out over a run. Measured here (issue #23,
#: evidence/gate): idle quick runs 2.8-3.4 %, idle default runs under 1 %, quick runs beside a busy
#: loop on one of the 2 CPUs 18-19 %.
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
