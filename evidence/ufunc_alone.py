"""The suite's ``numpy_ufunc`` threads at W = 2 run alone, in turn with a plain two-thread pool.

    python evidence/ufunc_alone.py RESULTS.json [--turns 3] [--seconds 15]

In the default runs the suite reads this point above the independent method (docs/guide.md, beside the
reference block). This runs the suite with nothing else (``pytest bench --cases scaling --workloads
numpy_ufunc --executors serial,thread --workers 2 --passes 4 --sizes-from RESULTS.json``) and then, for
``--seconds``, the independent method's point (evidence/independent.py: a plain ``ThreadPoolExecutor(2)``
with its own timing, a serial block of 6 tasks and a pool block of 12 in turn, each after an untimed
task a worker, throughput of all blocks, its allocator and BLAS set-up), ``--turns`` times, and prints
both figures per turn: the suite's per pass (a pass's median round against its probes' median) and the
plain one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "evidence")]

import independent  # noqa: E402  (evidence/independent.py: its allocator and BLAS set-up)

from workloads import cpu_bound  # noqa: E402


def suite_alone(sizes: str, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--cases", "scaling"]
    cmd += ["--workloads", "numpy_ufunc", "--executors", "serial,thread", "--workers", "2", "--passes", "4"]
    cmd += ["--sizes-from", sizes, "--benchmark-json", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    figures = []
    for bench in json.loads(out.read_text())["benchmarks"]:
        extra = bench["extra_info"]
        if extra["executor"] != "thread":
            continue
        pool = statistics.median(bench["stats"]["data"]) / extra["tasks"] * 2
        probe = statistics.median(extra["serial_samples_s"]) / extra["serial_tasks"]
        figures.append(f"{2 * probe / pool:.3f}")
    return figures


def plain(n: int, seconds: float) -> float:
    """The independent method's point (evidence/independent.py ``Point``), for ``seconds``: its speedup."""
    point = independent.Point(cpu_bound.ufunc_chain, n, "thread", 2)
    try:
        point.measure(seconds)
        return point.result()["speedup"]
    finally:
        point.pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a default run's results file: its sizes are used")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    sizes = str(Path(args.results).resolve())
    n = next(
        b["extra_info"]["task_param"]
        for b in json.loads(Path(sizes).read_text())["benchmarks"]
        if b["extra_info"].get("workload") == "numpy_ufunc"
    )
    independent.allocator_and_blas()
    with tempfile.TemporaryDirectory() as tmp:
        for turn in range(1, args.turns + 1):
            passes = suite_alone(sizes, Path(tmp) / f"alone{turn}.json")
            print(f"turn {turn}: the suite alone, per pass {', '.join(passes)}; plain {plain(n, args.seconds):.3f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
