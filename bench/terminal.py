"""What the suite says on the terminal: one-line notices past pytest's capture, and the end-of-run answer.

The end-of-run table is the answer at a glance (pytest's ``terminal_summary`` hook): for each
workload of the scaling case, each pool's speedup over serial at the recommended worker count, and
the files the results went to, so that no second command is needed to see it. The report
(scripts/report.py) adds intervals, verdicts and plots.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from typing import Any

import pytest

from bench import benchmark_api
from common.executors import Pool
from common.schema import paired_speedup, serial_batch_times


def tell(config: pytest.Config, text: str) -> None:
    """One line to the user's terminal, on a line of its own, past pytest's output capture."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        if reporter is not None:
            writer = benchmark_api.terminal_writer(reporter)
            if writer.width_of_current_line:  # after pytest's progress dots
                writer.line()
            reporter.write_line(text)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def warn(config: pytest.Config, text: str) -> None:
    tell(config, f"poolbench: {text}")


def _pool(extra: dict[str, Any]) -> str:
    return str(Pool(str(extra["executor"]), extra.get("start_method")))


def _samples(b: Any) -> list[float] | None:
    return benchmark_api.samples(b)


def scaling_waits(benchmarks: Iterable[Any]) -> list[tuple[float | None, float | None, float | None, float, int]]:
    """``(cpu_wait_s, steal_s, cpu_time_s, wall_s, workers)`` per finished CPU-bound scaling case (denied_summary)."""
    out = []
    for b in benchmarks:
        extra, samples = b.extra_info, _samples(b)
        if extra.get("case") == "scaling" and extra.get("kind") != "io" and samples:
            wall = float(sum(samples))
            out.append(
                (extra.get("cpu_wait_s"), extra.get("steal_s"), extra.get("cpu_time_s"), wall, int(extra["workers"]))
            )
    return out


def summary_workers(swept: tuple[int, ...], recommended: int) -> int:
    """The worker count the end-of-run table shows: the recommended one, else the most swept below it."""
    below = [w for w in swept if w <= recommended]
    return max(below) if below else min(swept)


def speedup_table(benchmarks: Iterable[Any], workers: int) -> list[str]:
    """Rows of "workload  pool speedup ..." for the scaling cases of pools at ``workers`` workers.

    ``benchmarks`` are pytest-benchmark fixtures that finished; a pool's speedup is the median over
    its rounds (every pass's together) of its paired serial probe, scaled to its batch (serial time
    per task × tasks), over the round, as scripts/metrics.py does. Empty when nothing qualifies.
    """
    joined: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for b in benchmarks:
        extra = b.extra_info
        serial = extra.get("serial_samples_s")
        samples = _samples(b)
        if extra.get("case") != "scaling" or extra.get("workers") != workers or not serial or not samples:
            continue
        serial_all, pool_all = joined.setdefault((str(extra["workload"]), _pool(extra)), ([], []))
        serial_all.extend(serial_batch_times(serial, int(extra.get("tasks") or 1), extra.get("serial_tasks")))
        pool_all.extend(samples)
    cells: dict[str, dict[str, float]] = {}
    for (workload, pool), (serial_all, pool_all) in joined.items():
        cells.setdefault(workload, {})[pool] = paired_speedup(serial_all, pool_all)
    if not cells:
        return []
    pools = sorted({p for row in cells.values() for p in row})
    width = max(len(w) for w in cells)
    lines = [f"{'workload'.ljust(width)}  " + "  ".join(p.rjust(max(len(p), 6)) for p in pools)]
    for workload, row in cells.items():
        values = [(f"{row[p]:.2f}×" if p in row else "—").rjust(max(len(p), 6)) for p in pools]
        lines.append(f"{workload.ljust(width)}  " + "  ".join(values))
    return lines
