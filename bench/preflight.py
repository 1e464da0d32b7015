"""Before any case: every kind of worker that starts afresh imports the user's workload files.

A worker of a ``spawn`` or ``forkserver`` process pool, a dask worker (a LocalCluster's or an
existing cluster's, perhaps in another container) finds a user's task function by importing its
module by name when the first task arrives; so does a dask scheduler, which unpickles the task
graph. A file that imports in the run's process can still
fail there: it reads state of the run's process, a container cluster's worker lacks the file, or
it sees another version of it. Without this check the first case would die of it (a broken process
pool, a dask task that never runs); with it the run stops at start with one line naming the file,
the place and the fix, as for any other bad workload file (exit 4).

``fork`` workers inherit the imported module, and thread and serial tasks run in this process: they
need no check. The interpreter pool imports the module in each subinterpreter; a file that cannot
load there (one that imports NumPy) leaves its workloads out of that pool with the import's error,
as for any module a task needs (``Workload.needs``, bench/interpreters.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from bench import executors
from bench.backend import FreshWorker, backend
from bench.config import SuiteConfig
from workloads import overhead
from workloads.user import WorkloadFileError

#: Seconds a fresh worker may take to import the files and answer.
IMPORT_TIMEOUT_S = 120

IMPORT_FIX = (
    "make the file import in a fresh process: a worker imports it by its module name and gets nothing "
    "from the run's process but sys.path"
)


def _places(suite: SuiteConfig) -> Iterator[FreshWorker]:
    """Each kind of fresh worker this run starts, as its executor's backend names them."""
    for name in suite.executors:
        yield from backend(name).fresh_workers(suite)


def _one_worker(pool: Executor, place: str, paths: tuple[str, ...]) -> dict[str, list]:
    """What the pool's one worker found: {where: [(path, problem, sha256), ...]}."""
    return {place: pool.submit(overhead.import_files_here, paths).result(timeout=IMPORT_TIMEOUT_S)}


def problem_line(
    path: str, place: str, problem: str | None, digest: str | None, expected: str, *, elsewhere: bool = False
) -> str | None:
    """The one line for a file as a worker found it (``elsewhere``: on another machine); None when it imported
    the same file."""
    if problem is not None and problem.startswith("cannot be read"):
        fix = (
            "mount it at the same path in every worker (scripts.matrix --workload-file does, for its containers)"
            if elsewhere
            else "keep the file where the run found it until the run ends"
        )
        return f"workload file {path}: {problem} in {place}; {fix}"
    if problem is not None:
        return f"workload file {path}: {problem} in {place}; {IMPORT_FIX}"
    if digest != expected:
        return (
            f"workload file {path}: {place} sees another version of it (sha256 {str(digest)[:12]}…, the run's "
            f"{expected[:12]}…); give every worker the same file"
        )
    return None


def check(suite: SuiteConfig, files: Sequence[str]) -> None:
    """Raise :class:`WorkloadFileError` (one line) when a fresh worker of this run cannot import a file."""
    paths = tuple(dict.fromkeys(str(f) for f in files))
    if not paths:
        return
    expected = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}
    for place, start, ask, elsewhere in _places(suite):
        pool = start()
        try:
            with executors.closing(pool):
                answers = (ask or _one_worker)(pool, place, paths)
        except BrokenProcessPool:
            raise WorkloadFileError(
                f"workload file {', '.join(paths)}: {place} died while importing it; {IMPORT_FIX}"
            ) from None
        for where, found in answers.items():
            for path, problem, digest in found:
                if line := problem_line(path, where, problem, digest, expected[path], elsewhere=elsewhere):
                    raise WorkloadFileError(line)
