"""Stopping within a bounded time on SIGINT or SIGTERM, whatever the suite is doing at that moment.

::

    SIGINT / SIGTERM (first) ──► KeyboardInterrupt in the main thread: the case stops, its pool is
                                 terminated (bench.executors.closing), pytest-benchmark saves the cases
                                 that finished; the deadline watchdog starts
    a later signal, or any signal inside `deferred()` (saving, a journal line) ──► noted, not raised:
                                 what is being written must be written whole
    the KeyboardInterrupt raised where Python swallows exceptions (a weakref callback such as
    multiprocessing's Finalize, a __del__) ──► caught by the unraisable hook: no traceback is
                                 printed, and it is raised again at the next checkpoint()
    a stop held (a fork) or swallowed that no checkpoint() raises within REDELIVER_AFTER_S, as when
    the main thread waits on a hung task ──► delivered again to the main thread (_redeliver)
    end of the session (pytest_unconfigure) ──► after an interruption, or with threads left that cannot
                                 be joined: kill every descendant process, then os._exit(status)
    watchdog, STOP_DEADLINE_S after the first signal ──► the same kill and os._exit(2); every finished
                                 case is already in the journal (fsync'd as each case finished)

Why os._exit and not a normal interpreter exit: ``concurrent.futures`` joins every process pool's
executor-manager thread at exit (``_python_exit``), and multiprocessing joins queue-feeder threads.
After workers are killed mid-message, the manager thread can sit forever in ``Connection.recv`` on a
half-written result (the parent holds the pipe's write end too, so no EOF ever comes) and the feeder
in a write to a pipe no one reads. Neither thread can be interrupted or joined, and neither owns
anything worth saving: results are on disk before this point. So the exit skips the interpreter's
teardown instead of trying to unpick the pool's internals, which differ between Python versions.

The suite's process is also made a child subreaper (Linux): a process orphaned under it, such as the
pool worker of a crash probe killed mid-case, is reparented to the suite instead of to init, so the
final kill finds it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import multiprocessing.process
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from common.environment import STATUS_FILE_ENV
from common.files import write_atomic

#: Seconds from the first signal to a forced exit. Stopping normally takes well under a second
#: (docs/faults.md); this bounds the worst case below `docker stop`'s 10 s grace, after which
#: the engine sends SIGKILL and nothing can be saved any more.
STOP_DEADLINE_S = 8.0

#: Seconds to wait for killed processes to be gone before exiting anyway (a process in
#: uninterruptible sleep dies when the kernel lets it; waiting longer would not save anything).
REAP_WAIT_S = 2.0

#: Seconds a stop that was held (a fork under way) or swallowed (a finalizer) may wait, once nothing
#: holds it any more, for the run's next checkpoint() before it is sent to the main thread again. The
#: next checkpoint is a round or a case away, or never: a held SIGTERM, as the main thread started the
#: last worker of a pool whose tasks then hung, waited in that wait for the watchdog, which exits
#: without saving (tests/test_faults.py failed so once in CI; the mechanism in tests/test_interrupts.py).
REDELIVER_AFTER_S = 0.5
_REDELIVER_POLL_S = 0.05

_PR_SET_CHILD_SUBREAPER = 36  # prctl option, from linux/prctl.h
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class _State:
    def __init__(self) -> None:
        self.signal: str | None = None  # name of the first stop signal received
        self.defer_depth = 0  # > 0 inside deferred(): signals are noted, not raised
        self.pending = False  # a signal arrived inside deferred() and was not raised yet
        self.where_saved: Callable[[], str] = lambda: ""
        self.watchdog: threading.Timer | None = None
        self.say: Callable[[str], None] = _to_stderr
        self.redelivering = False  # the next signal is _redeliver's own, not the user's


STATE = _State()


def _say(text: str) -> None:
    with contextlib.suppress(Exception):  # a message must never stop the stopping
        STATE.say(f"poolbench: {text}")


def _record_stop(name: str) -> None:
    """Write ``{"stopped_by": name}`` to the status file the run was given (STATUS_FILE_ENV), if any."""
    target = os.environ.get(STATUS_FILE_ENV)
    if target:
        with contextlib.suppress(Exception):  # a status file must never stop the stopping
            write_atomic(Path(target), json.dumps({"stopped_by": name}).encode() + b"\n")


def _on_signal(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    if STATE.signal is None:
        STATE.signal = name
        _record_stop(name)
        _say(f"{name}: stopping the current case and saving the finished ones (at most {STOP_DEADLINE_S:g} s)")
        STATE.watchdog = threading.Timer(STOP_DEADLINE_S, _deadline)
        STATE.watchdog.daemon = True
        STATE.watchdog.start()
        threading.Thread(target=_redeliver, args=(signum,), name="poolbench-redeliver", daemon=True).start()
        if _holding():
            STATE.pending = True
            return
        raise KeyboardInterrupt(f"signal {name}")
    if STATE.redelivering:
        STATE.redelivering = False
        if STATE.pending and not _holding():
            STATE.pending = False
            raise KeyboardInterrupt(f"signal {STATE.signal}")
        return  # held again meanwhile (another fork): _redeliver tries again
    _say(f"{name} again: already stopping")


def _redeliver(signum: int) -> None:
    """Send a pending stop to the main thread again once nothing has held it for REDELIVER_AFTER_S.

    A held or swallowed stop is raised at the run's next :func:`checkpoint`; this covers the main
    thread that never reaches one, blocked in a wait (on a hung task, with no case timeout). A real
    signal (``pthread_kill``) wakes that wait, where a flag alone would not; the handler raises the
    stop there as a first signal would. Polls for the rest of the process's life (a daemon thread,
    started by the first signal); after :func:`hold_signals` (the session saving) nothing is sent.
    """
    main = threading.main_thread().ident
    free_since: float | None = None
    while True:
        time.sleep(_REDELIVER_POLL_S)
        if not STATE.pending or _holding() or main is None:
            free_since = None
            continue
        now = time.monotonic()
        if free_since is None:
            free_since = now
        elif now - free_since >= REDELIVER_AFTER_S:
            free_since = None
            STATE.redelivering = True
            try:
                signal.pthread_kill(main, signum)
            except (OSError, ValueError):  # not sent: a user's next signal must not be taken for this one
                STATE.redelivering = False


def _deadline() -> None:
    where = STATE.where_saved()
    _say(
        f"not stopped {STOP_DEADLINE_S:g} s after {STATE.signal}; killing the run's processes and exiting"
        + (f"; the finished cases are in {where}" if where else "")
    )
    kill_descendants()
    _hard_exit(2)


def install(where_saved: Callable[[], str], say: Callable[[str], None] = _to_stderr) -> None:
    """Take over SIGINT and SIGTERM (main thread only), and become the child subreaper of the run.

    ``where_saved`` names the journal for the watchdog's last message; ``say`` shows one line to the
    user (pytest's output capture would swallow a plain write to stderr).
    """
    STATE.where_saved = where_saved
    STATE.say = say
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)
    # Registered after logging's hooks (pytest imports logging first), so `before` runs first and
    # `after_in_parent` last: the whole fork, their hooks included, holds signals. Both are C
    # callables (list.append, list.pop): no Python frame, so no signal handler can run inside them.
    os.register_at_fork(
        before=functools.partial(_FORKS.append, None), after_in_parent=_FORKS.pop, after_in_child=_in_forked_child
    )
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    refuse_new_processes()


class StoppingError(RuntimeError):
    """A background thread asked for a new process after a stop signal."""


def refuse_new_processes() -> None:
    """After a stop signal, a background thread of this process starts no new multiprocessing process.

    A dask nanny (it lives in this process) starts or restarts its worker process from a thread of
    its own; one started while the run stops is still in its spawn bootstrap, reading its
    preparation data from this process, when this process exits, and prints ``EOFError: Ran out of
    input`` with a traceback (seen in the interruption sweep: dask, SIGINT mid-round and SIGTERM at
    teardown). The main thread is left alone: after a stop it starts nothing anyway, and its own
    path through the stop must stay the KeyboardInterrupt.

    While the main thread starts a process, a stop signal is held as during a fork (raised at the next
    :func:`checkpoint`, a round or a case later, or sent again by :func:`_redeliver` if none comes):
    under ``forkserver`` the start is a request written to the fork server, and a KeyboardInterrupt
    raised halfway through it cut the message, so the server failed reading it and printed a
    traceback (``forkserver.py`` ``recvfds``; seen once in the interruption sweep,
    scaling-forkserver-late-SIGINT); raised as ``start`` returned, it would leave a started worker
    the pool has not yet recorded.
    """
    base = multiprocessing.process.BaseProcess
    if getattr(base.start, "_poolbench", False):
        return
    original = base.start

    def start(self: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            if STATE.signal is not None:
                raise StoppingError(f"poolbench is stopping ({STATE.signal}): no new process")
            original(self)
            return
        _FORKS.append(None)  # list.append and list.pop: C calls, no frame a handler could interrupt
        try:
            original(self)
        finally:
            _FORKS.pop()

    start._poolbench = True  # type: ignore[attr-defined]
    base.start = start  # type: ignore[method-assign]


#: One entry per fork under way in this process (see install), and per process the main thread is
#: starting (refuse_new_processes). A stop signal that arrives then is held, not raised: an exception
#: raised inside an at-fork hook (logging's, say) is swallowed ("Exception ignored in
#: _releaseLock"), and the Ctrl-C would be lost.
_FORKS: list[None] = []


def _holding() -> bool:
    return STATE.defer_depth > 0 or bool(_FORKS)


def _is_our_stop(exc: BaseException | None) -> bool:
    return isinstance(exc, KeyboardInterrupt) and STATE.signal is not None and exc.args == (f"signal {STATE.signal}",)


def keep_swallowed_stops() -> None:
    """Route a stop that Python swallowed back to the run, without a traceback.

    A signal handler's exception raised inside a weakref callback or a ``__del__`` (multiprocessing
    closes a finished pool's pipes in one, so a Ctrl-C as a pool shuts down can land there) is not
    propagated: it goes to ``sys.unraisablehook``, which prints "Exception ignored in ..." and a
    traceback (pytest turns it into a warning). This hook recognises the stop, keeps it pending
    and prints nothing; :func:`checkpoint` raises it again before any new work, and the session's
    exit status is 2 whatever happens (:func:`exit_status_for`). Any other unraisable exception
    goes to the hook that was there before.

    Called once pytest's own hook is in place (pytest_sessionstart), so that this one wraps it.
    """
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if _is_our_stop(unraisable.exc_value):
            STATE.pending = True
            return
        previous(unraisable)

    sys.unraisablehook = hook


def checkpoint() -> None:
    """Raise the stop signal now if one came and the run is still starting new work.

    Called where the suite starts a case, a round or a pool's warm-up: after a stop signal none of
    these should happen, so reaching one means the signal was held (during a fork) or swallowed
    (raised inside a hook that ignores exceptions), and it is raised again here.
    """
    if STATE.signal is not None and not _holding():
        STATE.pending = False
        raise KeyboardInterrupt(f"signal {STATE.signal}")


def _in_forked_child() -> None:
    # A forked pool worker must not run the suite's stop logic (a copy of it, with no watchdog
    # thread), and must not die of a terminal's Ctrl-C, which reaches the whole process group,
    # printing a traceback each: the suite stops its workers itself. SIGTERM keeps its default.
    global STATE
    STATE = _State()
    _FORKS.clear()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block that a stop signal does not cut short (saving a file, writing a journal line).

    A signal received inside is raised as KeyboardInterrupt when the outermost block ends, unless
    the session is already finishing, in which case it stays only noted (see :func:`finish`).
    """
    STATE.defer_depth += 1
    try:
        yield
    finally:
        STATE.defer_depth -= 1
    if STATE.defer_depth == 0 and STATE.pending:
        STATE.pending = False
        raise KeyboardInterrupt(f"signal {STATE.signal}")


def hold_signals() -> None:
    """From now on (the session is saving), signals are noted and never raised."""
    STATE.defer_depth += 1


def _resource_tracker_pid() -> int | None:
    # multiprocessing's resource tracker unlinks the named semaphores of spawn and forkserver pools
    # when its pipe closes, that is when this process exits; killing it would leak them in /dev/shm.
    try:
        from multiprocessing import resource_tracker  # noqa: PLC0415

        return resource_tracker._resource_tracker._pid
    except (ImportError, AttributeError):
        return None


def kill_descendants() -> int:
    """SIGKILL every live descendant (pool workers, forkservers, probes, orphans reparented here).

    The tree is frozen first (SIGSTOP), then killed: a stopped process can neither fork another
    nor, when its parent dies first, wake up and print a traceback (a worker process still in its
    bootstrap reads a closed pipe as "EOFError: Ran out of input"). The resource tracker is spared:
    it exits by itself once this process is gone. Returns how many processes were killed.
    """
    me = psutil.Process()
    spare = _resource_tracker_pid()
    killed: list[psutil.Process] = []
    for _ in range(3):  # a process forked between listing and freezing is caught by the next pass
        try:
            found = [p for p in me.children(recursive=True) if p.pid != spare]
        except psutil.Error:
            break
        found = [p for p in found if p not in killed]
        if not found:
            break
        for proc in found:
            with contextlib.suppress(psutil.Error):
                proc.suspend()
        killed += found
    for proc in killed:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(killed, timeout=REAP_WAIT_S)
    with contextlib.suppress(ChildProcessError, OSError):
        while os.waitpid(-1, os.WNOHANG)[0]:  # reap zombies of orphans adopted as subreaper
            pass
    return len(killed)


def threads_left() -> list[threading.Thread]:
    """Threads that the interpreter's exit would wait for (non-daemon, still alive, not this one)."""
    me = threading.current_thread()
    return [t for t in threading.enumerate() if t is not me and t.is_alive() and not t.daemon]


def _hard_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def finish(status: int) -> None:
    """End of session, results saved: exit now if a signal came or threads are left that cannot be joined.

    Returns (for the normal interpreter exit) only after an uneventful run.
    """
    left = threads_left()
    if STATE.signal is None and not left:
        return
    kill_descendants()
    _hard_exit(2 if STATE.signal is not None else status)


def exit_status_for(status: Any) -> int:
    """The status a session ends with: 2 (interrupted) once a stop signal came, whatever else happened."""
    return 2 if STATE.signal is not None else int(status)


class QuietAfterStop(logging.Filter):
    """Drops a logger's reports once a stop signal has arrived.

    A terminal's Ctrl-C reaches the whole process group, a pool's worker processes included: a dask
    cluster starting at that moment fails to start a worker, and asyncio reports the start-up task's
    exception ("Task exception was never retrieved", with a traceback) when the task is collected,
    after the run has already said in one line that it is stopping. That report is the stop's own
    echo, not news; before a stop, every report passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return STATE.signal is None


def _quiet(filterer: logging.Filterer) -> None:
    if not any(isinstance(f, QuietAfterStop) for f in filterer.filters):
        filterer.addFilter(QuietAfterStop())


def quiet_after_stop(loggers: tuple[str, ...], handlers_of: tuple[str, ...] = ()) -> None:
    """After a stop signal, drop what ``loggers`` report, and what the handlers of ``handlers_of`` pass
    (a library's own handlers, which the records of all its child loggers go through); once each."""
    for name in loggers:
        _quiet(logging.getLogger(name))
    for name in handlers_of:
        for handler in logging.getLogger(name).handlers:
            _quiet(handler)


@contextlib.contextmanager
def children_without_sigint() -> Iterator[None]:
    """SIGINT blocked in the calling thread while it starts worker processes (a dask LocalCluster's).

    A terminal's Ctrl-C reaches the whole process group. A worker process that receives it while
    still importing prints its own traceback (the suite's run had already said in one line that it
    was stopping), and the suite stops its workers itself anyway. A signal mask survives fork and
    exec, and threads created meanwhile inherit it too: the worker processes start, and are
    restarted by whoever watches them, with SIGINT blocked (seen in /proc/PID/status: SigBlk 0x2).
    Here, a Ctrl-C that comes meanwhile waits until the workers are up (a second or two) and is
    then raised as usual.

    multiprocessing's resource tracker, when a thread first starts it, unblocks SIGINT in that
    thread (``signal.pthread_sigmask(SIG_UNBLOCK, ...)`` after spawning it, not a restore): started
    here first, before the block, it leaves the new threads as they are.
    """
    from multiprocessing import resource_tracker  # noqa: PLC0415

    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
