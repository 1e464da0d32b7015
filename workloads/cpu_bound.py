"""CPU-bound tasks: what runs inside one worker, one call per task.

Every function here is a plain module-level function so that it pickles by reference under the
``fork``, ``forkserver`` and ``spawn`` start methods, and each returns a value that a check in
:mod:`workloads.registry` can verify without trusting the function itself.

Whether a task holds the GIL decides how it scales on threads:

* :func:`count_primes` is pure Python bytecode: it holds the GIL for its whole run, so threads take
  turns (switch interval 5 ms) and two threads do no more work than one.
* :func:`object_square_sum` runs NumPy's C loops over ``dtype=object``: native code, yet every
  element is a Python int, so the GIL is held throughout. "Native" is not the same as "GIL-free".
* :func:`ufunc_chain`, :func:`matmul_trace`, :func:`zlib_roundtrip` and :func:`hash_fresh_buffer`
  spend their time in C code that releases the GIL (NumPy element-wise loops over large arrays,
  BLAS, zlib, hashlib), so threads overlap. :func:`hash_fresh_buffer` also allocates its buffers
  anew in every task, which is where the allocator policy (bench/allocator.py) decides the verdict.

NumPy is imported inside the functions that use it, not at the top: this module is imported by
every worker of every pool, and a subinterpreter (InterpreterPoolExecutor) cannot load NumPy 2.4
("does not support loading in subinterpreters"), while it can run :func:`count_primes` and
:func:`zlib_roundtrip`. Once loaded, the import inside a function is a dictionary lookup.
"""

from __future__ import annotations

import functools
import hashlib
import random
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def count_primes(limit: int) -> int:
    """Count the primes below ``limit`` by trial division (pure Python; holds the GIL).

    Models interpreter-bound work: parsing, business logic, anything written in Python loops.
    """
    count = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
    return count


def object_square_sum(n: int) -> int:
    """Sum of squares of 0..n-1 on a NumPy ``dtype=object`` array (native loop; holds the GIL).

    Models C-level code that still calls back into Python objects (object arrays, pandas object
    columns): it looks native but threads cannot overlap it.
    """
    import numpy as np  # noqa: PLC0415  (see the module docstring)

    a = np.arange(n, dtype=object)
    return int((a * a).sum())


def ufunc_chain(n: int) -> float:
    """A chain of NumPy element-wise operations over ``n`` float64 values (releases the GIL).

    Models vectorised numeric code. The chain is built so that its exact sum is known:
    ``sin(x)**2 + cos(x)**2 + x`` equals ``x + 1`` for every ``x``.
    """
    import numpy as np  # noqa: PLC0415  (see the module docstring)

    x = np.linspace(0.0, 1.0, n)
    s = np.sin(x)
    c = np.cos(x)
    y = s * s
    y += c * c
    y += x
    return float(y.sum())


def matmul_matrix(n: int) -> np.ndarray:
    """The deterministic ``n`` × ``n`` matrix of small integers that :func:`matmul_trace` squares."""
    import numpy as np  # noqa: PLC0415  (see the module docstring)

    i = np.arange(n)
    return ((i[:, None] * 3 + i[None, :] * 5) % 7).astype(np.float64)


def matmul_trace(n: int) -> float:
    """Trace of ``A @ A`` for an ``n`` × ``n`` matrix through BLAS (releases the GIL).

    Models dense linear algebra. BLAS may start its own threads; the harness limits them (one per
    worker by default) so that pool workers × BLAS threads never oversubscribe the CPUs by accident.
    """
    a = matmul_matrix(n)
    return float((a @ a).trace())


@functools.lru_cache(maxsize=8)
def compressible_bytes(size: int) -> bytes:
    """``size`` deterministic bytes over a 16-letter alphabet (about 4 bits of entropy per byte).

    Cached per process, so building the buffer is paid once per worker and never inside a round.
    """
    raw = random.Random(size).randbytes(size)
    alphabet = b"etaoinshrdlucmfw"
    return raw.translate(bytes(alphabet[b % 16] for b in range(256)))


def zlib_roundtrip(size: int) -> tuple[int, int]:
    """Compress and decompress ``size`` bytes with zlib; returns (CRC-32 of the round trip, compressed length).

    Models standard-library C code that releases the GIL (zlib, hashlib, bz2 on large buffers).
    """
    data = compressible_bytes(size)
    packed = zlib.compress(data, 6)
    return zlib.crc32(zlib.decompress(packed)), len(packed)


#: Rounds of hashing per task: each round hashes the buffer with the previous digest appended.
HASH_ROUNDS = 8


def hash_fresh_buffer(n_bytes: int) -> bytes:
    """Build an ``n_bytes`` buffer, then hash it 8 times, each time with the last digest appended.

    Models a service that hashes or signs what it receives (uploads, messages): every task
    allocates its own large buffers (the buffer, and ``data + digest`` each round), and hashlib
    releases the GIL while it hashes them. Where those buffers come from is the allocator's choice,
    so this workload shows what a page fault per 4 KiB costs each executor (docs/guide.md, "The
    allocator is a condition of the measurement").
    """
    data = bytes(range(256)) * (n_bytes // 256)
    digest = b""
    for _ in range(HASH_ROUNDS):
        digest = hashlib.sha256(data + digest).digest()
    return digest
