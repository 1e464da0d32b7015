"""What a case records besides wall time: CPU time and memory of the process tree, and throttling.

The process tree is this process and every descendant (pool workers, a forkserver, the resource
tracker). Reading it costs a few /proc reads per process, so it is done between rounds, never
inside the timed region; the peak RSS comes from the kernel's own high-water mark.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import stopping
from bench.cpus import CgroupCpu, read_throttling


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def tree_cpu_seconds(proc: psutil.Process | None = None) -> float:
    """User + system CPU seconds of the whole tree, reaped children included."""
    proc = proc or psutil.Process()
    total = 0.0
    for p in _tree(proc):
        try:
            t = p.cpu_times()
        except psutil.Error:  # a worker that exited between listing and reading
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_rss_bytes(proc: psutil.Process | None = None) -> int:
    """Resident set size summed over the tree (shared pages counted once per process)."""
    proc = proc or psutil.Process()
    total = 0
    for p in _tree(proc):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def tree_uss_bytes(proc: psutil.Process | None = None) -> int | None:
    """Unique set size summed over the tree: memory that would be freed if each process exited.

    Fairer than RSS for forked workers, whose copy-on-write pages RSS counts again in every child.
    None where the platform cannot tell.
    """
    proc = proc or psutil.Process()
    total = 0
    for p in _tree(proc):
        try:
            total += p.memory_full_info().uss
        except (psutil.Error, AttributeError):
            return None
    return total


def tree_size(proc: psutil.Process | None = None) -> int:
    """Number of processes in the tree, this one included."""
    return len(_tree(proc or psutil.Process()))


def _status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss(pid: int | None = None) -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) of a process; False where Linux does not allow it."""
    try:
        with open(f"/proc/{pid or os.getpid()}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tree_peak_rss_bytes(proc: psutil.Process | None = None) -> int:
    """Sum over the tree of each process's peak RSS (VmHWM) since it started or was last reset.

    The kernel keeps the peak, so nothing polls during the timed region: a sampling thread in this
    process would take the GIL from GIL-bound tasks on threads (each /proc read releases and
    re-takes it, paying up to a 5 ms switch interval; it slowed one-thread runs by half here). The
    sum of peaks bounds the peak of the sum from above. Falls back to the current RSS where
    /proc/PID/status has no VmHWM.
    """
    proc = proc or psutil.Process()
    total = 0
    for p in _tree(proc):
        kib = _status_kib(p.pid, "VmHWM")
        if kib is not None:
            total += kib * 1024
            continue
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


class PeakRss:
    """The tree's peak RSS over a block: resets this process's counter on entry, reads all on exit.

    Pool workers started inside the block count from their own start. Read ``peak`` on exit, while
    the pool's workers are still alive.
    """

    def __init__(self) -> None:
        self.peak = 0
        self._proc = psutil.Process()

    def __enter__(self) -> PeakRss:
        reset_peak_rss(self._proc.pid)
        for child in _tree(self._proc)[1:]:
            reset_peak_rss(child.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tree_peak_rss_bytes(self._proc)


@contextmanager
def throttling(cgroup: CgroupCpu) -> Iterator[dict[str, Any]]:
    """Yields a dict that holds, on exit, the change in the cgroup's throttling counters.

    Keys ``throttled_periods`` and ``throttled_s``; both None where the counters cannot be read.
    """
    delta: dict[str, Any] = {"throttled_periods": None, "throttled_s": None}
    before = read_throttling(cgroup)
    try:
        yield delta
    finally:
        after = read_throttling(cgroup)
        if before and after:
            delta["throttled_periods"] = after["nr_throttled"] - before["nr_throttled"]
            delta["throttled_s"] = round(after["throttled_s"] - before["throttled_s"], 6)


class WrongAnswer(AssertionError):
    """A task returned something its check rejects: the case fails, however fast it was."""


@dataclass
class BatchRounds:
    """One batch per round through ``pool.map``, for ``benchmark.pedantic(setup, target, teardown)``.

    ``setup`` and ``teardown`` run outside the timed region: they read the tree's CPU time and check
    every answer of the round just run. Warm-up rounds are checked but their CPU time is not kept.

    With ``paired`` (a function that runs the same batch serially), ``teardown`` also times one
    serial batch right after each pool round, warm-up included, and keeps the times of the timed
    rounds in ``paired_samples``: round i of the pool and serial round i are seconds apart, so a slow
    phase of a shared host hits both (scripts/metrics.py divides them). Its answers are checked too.
    """

    run_batch: Callable[[], list[Any]]
    check: Callable[[int, Any], bool]
    label: str
    tasks: int
    warmup_rounds: int = 0
    paired: Callable[[], list[Any]] | None = None
    cpu_time_s: float = 0.0
    rounds_done: int = 0
    paired_samples: list[float] = field(default_factory=list)
    _cpu_start: float = 0.0
    _results: list[Any] | None = field(default=None, repr=False)

    def setup(self) -> None:
        stopping.checkpoint()  # a stop signal held during a fork stops the run before this round
        self._results = None
        self._cpu_start = tree_cpu_seconds()

    def target(self) -> None:
        self._results = self.run_batch()

    def teardown(self) -> None:
        cpu = tree_cpu_seconds() - self._cpu_start
        self.rounds_done += 1
        timed = self.rounds_done > self.warmup_rounds
        if timed:
            self.cpu_time_s += cpu
        self.verify()
        if self.paired is not None:
            started = time.perf_counter()
            self._results = self.paired()
            took = time.perf_counter() - started
            self.verify("serial round paired with this case")
            if timed:
                self.paired_samples.append(took)

    def verify(self, what: str | None = None) -> None:
        """Check every answer of the last round (also called once when pytest-benchmark is disabled)."""
        if self._results is None:
            return
        results = self._results
        label = f"{self.label} ({what})" if what else self.label
        if len(results) != self.tasks:
            raise WrongAnswer(f"{label}: {len(results)} results for {self.tasks} tasks")
        for i, result in enumerate(results):
            if not self.check(i, result):
                raise WrongAnswer(f"{label}: task {i} returned a wrong answer: {result!r:.200}")
        self._results = None
