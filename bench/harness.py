"""The measuring loop shared by the batch cases (scaling, dispatch, payload), and the schema of extra_info.

Every case records the same core keys in ``benchmark.extra_info`` (docs/results-schema.md),
so the scripts read one shape whatever the case.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import workloads
from bench.backend import backend
from bench.cases import Case
from bench.config import SuiteConfig
from bench.cpus import read_memory_cgroup
from bench.executors import blas_limit_here, blas_threads_of, make_executor, terminate, warm_pool
from bench.measure import BatchRounds, RoundMeter, WrongAnswer
from common import reference
from common.schema import SCHEMA_VERSION
from workloads.stack import Rotated


def case_info(case: Case, suite: SuiteConfig) -> dict[str, Any]:
    """The keys every case records, whatever it measures; the case adds what it measured."""
    record = workloads.get(case.workload)
    return {
        "schema_version": SCHEMA_VERSION,
        "case": case.case,
        "workload": case.workload,
        "kind": record.kind,
        "gil": record.gil,
        "executor": case.executor,
        "start_method": case.variant,
        "workers": case.workers,
        "chunksize": case.chunksize,
        "profile": suite.profile,
        "effective_cpus": suite.cpu.effective_cpus,
        "recommended_workers": suite.cpu.recommended_workers,
        "tasks": None,
        "task_param": None,
        "task_s": None,
        "pass": case.pass_no,
        "passes": 1,
        "blas_threads": None,
        "rss_peak_bytes": None,
        "cpu_time_s": None,
        "throttled_periods": None,
        "throttled_s": None,
        "minor_faults": None,
        "cpu_wait_s": None,
        "steal_s": None,
    }


def _pool_args(case: Case, suite: SuiteConfig) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A case's pool as make_executor and warm_pool take it: its executor, size and variant, the suite's settings."""
    args = (case.executor, case.workers, case.variant, suite.blas_threads, suite.malloc)
    return args, {"state": suite.state(case.executor)}


def case_pool(case: Case, suite: SuiteConfig) -> contextlib.AbstractContextManager[Executor]:
    """The warm pool a throughput case runs on (every worker started)."""
    args, kwargs = _pool_args(case, suite)
    return warm_pool(*args, **kwargs)


def new_case_pool(case: Case, suite: SuiteConfig) -> Executor:
    """A new pool for the case, no worker started yet (the memory case counts what starting them costs)."""
    args, kwargs = _pool_args(case, suite)
    return make_executor(*args, **kwargs)


class WorkerDied(RuntimeError):
    """A pool worker died under a case; the message says why, as far as the kernel tells."""


@contextmanager
def explain_dead_workers(case: Case) -> Iterator[None]:
    """Turn BrokenProcessPool into a failure that names the likely reason (the OOM killer, or a crash)."""
    memory = read_memory_cgroup()
    before = memory.oom_kills()
    try:
        yield
    except BrokenProcessPool as exc:
        after = memory.oom_kills()
        if before is not None and after is not None and after > before:
            limit = memory.limit_bytes()
            where = f"the memory limit ({limit / 2**20:.0f} MiB)" if limit else "memory"
            raise WorkerDied(
                f"{case.id}: a worker was killed by the out-of-memory killer ({after - before} kill(s)) after "
                f"running out of {where}; give the container more memory (POOLBENCH_MEMORY) or fewer workers"
            ) from exc
        raise WorkerDied(f"{case.id}: a worker process died abruptly (a crash or a kill): {exc}") from exc


def run_batches(
    benchmark: Any,
    suite: SuiteConfig,
    case: Case,
    pool: Executor,
    *,
    func: Callable[[Any], Any],
    args: Sequence[Any],
    check: Callable[[int, Any], bool],
    rounds: int,
    warmup_rounds: int,
    probe_args: Sequence[Any] | None = None,
    probe_warm_args: Sequence[Any] = (),
    warm_args: Sequence[Any] | None = None,
    round_warm_args: Sequence[Any] = (),
    least_batch_s: Callable[[int, int], float] | None = None,
    pin_probes: bool = True,
) -> dict[str, Any]:
    """Time ``pool.map(func, args)`` once per round on a warm pool; check every answer of every round.

    ``probe_args``: bracket the timed rounds with serial probes of ``func`` over these, in this thread
    with BLAS capped as for the serial case, each after ``probe_warm_args`` run untimed (extra_info
    ``serial_samples_s``, one before the first timed round and one after each, ``serial_tasks`` and
    ``serial_warm_tasks``): the serial reference (common/reference.py).
    ``warm_args``: before the first round, one untimed batch of these (one task per worker: every
    worker's first task pays its imports, page faults and caches), its answers checked; with it, a
    scaling case needs no warm-up round of a whole batch.
    ``round_warm_args``: with probes, an untimed batch of these through the pool before every timed
    round, after its probe (extra_info ``round_warm_tasks``; common/reference.py ``round_warm_tasks``).
    ``pin_probes``: each probe on the CPU its rounds ran on (bench/measure.py ``ProbePlacer``); False leaves
    it where the scheduler puts it (I/O-bound work: ``BatchRounds.pin_probes``; ``serial_cpus`` null).
    ``least_batch_s(tasks, workers)``: the least wall time that many right tasks can take on that
    many workers; a round (or serial probe) that ends sooner fails the case.
    Returns the extra_info it recorded (also set on ``benchmark``).
    """
    impl = backend(case.executor)
    probe = list(probe_args) if probe_args else None
    probe_warm = list(probe_warm_args) if probe else []
    round_warm = list(round_warm_args) if probe else []
    batch = BatchRounds(
        run_batch=lambda: list(pool.map(func, args, chunksize=case.chunksize)),
        check=check,
        label=case.id,
        tasks=len(args),
        warmup_rounds=warmup_rounds,
        paired=(lambda: [func(a) for a in probe]) if probe else None,
        paired_tasks=len(probe) if probe else 0,
        paired_warm=(lambda: [func(a) for a in probe_warm]) if probe_warm else None,
        paired_warm_tasks=len(probe_warm),
        round_warm=(lambda: list(pool.map(func, round_warm, chunksize=case.chunksize))) if round_warm else None,
        round_warm_tasks=len(round_warm),
        cgroup=suite.cpu.cgroup,
        floor_s=least_batch_s(len(args), 1 if case.executor == "serial" else case.workers) if least_batch_s else None,
        paired_floor_s=least_batch_s(len(probe), 1) if least_batch_s and probe else None,
        settle=impl.settle(pool) if probe else None,
        pin_probes=pin_probes,
    )
    blas = blas_threads_of(pool, case.executor)
    serial_blas = blas_limit_here("serial", suite.blas_threads) if probe else contextlib.nullcontext()
    with explain_dead_workers(case), serial_blas:
        if warm_args:
            warm = list(warm_args)
            batch.placer.round_started()  # the warm-up batch credits the CPUs it ran on: the first probe follows it
            answers = list(pool.map(func, warm, chunksize=case.chunksize))
            batch.placer.round_ended()
            for i, answer in enumerate(answers):
                if not check(i, answer):
                    raise WrongAnswer(f"{case.id} (warm-up batch): task {i} returned a wrong answer: {answer!r:.200}")
        benchmark.pedantic(
            batch.target, setup=batch.setup, teardown=batch.teardown, rounds=rounds, warmup_rounds=warmup_rounds
        )
    batch.verify()
    info = case_info(case, suite)
    info.update(
        tasks=len(args),
        blas_threads=blas,
        **batch.meter.as_info(),
    )
    info.update(impl.extra_info(pool))  # what the executor adds (dask: the settings in force)
    if probe:
        info["serial_samples_s"] = [round(t, 9) for t in batch.paired_samples]
        info["serial_cpu_samples_s"] = [round(t, 9) for t in batch.paired_cpu_samples]
        info["serial_tasks"] = len(probe)
        info["serial_warm_tasks"] = len(probe_warm)
        info["round_warm_tasks"] = len(round_warm)
        info["serial_cpus"] = list(batch.probe_cpus)
        info["round_cpu_shares"] = [
            None if shares is None else {str(c): round(v, 3) for c, v in shares.items()}
            for shares in batch.round_cpu_shares
        ]
    if batch.settle_samples:
        info["settle_samples_s"] = [round(t, 6) for t in batch.settle_samples]
    benchmark.extra_info.update(info)
    return info


def run_workload(benchmark: Any, suite: SuiteConfig, case: Case, pool: Executor) -> dict[str, Any]:
    """A batch of ``case.workload`` at this run's task size (bench/calibration.py), every answer checked.

    The pool is warmed by one task per worker, then every round is timed (common/plan.py); scaling
    cases of pools bracket their rounds with serial probes (common/reference.py); every batch case
    records its pass.
    """
    work = workloads.get(case.workload)
    param = suite.param(case.workload)
    tasks = case.tasks or work.size(suite.profile).tasks
    workers = 1 if case.executor == "serial" else case.workers
    probed = case.case == "scaling"  # the serial case too: its probes against its batch are the reference's check
    info = run_batches(
        benchmark,
        suite,
        case,
        pool,
        # the pool's tasks and the serial reference alike, each at the next stack offset (workloads/stack.py)
        func=Rotated(work.func) if suite.task_stack == "rotate" else work.func,
        args=[param] * tasks,
        check=lambda _, result: work.accepts(param, result),
        rounds=suite.settings["rounds"],
        warmup_rounds=0,
        warm_args=[param] * workers,
        probe_args=[param] * reference.PROBE_TASKS if probed else None,
        probe_warm_args=[param] * reference.PROBE_WARM_TASKS if probed else (),
        round_warm_args=[param] * reference.round_warm_tasks(workers, suite.cpu.effective_cpus)
        if probed and case.executor != "serial"
        else (),
        least_batch_s=(lambda n, w: work.least_batch_s(param, n, w)) if work.least_batch_s else None,
        pin_probes=work.kind != "io",  # an I/O-bound probe wakes where the pool's threads do (BatchRounds)
    )
    sized = suite.sizes.get(case.workload) if suite.sizes else None
    extra = {
        "task_param": param,
        "task_s": None if sized is None or sized.task_s is None else round(sized.task_s, 6),
        "pass": case.pass_no,
        "passes": int(suite.settings["passes"]) if case.case == "scaling" else 1,
    }
    info.update(extra)
    benchmark.extra_info.update(extra)
    return info


def run_pool_starts(
    benchmark: Any,
    suite: SuiteConfig,
    make: Callable[[], Executor],
    first: Callable[[Executor], Any],
    *,
    rounds: int,
    warmup_rounds: int,
    inspect: Callable[[], None] | None = None,
) -> tuple[list[Any], RoundMeter]:
    """Time a pool's start, ``first(make())``, once per round, on a new pool each round (cold start, memory).

    ``first`` brings the new pool to the point the case times (a first result; every worker
    started) and returns what the case checks. ``inspect`` runs after each timed round while its
    pool is still alive (memory readings). Each pool is shut down after its round, outside the
    timed region; the meter's readings end before the shutdown. A pool left by an interruption or
    a failure is terminated. Returns the answers of every round, warm-up included, and the meter.
    """
    pools: list[Executor] = []
    answers: list[Any] = []
    meter = RoundMeter(suite.cpu.cgroup, warmup_rounds)

    def target() -> None:
        pool = make()
        pools.append(pool)
        answers.append(first(pool))

    def shut_down() -> None:
        while pools:
            pools[-1].shutdown(wait=True)
            pools.pop()  # only once shut down: an interrupted shutdown leaves it to terminate()

    def teardown() -> None:
        if meter.stop() and inspect is not None:
            inspect()
        shut_down()

    try:
        benchmark.pedantic(target, setup=meter.start, teardown=teardown, rounds=rounds, warmup_rounds=warmup_rounds)
        shut_down()  # pytest-benchmark disabled: target ran once, without teardown
    except BaseException:
        while pools:
            terminate(pools.pop())
        raise
    return answers, meter
