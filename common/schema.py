"""The results schema, the profiles and the pool-size rule: what the suite writes and the scripts read.

Everything here is part of the contract between ``bench`` (which records) and ``scripts`` (which
read, plot and gate); docs/results-schema.md, documents it for users.
"""

from __future__ import annotations

import math

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
#: 5. the sampling plan (bench/calibration.py): task sizes are calibrated per host, recorded per workload
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
#: 8. each serial probe runs on the CPUs the case's rounds ran on, in their shares (bench/measure.py
#:    ``ProbePlacer``; it rotated over the process's CPUs), and scaling cases of pools add
#:    ``round_cpu_shares`` (per timed round, each CPU's share of the machine's busy ticks): a lone
#:    worker on a vCPU that ran faster than the other read above serial in schema 7 (issue #30).
#: 9. before each timed round a pool runs an untimed warm batch of ``round_warm_tasks`` (new) tasks, one
#:    per CPU it can use (common/reference.py ``round_warm_tasks``): the probe before the round ran on a
#:    worker's CPU and left it cold, and one-worker process pools of schema 8 read 1-3 % below serial
#:    for it (issue #30).
#: 10. every scaling task, the serial reference's and the pools' alike, runs at the next of 64 C-stack offsets
#:    over 4 KiB (workloads/stack.py; ``--task-stack fixed`` runs each where it is): machine_info adds
#:    ``task_stack`` (``mode``, ``offsets``, ``span_bytes``, ``moved``) and ``config`` adds ``task_stack``.
#:    In about one run in six of schema 9 a one-thread pool's worker, whose stack starts at the same
#:    place in every process, ran GIL-bound work 5-10 % slower than the suite's thread for the whole run
#:    (issue #30). The probes of I/O-bound workloads are no longer held on one CPU (``serial_cpus`` null
#:    for them): a probe held on the CPU without the disk's interrupts took 30 % longer per io_file task.
#: 11. the ``neutral`` allocator policy turns transparent huge pages off in the suite and every process it
#:    starts, and gives the heaps' free pages back before every case (bench/allocator.py); ``malloc`` adds
#:    ``huge_pages`` (``host``: the kernel's mode, ``off``, ``note``). Under schema 10 the suite's own
#:    heap held more huge pages than a pool's thread or worker: a one-worker thread pool of
#:    ``numpy_matmul`` read 0.95-0.97× serial for it (issue #30). NumPy tasks' times are not comparable
#:    with schema 10's where the host gave huge pages (``scripts.compare`` names the change).
SCHEMA_VERSION = 11

#: Schema versions the loader accepts.
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)

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


#: File systems whose fsync reaches no disk: ``io_file`` there measures memory, not I/O
#: (recorded as machine_info ``io_fstype``; the report cautions).
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def python_build(version: str, free_threaded: bool = False) -> str:
    """A Python build as the results name it: ``3.11``, ``3.13t`` (free-threaded), from ``3.13.5``."""
    major_minor = ".".join(str(version).split(".")[:2])
    return major_minor + ("t" if free_threaded else "")
