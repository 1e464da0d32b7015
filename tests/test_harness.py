"""The measuring pieces: the serial executor, answer checks per round, CPU accounting, memory reads."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from bench import executors, measure, readings
from bench.measure import BatchRounds, WrongAnswer


def test_serial_executor_runs_in_the_calling_thread_and_keeps_exceptions():
    pool = executors.SerialExecutor()
    assert list(pool.map(pow, [2, 3], [3, 2])) == [8, 9]
    assert pool.submit(os.getpid).result() == os.getpid()
    failed = pool.submit(int, "x")
    assert isinstance(failed.exception(), ValueError)


@pytest.mark.parametrize("kind", ["serial", "thread", "process"])
def test_warm_pool_starts_every_worker_and_limits_blas(kind):
    with executors.warm_pool(kind, 2, "fork" if kind == "process" else None, blas_threads=1) as pool:
        pids = {pool.submit(os.getpid).result() for _ in range(4)}
        assert executors.blas_threads_of(pool, kind) == 1
        if kind == "process":
            children = {p.pid for p in psutil.Process().children(recursive=True)}
            assert pids <= children
            assert len(executors.warm_up(pool, 2)) == 2
        else:
            assert pids == {os.getpid()}


def run_rounds(batch: BatchRounds, rounds: int) -> None:
    """What benchmark.pedantic does with setup/target/teardown, without pytest-benchmark."""
    for _ in range(rounds):
        batch.setup()
        batch.target()
        batch.teardown()


def test_batch_rounds_check_every_answer_and_fail_on_a_wrong_one():
    answers = iter([[1, 2], [1, 2], [1, 99]])
    batch = BatchRounds(lambda: next(answers), lambda i, r: r == i + 1, label="demo", tasks=2)
    run_rounds(batch, 2)
    with pytest.raises(WrongAnswer, match="demo: task 1 returned a wrong answer: 99"):
        run_rounds(batch, 1)


def test_batch_rounds_fail_on_missing_results():
    batch = BatchRounds(lambda: [1], lambda i, r: True, label="short", tasks=2)
    with pytest.raises(WrongAnswer, match="1 results for 2 tasks"):
        run_rounds(batch, 1)


def test_batch_rounds_leave_warmup_cpu_out(monkeypatch):
    # Scripted CPU readings, one pair per round: two warm-up rounds of 1 s each, then a timed one of 0.5 s.
    # Warm-up rounds read nothing at all, so only the timed round's two readings are scripted.
    scripted = iter([2.0, 2.5])
    monkeypatch.setattr(measure, "tree_cpu_seconds", lambda proc=None: next(scripted))
    warm = BatchRounds(lambda: [0], lambda i, r: True, label="w", tasks=1, warmup_rounds=2)
    run_rounds(warm, 2)
    assert warm.cpu_time_s == 0.0
    run_rounds(warm, 1)
    assert warm.cpu_time_s == pytest.approx(0.5)
    assert warm.rounds_done == 3


def test_verify_without_rounds_checks_the_last_result():
    batch = BatchRounds(lambda: [0], lambda i, r: r == 1, label="disabled", tasks=1)
    batch.target()  # what pytest-benchmark does when disabled: target only
    with pytest.raises(WrongAnswer):
        batch.verify()


def test_tree_readings_are_this_process_and_its_descendants():
    # (how the tree's CPU time is put together: tests/test_measure.py, with fixed clock readings)
    own = psutil.Process().memory_info().rss
    alone, size = readings.tree_rss_bytes(), readings.tree_size()
    code = "import sys; b = bytearray(96 << 20); b[::4096] = b'x' * len(b[::4096]); sys.stdout.write('ok\\n');"
    code += " sys.stdout.flush(); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ok\n"  # its 96 MiB touched
        child_rss = psutil.Process(child.pid).memory_info().rss
        assert readings.tree_size() == size + 1
        with_child = readings.tree_rss_bytes()
        assert with_child - alone == pytest.approx(child_rss, rel=0.25)  # the child's memory, counted once
    finally:
        child.stdin.close()
        child.wait(10)
        child.stdout.close()
    assert readings.tree_size() == size
    assert alone >= own
    with readings.PeakRss() as peak:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert peak.peak >= len(block)


def test_the_suites_blas_cap_is_set_once_and_a_forked_worker_sets_none(monkeypatch):
    # issue #30: a BLAS count set after a fork starts an OpenBLAS thread that spins beside the next probe;
    # so the suite's process keeps its cap (set at most once), and a forked worker that has it sets nothing
    from bench import workers  # noqa: PLC0415

    pytest.importorskip("numpy")
    calls = []
    real = executors.threadpool_limits

    def counting(*args, **kwargs):
        calls.append(kwargs.get("limits"))
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "threadpool_limits", counting)
    monkeypatch.setattr(workers, "threadpool_limits", counting)
    for _ in range(3):
        with executors.blas_limit_here("serial", 1):
            pass
    with executors.blas_limit_here("thread", 1):
        pass
    assert len(calls) <= 1  # once at most (none where the count was 1 already) ...
    assert workers.blas_runs(1)  # ... and kept after the block
    workers.apply_limits(workers.Setup(blas_threads=1))  # a worker forked from here: the count holds
    assert len(calls) <= 1
