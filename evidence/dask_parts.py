"""By hand, outside the suite: where a dask task's time goes (issue #20).

A LocalCluster of one-thread worker processes, as bench/cluster.py builds it, runs batches of the
pure-Python ``cpu_python`` task and of the GIL-releasing ``numpy_ufunc`` task (each about 20 ms of
CPU, and empty tasks) through ``Client.get_executor(pure=False).map``. For each batch it reads, by
a method of its own (the kernel's CPU accounting per thread, /proc/PID/task/TID/schedstat, of every
process psutil finds), how many CPU milliseconds each part of the cluster spent per task:

* the worker's task thread beyond the task's own serial CPU time (GIL hand-offs, cache),
* the worker's other threads (its event loop: messages, heartbeats, the system monitor, profiling),
* the nanny,
* the client's process: the client's event loop and, in a LocalCluster, the scheduler too.

Then the same batches with one thing changed at a time (knock-outs, CONFIGS): results gathered in
one call, the scheduler's queue off, the worker's profiler off, its monitors quieted, work stealing
off, a longer switch interval in the worker, the scheduler in a process of its own; then the
suite's ``tuned`` configuration, and tuned with the scheduler apart. Serial time is the same task
in this process after each batch, once the cluster has released the batch (SETTLE_S). Last, a
check of the suite's pairing: a serial task timed right after a batch and again SETTLE_S later, on
dask and on a process pool. Prints one JSON line per workload, configuration and W, then the
check (evidence/measure.sh, topic ``dask``, keeps them in evidence/dask/parts.jsonl).

    .venv/bin/python evidence/dask_parts.py [--rounds 5] [--target-ms 20] [--only "default,queue off"]

It shares no measuring code with bench/: it imports only the workload functions and the suite's
``tuned`` settings (so that the two measure the same configuration).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # a subprocess scheduler unpickles tasks too

import dask
from distributed import Client, LocalCluster

from bench.cluster import CONFIGS as SUITE  # the suite's configurations: their settings only, no code
from workloads.cpu_bound import count_primes, ufunc_chain

TUNED = SUITE["tuned"]["settings"]
MONITORS = {
    "distributed.admin.system-monitor.interval": "1h",
    "distributed.admin.tick.interval": "1h",
    "distributed.worker.memory.monitor-interval": "1h",
}
#: One thing changed at a time from dask as it ships, then the suite's ``tuned`` and tuned with the
#: scheduler in a process of its own.
CONFIGS = {
    "default": {},
    "gather once": {"gather": True},
    "queue off": {"cfg": {"distributed.scheduler.worker-saturation": "inf"}},
    "profiler off": {"cfg": {"distributed.worker.profile.enabled": False}},
    "monitors off": {"cfg": MONITORS},
    "stealing off": {"cfg": {"distributed.scheduler.work-stealing": False}},
    "switch 50 ms": {"switch": 0.05},
    "scheduler apart": {"subsched": True},
    "tuned": {"gather": True, "cfg": TUNED},
    "tuned + scheduler apart": {"gather": True, "subsched": True, "cfg": TUNED},
}
#: The workloads: a task function, how its parameter scales its work, a first guess.
WORKLOADS = {
    "cpu_python": (count_primes, 1.5, 20_000),  # pure Python: holds the GIL
    "numpy_ufunc": (ufunc_chain, 1.0, 200_000),  # NumPy loops over large arrays: releases it
}


#: Seconds to let the cluster finish with a batch (release its results) before the next step: a
#: serial task timed while the client's event loop frees the batch's results runs slower (bench/
#: cluster.py ``DaskExecutor.settle`` waits for quiet instead; this waits a fixed time).
SETTLE_S = 0.3


def noop(x: int) -> int:
    return x


def size_task(func, exponent: float, param: int, target_s: float) -> int:
    """The parameter whose serial task takes target_s of CPU time (median of 3), by the work's exponent."""
    for _ in range(8):
        ts = []
        for _ in range(3):
            t = time.process_time()
            func(param)
            ts.append(time.process_time() - t)
        took = statistics.median(ts)
        if 0.9 < took / target_s < 1.1:
            break
        param = int(param * (target_s / took) ** (1 / exponent))
    return param


def serial_s(func, param: int) -> float:
    t = time.perf_counter()
    func(param)
    return time.perf_counter() - t


def thread_ids(role: str) -> dict[str, int]:
    """In a worker (via Client.run): its threads' names and kernel ids; 'task' is the executor thread."""
    return {t.name: t.native_id for t in threading.enumerate() if t.native_id is not None}


def cpu_ms(proc: psutil.Process, tids: set[int] | None = None) -> float:
    """Time on a CPU (ms) of a process's threads, or of the given ones: /proc/PID/task/TID/schedstat, in ns.

    psutil's cpu_times counts in clock ticks (10 ms), too coarse for a few tasks; schedstat's first
    field is the scheduler's own runtime in nanoseconds.
    """
    total = 0
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        if tids is not None and int(task.name) not in tids:
            continue
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return total / 1e6


def start(workers: int, spec: dict):
    with dask.config.set(spec.get("cfg", {})):
        if spec.get("subsched"):
            from distributed.deploy.subprocess import SubprocessCluster  # noqa: PLC0415

            cluster = SubprocessCluster(
                n_workers=workers,
                threads_per_worker=1,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                host="127.0.0.1",
                worker_kwargs={},
            )
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                host="127.0.0.1",
                scheduler_port=0,
            )
        client = Client(cluster, set_as_default=False)
    if spec.get("switch"):
        client.run(sys.setswitchinterval, spec["switch"])
    return cluster, client


def task_tid() -> int:
    """In a task: the kernel id of the thread running it."""
    return threading.get_native_id()


def task_threads(client, func, limit: int, tries: int = 3) -> tuple[dict[str, int], dict[str, set[int]]]:
    """Each worker's pid and the kernel ids of its task threads: those named as dask's executor threads, and
    those that ran a task pinned to that worker. Once (2026-12-07, 21st configuration of the topic) a
    worker listed no executor thread right after a task had run on it ('MainThread', 'Nanny stop queue
    watch', 'Thread-1 (monitor_parent)'), so the read is tried again, pids included, before giving up."""
    for attempt in range(tries):
        pids = client.run(os.getpid)
        # every worker's task thread exists before its threads are read: one task pinned to each
        client.gather([client.submit(func, limit, workers=[a], pure=False) for a in pids])
        ran = client.gather([client.submit(task_tid, workers=[a], pure=False) for a in pids])
        named = client.run(thread_ids, "worker")
        tids = {
            a: {tid for n, tid in named.get(a, {}).items() if "Dask-Default-Threads" in n} | {ran[i]}
            for i, a in enumerate(pids)
        }
        alive = {a: tid for a, tid in zip(pids, ran, strict=True) if tid in named.get(a, {}).values()}
        if client.run(os.getpid) == pids and len(alive) == len(pids):
            return pids, tids
        time.sleep(1.0 + attempt)
    raise RuntimeError(f"the workers' task threads could not be read in {tries} tries: {named} (pids {pids})")


def measure(name: str, spec: dict, workers: int, *, func, limit: int, tasks: int, rounds: int) -> dict:
    cluster, client = start(workers, spec)
    try:
        ex = client.get_executor(pure=False)

        def batch(fn, args):
            if spec.get("gather"):
                return client.gather(client.map(fn, args, pure=False))
            return list(ex.map(fn, args))

        batch(func, [limit] * workers)  # warm
        pids, task_tids = task_threads(client, func, limit)
        worker_procs = {a: psutil.Process(p) for a, p in pids.items()}
        me = psutil.Process()
        # a LocalCluster's nannies live in this process (they start the worker processes); a
        # SubprocessCluster's each in a process of its own
        nannies = list({p.ppid(): p.parent() for p in worker_procs.values() if p.ppid() != me.pid}.values())
        sched = None
        if spec.get("subsched"):
            sched = psutil.Process(cluster.scheduler.process.pid)
        out: dict[str, list[float]] = {
            k: [] for k in ("speedup", "over_ms", "task_x", "loop_ms", "nanny_ms", "client_ms", "sched_ms", "noop_ms")
        }

        def snapshot() -> dict[str, float]:
            return {
                "task": sum(cpu_ms(p, task_tids[a]) for a, p in worker_procs.items()),
                "worker": sum(cpu_ms(p) for p in worker_procs.values()),
                "nanny": sum(cpu_ms(p) for p in nannies),
                "client": cpu_ms(me),
                "sched": cpu_ms(sched) if sched else 0.0,
            }

        for _ in range(rounds):
            time.sleep(SETTLE_S)  # the last batch's clean-up (releases, frees) done before this one starts
            # the cluster's housekeeping while idle (heartbeats, monitors, profiler) over SETTLE_S: the
            # batch below is read over its own time plus SETTLE_S, so this much is taken off it again
            quiet = snapshot()
            time.sleep(SETTLE_S)
            idle = {k: v - quiet[k] for k, v in snapshot().items()}
            before = snapshot()
            t0 = time.perf_counter()
            answers = batch(func, [limit] * tasks)
            wall = time.perf_counter() - t0
            time.sleep(SETTLE_S)  # this batch's clean-up counts to it, and does not slow the serial task below
            after = snapshot()
            assert len(set(answers)) == 1 and len(answers) == tasks
            t_cpu0 = cpu_ms(me, {threading.get_native_id()})
            s = statistics.median(serial_s(func, limit) for _ in range(3))
            serial_cpu_ms = (cpu_ms(me, {threading.get_native_id()}) - t_cpu0) / 3
            d = {k: (after[k] - before[k] - idle[k]) / tasks for k in after}
            out["speedup"].append(s * tasks / wall)
            out["over_ms"].append((wall * min(workers, os.cpu_count() or 1) / tasks - s) * 1e3)
            out["task_x"].append(d["task"] / serial_cpu_ms)
            out["loop_ms"].append(d["worker"] - d["task"])
            out["nanny_ms"].append(d["nanny"])
            out["client_ms"].append(d["client"])
            out["sched_ms"].append(d["sched"])
            t0 = time.perf_counter()
            batch(noop, list(range(200)))
            out["noop_ms"].append((time.perf_counter() - t0) * 1e3 / 200)
        row = {"workload": func.__name__, "config": name, "W": workers, "tasks": tasks, "serial_ms": round(s * 1e3, 1)}
        row.update({k: round(statistics.median(v), 3) for k, v in out.items()})
        return row
    finally:
        client.close()
        cluster.close()


def probe_check(func, param: int, rounds: int) -> dict:
    """A serial task timed right after a batch, and again SETTLE_S later: for dask (as it ships) and
    a process pool, both of two workers, batches of 12. The suite pairs each round with a serial
    probe; if the pool's own clean-up slows the probe, the pairing biases the speedup."""
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    cluster, client = start(2, {})
    pools = {"dask/default": client.get_executor(pure=False), "process": ProcessPoolExecutor(2)}
    out = {}
    try:
        for name, pool in pools.items():
            list(pool.map(func, [param] * 2))
            now, later, walls = [], [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                list(pool.map(func, [param] * 12))
                walls.append(time.perf_counter() - t0)
                now.append(serial_s(func, param))
                time.sleep(SETTLE_S)
                later.append(serial_s(func, param))
            out[name] = {
                "probe_now_ms": round(statistics.median(now) * 1e3, 2),
                "probe_later_ms": round(statistics.median(later) * 1e3, 2),
                "speedup_now": round(statistics.median(n * 12 / w for n, w in zip(now, walls, strict=True)), 3),
                "speedup_later": round(statistics.median(x * 12 / w for x, w in zip(later, walls, strict=True)), 3),
            }
    finally:
        pools["process"].shutdown()
        client.close()
        cluster.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--target-ms", type=float, default=20.0)
    ap.add_argument("--tasks-per-worker", type=int, default=6)
    ap.add_argument("--only", default=",".join(CONFIGS), help="configurations for cpu_python")
    ap.add_argument("--gil-free-only", default="default,tuned", help="configurations for numpy_ufunc")
    ap.add_argument("--workers", default="1,2")
    a = ap.parse_args()
    import distributed  # noqa: PLC0415

    print(
        json.dumps({"cpus": os.cpu_count(), "distributed": distributed.__version__, "python": sys.version.split()[0]})
    )
    for workload, only in (("cpu_python", a.only), ("numpy_ufunc", a.gil_free_only)):
        func, exponent, guess = WORKLOADS[workload]
        limit = size_task(func, exponent, guess, a.target_ms / 1e3)
        for w in (int(x) for x in a.workers.split(",")):
            for name in only.split(","):
                row = measure(
                    name, CONFIGS[name], w, func=func, limit=limit, tasks=a.tasks_per_worker * w, rounds=a.rounds
                )
                print(json.dumps({"workload_name": workload, "param": limit, **row}), flush=True)
    func, exponent, guess = WORKLOADS["cpu_python"]
    limit = size_task(func, exponent, guess, a.target_ms / 1e3)
    print(json.dumps({"probe_check": probe_check(func, limit, 12), "param": limit}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
