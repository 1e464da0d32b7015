"""What the suite says on the terminal: one-line notices past pytest's capture, and the end-of-run answer.

The end-of-run table is the answer at a glance (pytest's ``terminal_summary`` hook): for each
workload of the scaling case, each pool's speedup over serial at the recommended worker count, and
the files the results went to, so that no second command is needed to see it. The report
(scripts/report.py) adds intervals, verdicts and plots.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from bench import benchmark_api
from common.checks import defects_line, per_task_us, pool_costs, run_defects, solo_expected
from common.executors import Pool
from common.reference import Estimate, Paired, capacity, case_paired, estimates, ideal_speedup, join, spread_group


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


def scaling_estimates(
    benchmarks: Iterable[Any], info: Mapping[str, Any]
) -> tuple[dict[tuple[str, str, int], tuple[Estimate, float, str, float]], list[Estimate]]:
    """Every finished scaling point's estimate and ideal, and each workload's reference bias, as the report's.

    ``benchmarks``: pytest-benchmark fixtures that finished, one per pass of a point; ``info``: what
    machine_info["poolbench"] holds of the CPUs (``effective_cpus``, an existing cluster's workers).
    The passes of a point are joined and every figure comes from common/reference.py, which
    scripts/analysis.py calls too: ``{(workload, pool, workers): (estimate, ideal, kind, task_s)}``, [bias]
    (``task_s``: a serial task's time by the point's probes).
    """
    joined: dict[tuple[str, str, int], list[Paired]] = {}
    shape: dict[tuple[str, str, int], tuple[str, int, str]] = {}
    for b in benchmarks:
        extra, samples = b.extra_info, _samples(b)
        if extra.get("case") != "scaling" or not samples:
            continue
        pairing = case_paired(extra, samples, int(extra.get("tasks") or 1))
        if pairing is None:
            continue
        key = (str(extra["workload"]), _pool(extra), int(extra["workers"]))
        joined.setdefault(key, []).append(pairing)
        shape[key] = (str(extra.get("kind")), int(extra.get("tasks") or 1), str(extra["executor"]))
    figures = {k: join(parts) for k, parts in joined.items()}
    groups = {k: spread_group("", k[0], shape[k][2], k[2], capacity(info, shape[k][2])) for k in figures}
    est = estimates({k: (groups[k], p.speedup(), p.values()) for k, p in figures.items()})
    points = {}
    biases = []
    for key, e in est.items():
        kind, tasks, executor = shape[key]
        if executor == "serial":
            biases.append((key[0], kind, e))
            continue
        ideal = ideal_speedup(kind, key[2], tasks, capacity(info, executor))
        points[key] = (e, ideal, kind, figures[key].task_s())
    return points, biases


def dispatch_us(benchmarks: Iterable[Any]) -> dict[tuple[str, int], float]:
    """The dispatch case's median µs per empty task, by (pool, chunksize), as scripts/causes.py reads it."""
    cases = ((b.extra_info, _samples(b)) for b in benchmarks)
    return per_task_us(
        (_pool(extra), int(extra.get("chunksize") or 1), statistics.median(samples), int(extra["tasks"]))
        for extra, samples in cases
        if extra.get("case") == "dispatch" and samples
    )


def defects(benchmarks: Iterable[Any], info: Mapping[str, Any]) -> str | None:
    """The run's measurement defects in one line (common/checks.py ``run_defects``), or None."""
    benchmarks = list(benchmarks)
    points, biases = scaling_estimates(benchmarks, info)
    costs = pool_costs(dispatch_us(benchmarks))
    named = [(f"{w} {p} w{n}", n, kind, e, ideal) for (w, p, n), (e, ideal, kind, _) in points.items()]
    expected = {
        f"{w} {p} w{n}": solo_expected(task_s, costs.get(p))
        for (w, p, n), (_, _, _, task_s) in points.items()
        if n == 1
    }
    return defects_line(run_defects(named, biases, expected))


def speedup_table(benchmarks: Iterable[Any], workers: int, info: Mapping[str, Any]) -> list[str]:
    """Rows of "workload  pool speedup ..." for the scaling cases of pools at ``workers`` workers.

    The speedup of each pool is the report's (:func:`scaling_estimates`). Empty when nothing qualifies.
    """
    points, _ = scaling_estimates(benchmarks, info)
    cells: dict[str, dict[str, float]] = {}
    for (workload, pool, n), (e, _, _, _) in points.items():
        if n == workers:
            cells.setdefault(workload, {})[pool] = e.value
    if not cells:
        return []
    pools = sorted({p for row in cells.values() for p in row})
    width = max(len(w) for w in cells)
    lines = [f"{'workload'.ljust(width)}  " + "  ".join(p.rjust(max(len(p), 6)) for p in pools)]
    for workload, row in cells.items():
        values = [(f"{row[p]:.2f}×" if p in row else "—").rjust(max(len(p), 6)) for p in pools]
        lines.append(f"{workload.ljust(width)}  " + "  ".join(values))
    return lines
