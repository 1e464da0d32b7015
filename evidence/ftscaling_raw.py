"""CPython ftscalingbench's method on evidence/ftscaling.py's patterns: raw threads, timing code of its own.

    python evidence/ftscaling_raw.py RESULTS.json [--threads 2] [--repeats 21] [--load-as import|file|suite]
                                                  [--method threads|pool]

Per pattern, at the task size a suite run used: the time of the task on one thread (t1) and of N
threads that each run the whole task at once (tN), each thread pinned to a CPU of its own and the
lone thread to each CPU in turn; speedup = t1 × N / tN, the median of ``--repeats`` tries
(ftscalingbench times one of each). The threads time themselves: tN runs from the first thread's
start to the last one's end. The main thread's clock is not used: with N threads pinned to all N CPUs, the
main thread has no CPU of its own, so its clock reads after the barrier and after the joins can come
late (measured in the 3.13t image, ft_closure: main-thread tN of 0.9 ms and 16.5 ms for a task of 17 ms
on one thread, so single tries read 0.00× to 1844×; with the threads' own clocks the 21 tries' quartiles were
1.55–1.62×). ``--load-as`` says how the workload file is loaded before
anything runs: ``import`` (a plain import from its folder), ``file``
(``importlib.util.spec_from_file_location``) or ``suite`` (``workloads.user.load_files``, as
``pytest bench --workload-file`` does): the question of issue #30 was whether the suite's way of
loading a file changes how its code scales on a free-threaded build.

``--method pool``: a plain ``ThreadPoolExecutor(N)`` as a program would use one, the suite's shape
without its code: per try a new pool, warmed by one task per thread, then three rounds, each two
serial tasks in the main thread and a batch of 6 × N tasks through ``map``; speedup = the mean serial
time per task over the mean pool time per task. Prints one JSON line per pattern.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE = Path(__file__).with_name("ftscaling.py")
sys.path.insert(0, str(ROOT))  # the file's Workload records come from the suite's workloads package
PATTERNS = ("ft_closure", "ft_method", "ft_dict", "ft_string", "ft_float")


def load(how: str):
    if how == "import":
        sys.path.insert(0, str(FILE.parent))
        import ftscaling  # noqa: PLC0415

        return ftscaling
    if how == "file":
        spec = importlib.util.spec_from_file_location("ftscaling", FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["ftscaling"] = module
        spec.loader.exec_module(module)
        return module
    from workloads.user import load_files  # noqa: PLC0415

    load_files([str(FILE)])
    return sys.modules["ftscaling"]


def timed(func, param, threads: int, cpus: list[int] | None) -> float:
    """Wall time of ``threads`` threads each running the whole task at once, each pinned to its own CPU of
    ``cpus`` when given (ftscalingbench pins threads to distinct cores): from the first thread's start
    to the last one's end, each read by the thread itself (module doc: not by the main thread)."""
    start = threading.Barrier(threads)
    spans: list[tuple[float, float]] = []

    def run(i: int) -> None:
        if cpus:
            os.sched_setaffinity(0, {cpus[i % len(cpus)]})
        start.wait()
        began = time.perf_counter()
        func(param)
        spans.append((began, time.perf_counter()))  # list.append is atomic, with or without the GIL

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return max(end for _, end in spans) - min(began for began, _ in spans)


def pooled(func, param, threads: int) -> float:
    """One try of ``--method pool``: a new plain pool, warmed, then three rounds against serial tasks."""
    serial, pool_times = [], []
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(func, [param] * threads))
        for _ in range(3):
            began = time.perf_counter()
            func(param)
            func(param)
            serial.append((time.perf_counter() - began) / 2)
            began = time.perf_counter()
            list(pool.map(func, [param] * (6 * threads)))
            pool_times.append((time.perf_counter() - began) / (6 * threads))
    return statistics.fmean(serial) / statistics.fmean(pool_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a suite run's results .json: the task sizes to use")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--load-as", choices=("import", "file", "suite"), default="import")
    parser.add_argument("--method", choices=("threads", "pool"), default="threads")
    args = parser.parse_args()
    sizes = json.loads(Path(args.results).read_text())["machine_info"]["poolbench"]["sizes"]
    module = load(args.load_as)
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    for name in PATTERNS:
        if name not in sizes:
            continue
        func, param = getattr(module, name), sizes[name]["param"]
        func(param)
        allowed = sorted(os.sched_getaffinity(0))
        speedups = []
        for i in range(args.repeats):  # one thread on each CPU in turn, against all threads at once
            if args.method == "pool":
                speedups.append(pooled(func, param, args.threads))
                continue
            alone = timed(func, param, 1, [allowed[i % len(allowed)]])
            speedups.append(alone * args.threads / timed(func, param, args.threads, allowed))
        row = {"pattern": name, "param": param, "threads": args.threads, "load_as": args.load_as, "gil": gil}
        row["method"] = args.method
        print(json.dumps({**row, "speedup": statistics.median(speedups), "tries": speedups}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
