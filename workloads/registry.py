"""The workload registry: small frozen records that say what each workload is and how big it runs.

A record names a task function, what it models (``kind``), whether it holds the GIL, the size of
one task and the number of tasks per batch in each profile, and a check of each task's answer that
does not trust the task function (a fast wrong answer is no result).

The sizes here are where calibration starts (bench/calibration.py): at start each scaling workload whose
``Size`` names how its parameter scales is moved until one serial task takes the profile's target
time on this host; ``--sizes fixed`` runs these values as they are. A scaling workload's batch is
sized by the sweep (common/plan.batch_tasks), so ``Size.tasks`` counts only for the probes
(``noop``, ``echo``, ``whoami``, the crashes), which measure the executor rather than the work.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from workloads import cpu_bound, faults, io_bound, overhead

KINDS = ("io", "cpu-python", "cpu-native", "overhead", "fault")
GIL = ("holds", "releases")


@dataclass(frozen=True)
class Size:
    """One task's argument, the tasks in one batch of a probe, and how the argument scales.

    ``scale``: None keeps ``param`` as it is on every host (a sleep, a file of fixed size); a
    number ``e`` says the work grows as ``param ** e`` (1 for a byte count, 1.5 for trial division
    up to ``param``, 3 for an n × n matrix product); or a function ``(param, factor) -> param``
    that returns the parameter doing ``factor`` times the work. Calibration (bench/calibration.py) uses it
    to size a task to the host.
    """

    param: Any
    tasks: int
    scale: Any = None


@dataclass(frozen=True, eq=False)
class Workload:
    """A registered workload. ``func(param)`` runs in a worker; ``check(param, result)`` in the parent."""

    name: str
    func: Callable[[Any], Any]
    kind: str
    gil: str
    sizes: Mapping[str, Size]
    check: Callable[[Any, Any], bool] | None = None  # None: answers are not checked (a user's workload)
    models: str = ""
    source: str | None = None  # the workload file a user's workload came from; None for the built-ins
    #: The least wall time a right batch can take, ``least_batch_s(param, tasks, workers)``, checked
    #: by the parent's clock (bench/measure.py): a task cannot be trusted to time itself.
    least_batch_s: Callable[[Any, int, int], float] | None = None
    #: Modules beyond the standard library that ``func`` imports. A pool whose workers may not be
    #: able to load one (a subinterpreter cannot load NumPy 2.4) runs the workload only if they can.
    needs: tuple[str, ...] = ()

    def size(self, profile: str) -> Size:
        return self.sizes[profile]

    def accepts(self, param: Any, result: Any) -> bool:
        """Whether ``result`` is a right answer for ``param``; any answer when there is no check."""
        return True if self.check is None else bool(self.check(param, result))


def _sizes(
    quick: tuple[Any, int], default: tuple[Any, int], full: tuple[Any, int], scale: Any = None
) -> Mapping[str, Size]:
    return MappingProxyType(
        {"quick": Size(*quick, scale), "default": Size(*default, scale), "full": Size(*full, scale)}
    )


def _whole_kib(n_bytes: int, factor: float) -> int:
    """A byte count ``factor`` times larger, in whole KiB (hash_alloc builds its buffer 256 bytes at a time)."""
    return max(1, round(n_bytes * factor / 1024)) * 1024


# --- checks: each recomputes the answer another way --------------------------------------------------


@functools.lru_cache(maxsize=16)
def primes_below(limit: int) -> int:
    """Prime count by a sieve of Eratosthenes (independent of trial division)."""
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(limit - 1) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytearray(len(range(p * p, limit, p)))
    return sum(sieve)


def _check_primes(limit: int, result: Any) -> bool:
    return result == primes_below(limit)


def _check_square_sum(n: int, result: Any) -> bool:
    return result == (n - 1) * n * (2 * n - 1) // 6


def _check_ufunc(n: int, result: Any) -> bool:
    # sum(x + 1) for x = linspace(0, 1, n) is exactly 1.5 n; allow float rounding only.
    return isinstance(result, float) and abs(result - 1.5 * n) <= 1e-9 * n


@functools.lru_cache(maxsize=16)
def matmul_trace_expected(n: int) -> float:
    """trace(A @ A) = sum_ik A[i,k] A[k,i], computed element-wise instead of through BLAS.

    The entries are small integers, so both sums are exact in float64.
    """
    a = cpu_bound.matmul_matrix(n)
    return float((a * a.T).sum())


@functools.lru_cache(maxsize=16)
def crc_of_blocks(size: int, count: int) -> int:
    """CRC-32 of ``count`` copies of the deterministic ``size``-byte buffer."""
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(cpu_bound.compressible_bytes(size), crc)
    return crc


@functools.lru_cache(maxsize=16)
def chained_digest(n_bytes: int) -> bytes:
    """The digest :func:`cpu_bound.hash_fresh_buffer` should return, without concatenating buffers.

    ``sha256(data + digest)`` is the hash of ``data`` followed by ``digest``: fed here to one hash
    object in two updates, from a buffer built once.
    """
    data = bytes(range(256)) * (n_bytes // 256)
    digest = b""
    for _ in range(cpu_bound.HASH_ROUNDS):
        h = hashlib.sha256(data)
        h.update(digest)
        digest = h.digest()
    return digest


def _check_hash(n_bytes: int, result: Any) -> bool:
    return result == chained_digest(n_bytes)


def _check_matmul(n: int, result: Any) -> bool:
    return result == matmul_trace_expected(n)


def _check_zlib(size: int, result: Any) -> bool:
    crc, packed = result
    return crc == crc_of_blocks(size, 1) and 0 < packed < size


def _check_sleep(seconds: float, result: Any) -> bool:
    return isinstance(result, float) and result >= seconds


def _least_sleep_batch(seconds: float, tasks: int, workers: int) -> float:
    """N sleeps of S seconds on W workers take at least ceil(N / W) × S, whatever the executor."""
    return math.ceil(tasks / max(workers, 1)) * seconds


def _check_file(spec: tuple[int, int], result: Any) -> bool:
    kib, files = spec
    return result == crc_of_blocks(kib * 1024, files)


def _check_noop(x: Any, result: Any) -> bool:
    return result == x


def _check_echo(payload: bytes, result: Any) -> bool:
    # Every byte compared (a memcmp: faster than hashing both sides, and exact); a thread pool hands
    # back the very object, a process pool a copy that crossed two pipes.
    return isinstance(result, bytes) and result == payload


def _check_pid(hold_s: float, result: Any) -> bool:
    return isinstance(result, int) and result > 0


def _never(_: Any, result: Any) -> bool:
    """A task that should have killed its worker has no right answer."""
    return False


# --- the registry -------------------------------------------------------------------------------------

SCALING: Mapping[str, Workload] = MappingProxyType(
    {
        w.name: w
        for w in (
            Workload(
                "io_sleep",
                io_bound.sleep_for,
                "io",
                "releases",
                _sizes((0.005, 8), (0.02, 16), (0.04, 32)),
                _check_sleep,
                "waiting on I/O (a network or database call): time.sleep",
                least_batch_s=_least_sleep_batch,
            ),
            Workload(
                "io_file",
                io_bound.file_roundtrip,
                "io",
                "releases",
                _sizes(((256, 2), 8), ((256, 8), 16), ((512, 8), 32)),
                _check_file,
                "disk I/O: write, fsync and read back a file in a temporary folder",
            ),
            Workload(
                "cpu_python",
                cpu_bound.count_primes,
                "cpu-python",
                "holds",
                _sizes((8_000, 8), (25_000, 16), (50_000, 32), scale=1.5),
                _check_primes,
                "pure-Python computation (primes by trial division)",
            ),
            Workload(
                "numpy_object",
                cpu_bound.object_square_sum,
                "cpu-native",
                "holds",
                _sizes((60_000, 8), (300_000, 16), (600_000, 32), scale=1),
                _check_square_sum,
                "native code that holds the GIL (NumPy dtype=object arithmetic)",
                needs=("numpy",),
            ),
            Workload(
                "numpy_ufunc",
                cpu_bound.ufunc_chain,
                "cpu-native",
                "releases",
                _sizes((1_000_000, 8), (1_500_000, 16), (3_000_000, 32), scale=1),
                _check_ufunc,
                "vectorised NumPy element-wise math on >= 1 M elements",
                needs=("numpy",),
            ),
            Workload(
                "numpy_matmul",
                cpu_bound.matmul_trace,
                "cpu-native",
                "releases",
                _sizes((450, 8), (900, 16), (1200, 32), scale=3),
                _check_matmul,
                "dense linear algebra through BLAS (one BLAS thread per worker unless asked)",
                needs=("numpy",),
            ),
            Workload(
                "zlib",
                cpu_bound.zlib_roundtrip,
                "cpu-native",
                "releases",
                _sizes((128 * 1024, 8), (512 * 1024, 16), (1024 * 1024, 32), scale=_whole_kib),
                _check_zlib,
                "standard-library C code that releases the GIL (zlib compress + decompress)",
            ),
            Workload(
                "hash_alloc",
                cpu_bound.hash_fresh_buffer,
                "cpu-native",
                "releases",
                _sizes((1 * 2**20, 8), (4 * 2**20, 16), (8 * 2**20, 32), scale=_whole_kib),
                _check_hash,
                "C code that releases the GIL on buffers each task allocates anew (hashlib SHA-256)",
            ),
        )
    }
)

# Probes measure the executor rather than the work; they are not part of the scaling sweep.
PROBES: Mapping[str, Workload] = MappingProxyType(
    {
        w.name: w
        for w in (
            Workload(
                "noop",
                overhead.noop,
                "overhead",
                "holds",
                _sizes((0, 400), (0, 2000), (0, 5000)),
                _check_noop,
                "an empty task: the executor's own cost per task",
            ),
            Workload(
                "echo",
                overhead.echo,
                "overhead",
                "holds",
                _sizes((None, 4), (None, 8), (None, 16)),
                _check_echo,
                "a task that returns its payload: the cost of moving arguments and results",
            ),
            Workload(
                "whoami",
                overhead.whoami,
                "overhead",
                "releases",
                _sizes((0.0, 1), (0.0, 1), (0.0, 1)),
                _check_pid,
                "a task that reports its worker's process id (pool start-up and warm-up)",
            ),
            *(
                Workload(
                    f"crash_{name}",
                    func,
                    "fault",
                    "holds",
                    _sizes((3, 1), (3, 1), (3, 1)),
                    _never,
                    f"a task that kills whatever runs it ({name})",
                )
                for name, func in faults.CRASHES.items()
            ),
        )
    }
)


#: Workloads loaded from the user's workload files (workloads/user.py), in the order given.
USER: dict[str, Workload] = {}


def register_user(workload: Workload, source: str) -> None:
    """Add a user's workload (validated by workloads.user) to the sweep, remembering its file.

    Its own module joins ``needs``: a worker imports it by that name to find the task function, so
    a pool whose workers cannot load it (a subinterpreter, when the file imports NumPy) leaves the
    workload out with the import's error, as for any module the task needs.
    """
    module = func_module(workload.func)
    needs = workload.needs if module in workload.needs else (*workload.needs, module)
    USER[workload.name] = dataclasses.replace(workload, source=source, needs=needs)


def func_module(func: Callable[..., Any]) -> str:
    """The module a worker imports to find ``func`` (pickled by reference: module and name)."""
    return getattr(func, "__module__", None) or "__main__"


def scaling_names() -> tuple[str, ...]:
    """Names accepted by ``--workloads``, in registry order: the built-ins, then the user's."""
    return (*SCALING, *USER)


def get(name: str) -> Workload:
    """The record called ``name``: scaling workloads first, then the user's, then probes."""
    if name in SCALING:
        return SCALING[name]
    if name in USER:
        return USER[name]
    return PROBES[name]
