"""Timing a case: rounds of a batch with their readings, the serial probes around them, and checked answers.

:class:`BatchRounds` is what ``benchmark.pedantic`` calls around every round of a batch case, and
:class:`RoundMeter` what it reads of the process tree between rounds (bench/readings.py); a serial
probe runs on the CPUs the rounds beside it ran on (:class:`ProbePlacer`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import stopping
from bench.cpus import CgroupCpu, read_throttling
from bench.readings import (
    WAIT_SOURCE,
    _tree,
    host_steal_seconds,
    one_listing,
    reset_peak_rss,
    tree_cpu_seconds,
    tree_minor_faults,
    tree_peak_rss_bytes,
    tree_wait_seconds,
)

#: The next CPU a serial probe runs on when no round has been read yet: a rotation over this process's CPUs.
_probe_turn = itertools.count()


def cpu_busy_ticks() -> dict[int, int]:
    """Each CPU's busy clock ticks since boot, by CPU number (/proc/stat: user, nice, system, irq and softirq,
    the whole machine's); {} where /proc/stat cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            f = line.split()
            out[int(f[0][3:])] = int(f[1]) + int(f[2]) + int(f[3]) + int(f[6]) + int(f[7])
    return out


@dataclass
class ProbePlacer:
    """Where a case's serial probes run: on the CPUs its rounds ran on, in the same shares.

    A pool's round runs where the scheduler puts its workers; a host's vCPUs differ in speed, 8 % over
    half a minute and up to 1.5× in phases of seconds (measured on a 2-vCPU AMD EPYC guest, which sees no
    steal for it). A round of W = C workers covers every CPU, so its probes go to each CPU in turn; a lone
    worker sits on one CPU for a round, and a probe rotated onto the other CPU compares it with a CPU it
    did not run on: in run 2 of the schema-7 evidence/limits a slow phase of CPU 0 read a one-worker
    process pool on CPU 1 1.09× "faster than serial". So each round's busy clock ticks per CPU
    (:func:`cpu_busy_ticks`, the machine's, between the round's start and end) become shares that credit
    each CPU, and each probe goes to the CPU with the most credit, which pays one (smooth weighted round
    robin): a round spread evenly sends the probes round the CPUs in turn, a round on one CPU sends them
    there. A case's warm-up batch (bench/harness.py ``run_batches``) credits the CPUs it ran on too, so the
    probe before the first timed round follows it (without it, that probe of every pass took the rotation:
    one in ``rounds + 1`` probes placed blind). Before anything was read, the rotation over the process's
    CPUs."""

    credit: dict[int, float] = field(default_factory=dict)
    _start: dict[int, int] = field(default_factory=dict)

    def round_started(self) -> None:
        self._start = cpu_busy_ticks()

    def round_ended(self) -> dict[int, float] | None:
        """Credit each of this process's CPUs with its share of the round's busy ticks; the shares (None where
        nothing was read)."""
        end = cpu_busy_ticks()
        try:
            allowed = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return None
        ticks = {c: end.get(c, 0) - self._start.get(c, 0) for c in allowed}
        total = sum(t for t in ticks.values() if t > 0)
        if not self._start or total <= 0:
            return None
        shares = {c: max(t, 0) / total for c, t in ticks.items()}
        for c, share in shares.items():
            self.credit[c] = self.credit.get(c, 0.0) + share
        return shares

    def next_cpu(self, allowed: list[int]) -> int:
        credited = [c for c in allowed if c in self.credit]
        if not credited:
            return allowed[next(_probe_turn) % len(allowed)]
        cpu = max(credited, key=lambda c: (self.credit[c], -c))
        self.credit[cpu] -= 1.0
        return cpu


@contextmanager
def on_next_cpu(placer: ProbePlacer | None = None) -> Iterator[int | None]:
    """Run the block in this thread on the CPU ``placer`` picks (:class:`ProbePlacer`; without one, the next
    of this process's CPUs in turn), then give the thread back every CPU it had; yields that CPU (None off
    Linux, or when the thread's CPUs cannot be set)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        yield None
        return
    cpu = (placer or ProbePlacer()).next_cpu(allowed)  # a placer with no credit: the rotation
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield None
        return
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


class WrongAnswer(AssertionError):
    """A task returned something its check rejects: the case fails, however fast it was."""


@dataclass
class RoundMeter:
    """What a case records besides wall time, summed or maxed over its timed rounds only.

    ``start()`` and ``stop()`` bracket one round, outside the timed region (pytest-benchmark's
    ``setup`` and the start of its ``teardown``): CPU seconds of the process tree, the time its
    threads waited for a CPU (run-queue wait) and the host's steal time, the cgroup's throttling
    counters and the tree's peak RSS (reset at each start) are read then. The first
    ``warmup_rounds`` rounds are read but not kept, so a warm-up round's page faults, throttling or
    one-off imports do not land in the record; neither does anything ``teardown`` does after
    ``stop()`` (a paired serial round, a pool's shutdown).
    """

    cgroup: CgroupCpu | None = None
    warmup_rounds: int = 0
    rounds_done: int = 0
    cpu_time_s: float = 0.0
    rss_peak_bytes: int = 0
    throttled_periods: int | None = None
    throttled_s: float | None = None
    minor_faults: int | None = None
    cpu_wait_s: float | None = None
    steal_s: float | None = None
    _cpu_start: float = 0.0
    _wait_start: float | None = None
    _steal_start: float | None = None
    _faults_start: int | None = None
    _throttle_start: dict[str, float] | None = field(default=None, repr=False)

    @property
    def timing(self) -> bool:
        """Whether the round under way is a timed one (not a warm-up)."""
        return self.rounds_done >= self.warmup_rounds

    def start(self) -> None:
        stopping.checkpoint()  # a stop signal held during a fork stops the run before this round
        if not self.timing:
            return  # a warm-up round: nothing of it is kept
        me = psutil.Process()
        with one_listing(me):
            for p in _tree(me):
                reset_peak_rss(p.pid)
            self._throttle_start = read_throttling(self.cgroup) if self.cgroup else None
            self._faults_start = tree_minor_faults(me)
            self._steal_start = host_steal_seconds()
            self._wait_start = tree_wait_seconds(me) if WAIT_SOURCE else None
            self._cpu_start = tree_cpu_seconds(me)

    def stop(self) -> bool:
        """End the round; returns whether it was a timed round (its readings kept)."""
        me = psutil.Process()
        timed = self.timing
        self.rounds_done += 1
        if not timed:
            return False
        with one_listing(me):
            cpu = tree_cpu_seconds(me) - self._cpu_start
            wait = tree_wait_seconds(me) if WAIT_SOURCE else None
            steal = host_steal_seconds()
            faults = tree_minor_faults(me)
            self._keep(me, cpu, wait, steal, faults)
        return True

    def _keep(
        self, me: psutil.Process, cpu: float, wait: float | None, steal: float | None, faults: int | None
    ) -> None:
        """Add one timed round's readings (``stop`` read them with one listing of the tree)."""
        self.cpu_time_s += cpu
        if faults is not None and self._faults_start is not None:
            self.minor_faults = (self.minor_faults or 0) + faults - self._faults_start
        if wait is not None and self._wait_start is not None:
            self.cpu_wait_s = round((self.cpu_wait_s or 0.0) + max(wait - self._wait_start, 0.0), 9)
        if steal is not None and self._steal_start is not None:
            self.steal_s = round((self.steal_s or 0.0) + steal - self._steal_start, 6)
        self.rss_peak_bytes = max(self.rss_peak_bytes, tree_peak_rss_bytes(me))
        after = read_throttling(self.cgroup) if self.cgroup else None
        if self._throttle_start and after:
            self.throttled_periods = (self.throttled_periods or 0) + int(
                after["nr_throttled"] - self._throttle_start["nr_throttled"]
            )
            self.throttled_s = round(
                (self.throttled_s or 0.0) + after["throttled_s"] - self._throttle_start["throttled_s"], 6
            )

    def as_info(self) -> dict[str, Any]:
        """The extra_info keys this meter fills (docs/results-schema.md)."""
        return {
            "cpu_time_s": round(self.cpu_time_s, 9),
            "rss_peak_bytes": self.rss_peak_bytes or None,
            "throttled_periods": self.throttled_periods,
            "throttled_s": self.throttled_s,
            "minor_faults": self.minor_faults,
            "cpu_wait_s": self.cpu_wait_s,
            "steal_s": self.steal_s,
        }


@dataclass
class BatchRounds:
    """One batch per round through ``pool.map``, for ``benchmark.pedantic(setup, target, teardown)``.

    ``setup`` and ``teardown`` run outside the timed region: a :class:`RoundMeter` reads the tree's
    CPU time, throttling and peak RSS around each round (timed rounds only), and every answer of the
    round just run is checked, warm-up rounds included.

    With ``paired`` (a function that runs ``paired_tasks`` of the same tasks serially) the rounds are
    bracketed by serial probes (common/reference.py): one before the first timed round and one after
    each, each made of ``paired_warm`` (untimed: the first task after a pool round runs cold) and then
    ``paired`` timed; the times go to ``paired_samples`` (rounds + 1), their answers are checked.
    A probe and the rounds beside it are moments apart, so a slow phase of a shared host hits both.
    With ``round_warm`` (``round_warm_tasks`` tasks through the pool), every timed round follows an
    untimed warm batch, after the probe: the probe ran on a worker's CPU and left it cold
    (common/reference.py :func:`~common.reference.round_warm_tasks`); its answers are checked.

    With ``floor_s`` (the least wall time a right batch can take, e.g. ceil(N / W) sleeps), a round
    that ends sooner fails: the parent's clock checks what the task's own answer claims.
    """

    run_batch: Callable[[], list[Any]]
    check: Callable[[int, Any], bool]
    label: str
    tasks: int
    warmup_rounds: int = 0
    paired: Callable[[], list[Any]] | None = None
    paired_tasks: int = 0
    #: The untimed start of every probe: runs ``paired_warm_tasks`` serial tasks, answers checked.
    paired_warm: Callable[[], list[Any]] | None = None
    paired_warm_tasks: int = 0
    #: The untimed batch through the pool just before each timed round, and its task count.
    round_warm: Callable[[], list[Any]] | None = None
    round_warm_tasks: int = 0
    cgroup: CgroupCpu | None = None
    floor_s: float | None = None
    paired_floor_s: float | None = None
    paired_samples: list[float] = field(default_factory=list)
    #: Called before each probe: waits until the pool's own clean-up of the round (or the warm-up
    #: batch) is done (a dask cluster frees the round's results in this process's event loop, which
    #: would slow the probe; bench/cluster.py ``DaskExecutor.settle``) and returns the seconds waited.
    settle: Callable[[], float] | None = None
    settle_samples: list[float] = field(default_factory=list)
    #: The CPU time of each probe's timed tasks (this thread's): the CPU a task costs alone, at the
    #: moment of the rounds beside it (scripts/costs.py ``overhead_model``).
    paired_cpu_samples: list[float] = field(default_factory=list)
    #: The CPU each probe ran on (None where this thread's CPU cannot be chosen).
    probe_cpus: list[int | None] = field(default_factory=list)
    placer: ProbePlacer = field(default_factory=ProbePlacer)
    #: Whether each probe is moved to the CPU its rounds ran on (:class:`ProbePlacer`). Not for I/O-bound
    #: work: a thread held on one CPU waits there for every wake-up of its I/O, while the pool's threads
    #: and the serial case's batch wake where the scheduler puts them. On a 2-vCPU guest whose disk
    #: interrupts all go to CPU 1, io_file's probes held on CPU 0 took 6.5-6.7 ms a task (median, five
    #: runs) and on CPU 1 5.0-5.1 ms, the serial batch 5.0: the pools read up to 30 % "faster" against it.
    pin_probes: bool = True
    #: Each timed round's busy shares by CPU (:meth:`ProbePlacer.round_ended`; None where not read).
    round_cpu_shares: list[dict[int, float] | None] = field(default_factory=list)
    meter: RoundMeter = field(init=False)
    _results: list[Any] | None = field(default=None, repr=False)
    _started: float = 0.0

    def __post_init__(self) -> None:
        self.meter = RoundMeter(self.cgroup, self.warmup_rounds)

    @property
    def cpu_time_s(self) -> float:
        return self.meter.cpu_time_s

    @property
    def rounds_done(self) -> int:
        return self.meter.rounds_done

    def setup(self) -> None:
        self._results = None
        if self.paired is not None and self.meter.timing and not self.paired_samples:
            self.probe()  # the probe before the first timed round
        if self.round_warm is not None and self.meter.timing:
            self._results = self.round_warm()
            self.verify("warm batch before a timed round", self.round_warm_tasks)
            if self.settle is not None:
                self.settle()  # the pool's clean-up of the warm batch, before the clock starts
        self.placer.round_started()
        self.meter.start()

    def target(self) -> None:
        self._started = time.perf_counter()
        self._results = self.run_batch()

    def teardown(self) -> None:
        took = time.perf_counter() - self._started
        timed = self.meter.stop()
        shares = self.placer.round_ended()
        if timed:
            self.round_cpu_shares.append(shares)
        self._check_floor(took, self.floor_s)
        self.verify()
        if self.paired is not None and timed:
            self.probe()

    def probe(self) -> None:
        """One serial probe, on the CPU the rounds beside it ran on (:class:`ProbePlacer`): settle, the untimed
        warm task(s), then the timed ones; answers checked."""
        if self.settle is not None:
            self.settle_samples.append(self.settle())
        assert self.paired is not None
        with on_next_cpu(self.placer) if self.pin_probes else contextlib.nullcontext() as where:
            if self.paired_warm is not None:  # also pays the move to that CPU
                self._results = self.paired_warm()
                self.verify("warm-up of the serial probe", self.paired_warm_tasks)
            cpu = time.thread_time()
            started = time.perf_counter()
            self._results = self.paired()
            took = time.perf_counter() - started
            self.paired_cpu_samples.append(time.thread_time() - cpu)  # the probe's own CPU, this thread
        self.probe_cpus.append(where)
        self._check_floor(took, self.paired_floor_s, "serial probe paired with this case")
        self.verify("serial probe paired with this case", self.paired_tasks)
        self.paired_samples.append(took)

    def _check_floor(self, took: float, floor: float | None, what: str | None = None) -> None:
        if floor is not None and self._results is not None and took < floor:
            label = f"{self.label} ({what})" if what else self.label
            raise WrongAnswer(
                f"{label}: the batch ended after {took * 1e3:.2f} ms, sooner than its tasks can "
                f"({floor * 1e3:.2f} ms at least): the tasks did not do what their answers claim"
            )

    def verify(self, what: str | None = None, tasks: int | None = None) -> None:
        """Check every answer of the last round (also called once when pytest-benchmark is disabled)."""
        if self._results is None:
            return
        results = self._results
        label = f"{self.label} ({what})" if what else self.label
        expected = self.tasks if tasks is None else tasks
        if len(results) != expected:
            raise WrongAnswer(f"{label}: {len(results)} results for {expected} tasks")
        for i, result in enumerate(results):
            if not self.check(i, result):
                raise WrongAnswer(f"{label}: task {i} returned a wrong answer: {result!r:.200}")
        self._results = None
