"""Each scaling task at the next C-stack offset (workloads/stack.py): the serial reference's tasks and the
pools' alike, answers and exceptions unchanged, picklable into every kind of worker."""

from __future__ import annotations

import ctypes
import json
import pickle
import textwrap
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from bench import interpreters
from bench.config import OptionError, build_config
from bench.cpus import CpuInfo
from tests.clirun import run_module
from workloads import stack
from workloads.cpu_bound import count_primes
from workloads.registry import primes_below

SYSCALL = Path("/proc/thread-self/syscall")
linux_sp = pytest.mark.skipif(not SYSCALL.exists(), reason="reads the stack pointer from /proc/thread-self/syscall")


def stack_pointer(_: object = None) -> int:
    """The calling thread's stack pointer, as the kernel saw it entering the read (Linux)."""
    return int(SYSCALL.read_text().split()[-2], 16)


def test_every_offset_comes_once_in_each_cycle_and_neighbours_land_far_apart():
    step = stack.SPAN_BYTES // stack.OFFSETS
    for start in (0, 5, 63):
        cycle = [stack.offset_bytes(t) for t in range(start, start + stack.OFFSETS)]
        assert sorted(cycle) == [i * step for i in range(stack.OFFSETS)]
    gaps = [abs(stack.offset_bytes(t + 1) - stack.offset_bytes(t)) for t in range(stack.OFFSETS)]
    assert min(gaps) >= stack.SPAN_BYTES // 8  # a few tasks in a row spread over the span


@linux_sp
def test_a_rotated_call_runs_at_many_stack_positions_over_the_span_and_a_plain_one_at_one():
    assert stack.usable()
    rotated = stack.Rotated(stack_pointer)
    moved = [rotated(None) for _ in range(stack.OFFSETS)]
    plain = [stack_pointer() for _ in range(stack.OFFSETS)]
    assert len({sp % stack.SPAN_BYTES for sp in moved}) >= stack.OFFSETS * 3 // 4
    assert max(moved) - min(moved) >= stack.SPAN_BYTES * 7 // 8
    assert len(set(plain)) == 1


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _mallinfo2() -> Any:
    try:
        found = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    found.restype = _MallInfo2
    return found


_MALLINFO2 = _mallinfo2()  # looked up once: a lookup allocates


def _malloc_in_use(_: object = None) -> int:
    """Bytes glibc's malloc has handed out and not had back, over every arena (glibc >= 2.33)."""
    return int(_MALLINFO2().uordblks)


@pytest.mark.skipif(_MALLINFO2 is None, reason="reads glibc's mallinfo2")
def test_a_rotated_task_runs_with_no_malloc_block_of_the_call_held():
    """The padding's copies in the callback come from Python's small-object allocator: a task sees malloc's
    heap as a plain call leaves it. (One copy of up to 2 KiB held by ``malloc`` grew a pool thread's arena by
    a whole NumPy array in its second and third tasks; workloads/stack.py.)"""
    assert stack.usable()
    assert all(
        max(stack.pad_sizes(i * (stack.SPAN_BYTES // stack.OFFSETS))) <= stack.MAX_PAD_BYTES
        for i in range(stack.OFFSETS)
    )
    held = []
    for _ in range(2 * stack.OFFSETS):  # every offset twice, the largest padding among them
        before = _malloc_in_use()
        during = stack.call_at_next_offset(_malloc_in_use, None)
        held.append(during - before)
    assert max(held) < 256, sorted(held)[-5:]  # the old single argument: 2 KiB and more at the large offsets


def test_answers_and_exceptions_come_back_unchanged():
    rotated = stack.Rotated(count_primes)
    assert [rotated(n) for n in (10, 1000, 2000)] == [4, primes_below(1000), primes_below(2000)]

    def fails(_: object) -> None:
        raise ValueError("task failed")

    def interrupted(_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(ValueError, match="task failed"):
        stack.Rotated(fails)(None)
    with pytest.raises(KeyboardInterrupt):  # a Ctrl-C during a serial task still stops the run
        stack.Rotated(interrupted)(None)


def test_it_pickles_into_thread_and_spawned_process_pools():
    rotated = pickle.loads(pickle.dumps(stack.Rotated(count_primes)))
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(rotated, [3000, 4000])) == [primes_below(3000), primes_below(4000)]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        assert list(pool.map(rotated, [3000])) == [primes_below(3000)]


def test_where_the_stack_cannot_move_the_call_is_a_plain_one(monkeypatch):
    monkeypatch.setattr(stack, "_usable", False)
    seen = []
    stack.Rotated(lambda x: seen.append((x, threading.current_thread().name)))(7)
    assert seen == [(7, threading.current_thread().name)]


def test_the_option_defaults_to_rotate_and_a_bad_value_is_one_line():
    two = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)
    assert build_config({}, two).task_stack == "rotate"
    assert build_config({"task_stack": "fixed"}, two).task_stack == "fixed"
    with pytest.raises(OptionError, match=r"^--task-stack: unknown 'sideways'; choose rotate"):
        build_config({"task_stack": "sideways"}, two)


LOGGING_WORKLOAD = """
import multiprocessing, os, threading
from pathlib import Path
from workloads import Size, Workload

def stack_logged(n):
    sp = int(Path("/proc/thread-self/syscall").read_text().split()[-2], 16)
    if threading.current_thread() is not threading.main_thread():
        where = "thread"
    else:
        where = "suite" if multiprocessing.parent_process() is None else "process"
    with open(os.environ["STACK_LOG"], "a") as f:
        f.write(f"{where} {sp % 4096}\\n")
    return sum(range(n))

WORKLOADS = [Workload(name="stack_logged", func=stack_logged, kind="cpu-python", gil="holds",
    sizes={p: Size(200_000, 6, 1) for p in ("quick", "default", "full")})]
"""


@linux_sp
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["rotate", "fixed"])
def test_the_serial_reference_and_the_pools_tasks_take_the_same_walk_over_the_stack(tmp_path, mode):
    """The suite's own thread (the serial case and every probe), a pool's thread and a forked worker each run
    their tasks over many stack positions; with ``--task-stack fixed`` a pool thread runs all at one."""
    (tmp_path / "logged.py").write_text(textwrap.dedent(LOGGING_WORKLOAD))
    log = tmp_path / "stack.log"
    out = tmp_path / "out.json"
    done = run_module(
        *("pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", "quick", "--passes", "1"),
        *("--workload-file", str(tmp_path / "logged.py"), "--workloads", "stack_logged", "--cases", "scaling"),
        *("--executors", "serial,thread,process", "--workers", "1", "--sizes", "fixed", "--start-methods", "fork"),
        *("--task-stack", mode, "--benchmark-json", str(out)),
        env={"STACK_LOG": str(log)},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    by_side: dict[str, list[str]] = {"suite": [], "thread": [], "process": []}
    for line in log.read_text().splitlines():
        side, offset = line.split()
        by_side[side].append(offset)
    assert all(len(offsets) >= 4 for offsets in by_side.values()), by_side
    recorded = json.loads(out.read_text())["machine_info"]["poolbench"]["task_stack"]
    assert recorded["mode"] == mode and recorded["moved"] == (mode == "rotate")
    if mode == "rotate":
        # each task at a position of its own (a cycle holds stack.OFFSETS)
        for offsets in by_side.values():
            assert len(set(offsets)) >= min(len(offsets), stack.OFFSETS) * 3 // 4, by_side
    else:
        assert len(set(by_side["thread"])) <= 2, by_side  # a thread's own stack: one place (two call paths at most)


def _usable_here(_: object = None) -> bool:
    from workloads import stack as here  # noqa: PLC0415  (imported inside the subinterpreter)

    return here.usable()


@pytest.mark.skipif(not interpreters.available(), reason="needs InterpreterPoolExecutor (Python 3.14+)")
def test_in_a_subinterpreter_the_call_stays_plain_and_answers():
    from bench.interpreters import make  # noqa: PLC0415  (the suite's pool: the checkout on sys.path)

    with make(1) as pool:
        assert pool.submit(_usable_here).result() is False  # ctypes callbacks belong to the main interpreter
        assert list(pool.map(stack.Rotated(count_primes), [3000])) == [primes_below(3000)]
