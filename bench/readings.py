"""Readings of the process tree a case records besides wall time: CPU time, run-queue wait, steal, page
faults, memory (RSS, USS, the kernel's peak) and the cgroup's throttling.

The process tree is this process and every descendant (pool workers, a forkserver, the resource
tracker). Reading it costs a few /proc reads per process, so it is done between rounds, never
inside the timed region; the peak RSS comes from the kernel's own high-water mark.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

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


# --- waiting for a pool's own clean-up -------------------------------------------------------------------

#: :class:`Quiet`: threads count as quiet when they use no more CPU over a window of SETTLE_WINDOW_S than
#: IDLE_FACTOR × what they use idle (measured when the pool starts: the median of IDLE_WINDOWS windows; an
#: idle dask LocalCluster of two workers here uses about a tenth of a CPU on heartbeats, monitors and its
#: profiler), nor more than QUIET_SHARE of a CPU if idle is less; the wait lasts SETTLE_MAX_S at most.
SETTLE_WINDOW_S = 0.01
IDLE_WINDOWS = 5
IDLE_FACTOR = 1.5
QUIET_SHARE = 0.05
SETTLE_MAX_S = 0.5


def busy_ns(pids: list[int], skip_tid: int) -> int | None:
    """Nanoseconds on a CPU so far of every thread of ``pids`` but ``skip_tid``; None without schedstat."""
    read = [r for r in (_read_schedstat(pid, "/proc", skip_tid) for pid in pids) if r is not None]
    return sum(ran for ran, _ in read) if read else None


class Quiet:
    """The threads of some processes (a pool's own: its event loops, its workers), and a wait until they are
    back at the CPU use they had idle, for a pool that keeps working after ``map`` returns.

    Created when the pool is idle (it measures the idle level then); the caller's own thread is left out.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.idle_ns = self._idle_level()

    def _idle_level(self) -> float | None:
        """The threads' CPU (ns) per SETTLE_WINDOW_S while idle, the median of IDLE_WINDOWS windows; None
        without per-thread schedstat."""
        me = threading.get_native_id()
        last = busy_ns(self.pids, me)
        if last is None:
            return None
        used = []
        for _ in range(IDLE_WINDOWS):
            time.sleep(SETTLE_WINDOW_S)
            now = busy_ns(self.pids, me) or 0
            used.append(now - last)
            last = now
        return float(sorted(used)[len(used) // 2])

    def wait(self) -> float:
        """Wait until the threads are back at their idle level (windows of SETTLE_WINDOW_S, from each thread's
        schedstat), SETTLE_MAX_S at most; without per-thread schedstat (not Linux), SETTLE_WINDOW_S × 5.
        Returns the seconds waited."""
        started = time.perf_counter()
        me = threading.get_native_id()
        last = busy_ns(self.pids, me)
        if last is None or self.idle_ns is None:
            time.sleep(SETTLE_WINDOW_S * 5)
            return time.perf_counter() - started
        quiet = max(QUIET_SHARE * SETTLE_WINDOW_S * 1e9, IDLE_FACTOR * self.idle_ns)
        while time.perf_counter() - started < SETTLE_MAX_S:
            time.sleep(SETTLE_WINDOW_S)
            now = busy_ns(self.pids, me) or 0
            if now - last <= quiet:
                break
            last = now
        return time.perf_counter() - started

    @property
    def idle_share(self) -> float | None:
        """The CPU the threads used idle, as a share of one CPU."""
        return None if self.idle_ns is None else round(self.idle_ns / (SETTLE_WINDOW_S * 1e9), 3)
