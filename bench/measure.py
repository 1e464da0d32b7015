"""What a case records besides wall time: CPU time and memory of the process tree, and throttling.

The process tree is this process and every descendant (pool workers, a forkserver, the resource
tracker). Reading it costs a few /proc reads per process, so it is done between rounds, never
inside the timed region; the peak RSS comes from the kernel's own high-water mark.
"""

from __future__ import annotations

import itertools
import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import stopping
from bench.cpus import CgroupCpu, read_throttling

#: The tree listed once for a whole reading (:func:`one_listing`): psutil finds children by reading
#: every process's /proc entry, about 2 ms per listing here, and a reading asks five times. Each
#: process's schedstat sums are read once per reading too, for CPU time and wait alike.
_listed: list[psutil.Process] | None = None
_stats: dict[tuple[int, str], tuple[int, int] | None] | None = None


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    if _listed is not None and _listed[0].pid == proc.pid:
        return _listed
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


@contextmanager
def one_listing(proc: psutil.Process) -> Iterator[None]:
    """Within the block, every reading of ``proc``'s tree uses one listing of its processes."""
    global _listed, _stats
    _listed = None
    _listed = _tree(proc)
    _stats = {}
    try:
        yield
    finally:
        _listed, _stats = None, None


def _task_schedstat(pid: int, root: str = "/proc") -> tuple[int, int] | None:
    """(CPU ns, run-queue wait ns) summed over every live thread of ``pid``, from each ``task/TID/schedstat``.

    The scheduler's own counters, in nanoseconds: the first field is the time a thread ran
    (``sum_exec_runtime``), the second the time it was runnable but waiting for a CPU (``run_delay``:
    another thread or program had the CPU). None where the files are missing (not Linux, or a kernel
    without CONFIG_SCHED_INFO) or the process is gone.
    """
    if _stats is not None and (pid, root) in _stats:
        return _stats[(pid, root)]
    result = _read_schedstat(pid, root)
    if _stats is not None:
        _stats[(pid, root)] = result
    return result


def _read_schedstat(pid: int, root: str, skip_tid: int | None = None) -> tuple[int, int] | None:
    """(CPU ns, wait ns) of every live thread of ``pid`` but ``skip_tid``, uncached; None without the files."""
    ran = waited = 0
    found = False
    try:
        tids = os.listdir(f"{root}/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        if skip_tid is not None and tid == str(skip_tid):
            continue
        try:
            with open(f"{root}/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
            ran += int(fields[0])
            waited += int(fields[1])
            found = True
        except (OSError, ValueError, IndexError):  # a thread that ended between listing and reading
            continue
    return (ran, waited) if found else None


def _task_ns(pid: int, root: str = "/proc") -> int | None:
    """CPU nanoseconds of every live thread of ``pid`` (:func:`_task_schedstat`'s first field)."""
    both = _task_schedstat(pid, root)
    return None if both is None else both[0]


def _task_wait_ns(pid: int, root: str = "/proc") -> int | None:
    """Run-queue wait of every live thread of ``pid``, nanoseconds (:func:`_task_schedstat`'s second field)."""
    both = _task_schedstat(pid, root)
    return None if both is None else both[1]


def _precise_clock_works() -> bool:
    return _task_ns(os.getpid()) is not None and time.get_clock_info("process_time").resolution <= 1e-6


#: Where ``cpu_time_s`` comes from, chosen once per run and recorded in machine_info
#: (``cpu_time_source``, ``cpu_time_resolution_s``). psutil reads ``/proc/PID/stat``, whose CPU times
#: are whole clock ticks (10 ms at USER_HZ=100): a quick-profile round of about 30 ms would read as
#: 0, 10, 20, 30 or 40 ms per process. The scheduler's counters are exact to the nanosecond.
CPU_TIME_SOURCE = "schedstat" if _precise_clock_works() else "ticks"
CPU_TIME_RESOLUTION_S = 1e-9 if CPU_TIME_SOURCE == "schedstat" else 1.0 / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(proc: psutil.Process | None = None) -> float:
    """User + system CPU seconds of the whole tree, reaped children included.

    With the precise source: this process from ``time.process_time()`` (every thread, ended ones
    included) plus its reaped children from ``getrusage`` (microseconds); each other live process
    from its threads' schedstat counters, plus its own reaped children (clock ticks: a forkserver's
    finished workers, rare inside a round). Otherwise psutil's tick-based times throughout.
    """
    proc = proc or psutil.Process()
    if CPU_TIME_SOURCE != "schedstat":
        return _tree_cpu_ticks(proc)
    total = 0.0
    for p in _tree(proc):
        if p.pid == os.getpid():
            reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
            total += time.process_time() + reaped.ru_utime + reaped.ru_stime
            continue
        ns = _task_ns(p.pid)
        if ns is None:  # gone between listing and reading: its time moves to its parent's reaped children
            continue
        total += ns / 1e9
        try:
            t = p.cpu_times()
            total += t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


#: Where ``cpu_wait_s`` comes from: the scheduler's per-thread run-queue wait (``schedstat``), or
#: None on a kernel that does not keep it; chosen once per run and recorded (``cpu_wait_source``).
WAIT_SOURCE = "schedstat" if _task_wait_ns(os.getpid()) is not None else None


def tree_wait_seconds(proc: psutil.Process | None = None, root: str = "/proc") -> float | None:
    """Seconds the tree's live threads spent runnable but waiting for a CPU, summed; None where not kept.

    A thread that waits on a lock, the GIL or I/O sleeps and does not count: only a thread that was
    ready to run while the CPUs were taken. On an idle machine a pool of W <= C busy workers waits
    next to nothing; beside another program, each waits for its share of the CPUs. Threads that ended
    are not counted (the pools a case times keep their workers for the whole case).
    """
    proc = proc or psutil.Process()
    total, found = 0, False
    for p in _tree(proc):
        ns = _task_wait_ns(p.pid, root)
        if ns is not None:
            total += ns
            found = True
    return total / 1e9 if found else None


def host_steal_seconds(root: str = "/proc") -> float | None:
    """CPU time the hypervisor gave to other guests while this VM's CPUs wanted it, all CPUs, since boot.

    The ``steal`` column (the 8th number) of the ``cpu`` line of /proc/stat, in clock ticks; None
    where the kernel does not report it (not Linux, or not a VM-aware kernel).
    """
    try:
        with open(f"{root}/stat") as f:
            first = f.readline().split()
    except OSError:
        return None
    if len(first) < 9 or first[0] != "cpu":
        return None
    try:
        return int(first[8]) / os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return None


def _tree_cpu_ticks(proc: psutil.Process) -> float:
    total = 0.0
    for p in _tree(proc):
        try:
            t = p.cpu_times()
        except psutil.Error:  # a worker that exited between listing and reading
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def tree_minor_faults(proc: psutil.Process | None = None) -> int | None:
    """Minor page faults of the whole tree so far, reaped children included; None off Linux.

    A minor fault maps a page the kernel already has (a fresh zero page, say): what a process pays
    each time glibc hands a large array back to the kernel and asks again (docs/guide.md, "The allocator
    is pinned"). This process from ``getrusage`` (every thread), the others from /proc/PID/stat.
    """
    proc = proc or psutil.Process()
    total = 0
    for p in _tree(proc):
        if p.pid == os.getpid():
            own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            total += own.ru_minflt + reaped.ru_minflt
            continue
        fields = _stat_fields(p.pid)
        if fields is None:
            if not os.path.isdir("/proc"):
                return None
            continue  # gone between listing and reading
        total += int(fields[7]) + int(fields[8])  # minflt, cminflt (fields 10 and 11 of stat(5))
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


#: The next CPU a serial probe runs on: a rotation over this process's CPUs for the whole run.
_probe_turn = itertools.count()


@contextmanager
def on_next_cpu() -> Iterator[int | None]:
    """Run the block in this thread on the next of this process's CPUs in turn, then give the thread back
    every CPU it had; yields that CPU (None off Linux, or when the thread's CPUs cannot be set).

    A pool's round runs on every CPU it may use, so its throughput is the sum of their speeds; a
    probe left where the scheduler put the suite's thread measures that one CPU. Measured on a
    2-vCPU AMD EPYC guest, the two vCPUs ran the same task 8 % apart over 30 s (10.1 vs 10.9 ms,
    each pinned, both busy) and 1.5× apart in phases of a fraction of a second: a reference taken
    on the slower one reads every pool above its physical limit, on the faster one below it. In
    turn, the probes of a run sample every CPU alike, as the pool's rounds do.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        yield None
        return
    cpu = allowed[next(_probe_turn) % len(allowed)]
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
    #: moment of the rounds beside it (scripts/metrics.py ``overhead_model``).
    paired_cpu_samples: list[float] = field(default_factory=list)
    #: The CPU each probe ran on (None where this thread's CPU cannot be chosen).
    probe_cpus: list[int | None] = field(default_factory=list)
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
        self.meter.start()

    def target(self) -> None:
        self._started = time.perf_counter()
        self._results = self.run_batch()

    def teardown(self) -> None:
        took = time.perf_counter() - self._started
        timed = self.meter.stop()
        self._check_floor(took, self.floor_s)
        self.verify()
        if self.paired is not None and timed:
            self.probe()

    def probe(self) -> None:
        """One serial probe, on the next CPU of the rotation (:func:`on_next_cpu`): settle, the untimed warm
        task(s), then the timed ones; answers checked."""
        if self.settle is not None:
            self.settle_samples.append(self.settle())
        assert self.paired is not None
        with on_next_cpu() as where:
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
