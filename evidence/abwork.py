"""Three workloads for the A/B gate's evidence (evidence/measure.sh, topic ab): a change to this file is the
change under test, as a change to your code would be.

evidence/measure.sh copies this file into two folders, the arms of ``scripts.ab``, and edits the copy in
HEAD: ``SLOWDOWN = 1.10`` makes every task do 10 % more work (a time regression: serial and every pool
alike); ``LOCKED = 0.75`` makes ``ab_hash`` hash three quarters of its chunks while holding a lock of the module
(a scaling regression: a thread pool's workers queue on the lock, so two of them finish at most 2 / 1.5
= 1.33 times as many tasks as one; a process pool's workers each have their own lock, and one task alone
barely notices it).
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from workloads import Size, Workload

#: Work per task, as a multiple of the base's: 1.05 and 1.10 are exactly 21 and 22 of 20 repetitions.
SLOWDOWN = 1.0
#: Share of ab_hash's chunks hashed under the module's lock.
LOCKED = 0.0
REPEATS = 20
_LOCK = threading.Lock()


def _repeats() -> int:
    return round(REPEATS * SLOWDOWN)


def ab_python(n: int) -> int:
    """Pure Python (holds the GIL): a sum of squares over ``n`` integers, repeated."""
    return sum(sum(i * i for i in range(n)) for _ in range(_repeats()))


def check_python(n: int, result: object) -> bool:
    return result == _repeats() * (n - 1) * n * (2 * n - 1) // 6


def ab_hash(n_bytes: int) -> str:
    """SHA-256 of ``n_bytes`` per repetition (releases the GIL), a share of them under the module's lock."""
    chunk = bytes(range(256)) * max(1, n_bytes // 256)
    h = hashlib.sha256()
    locked = round(_repeats() * LOCKED)
    for i in range(_repeats()):
        if i < locked:
            with _LOCK:
                h.update(chunk)
        else:
            h.update(chunk)
    return h.hexdigest()


def check_hash(n_bytes: int, result: object) -> bool:
    chunk = bytes(range(256)) * max(1, n_bytes // 256)
    return result == hashlib.sha256(chunk * _repeats()).hexdigest()


def ab_numpy(n: int) -> float:
    """A NumPy ufunc chain over ``n`` floats per repetition (releases the GIL)."""
    x = np.linspace(0.0, 1.0, n)
    total = 0.0
    for _ in range(_repeats()):
        total += float(np.sqrt(np.sin(x) ** 2 + np.cos(x) ** 2).sum())
    return total


def check_numpy(n: int, result: object) -> bool:
    return isinstance(result, float) and abs(result - _repeats() * n) <= 1e-6 * _repeats() * n


WORKLOADS = [
    Workload(
        name="ab_python",
        func=ab_python,
        kind="cpu-python",
        gil="holds",
        sizes={p: Size(2_000, 8, 1) for p in ("quick", "default", "full")},
        check=check_python,
        models="pure-Python work whose A/B change is in this file",
    ),
    Workload(
        name="ab_hash",
        func=ab_hash,
        kind="cpu-native",
        gil="releases",
        sizes={p: Size(256 * 1024, 8, 1) for p in ("quick", "default", "full")},
        check=check_hash,
        models="hashing that releases the GIL, part of it under a lock in the scaling A/B change",
    ),
    Workload(
        name="ab_numpy",
        func=ab_numpy,
        kind="cpu-native",
        gil="releases",
        sizes={p: Size(50_000, 8, 1) for p in ("quick", "default", "full")},
        check=check_numpy,
        models="a NumPy ufunc chain (releases the GIL)",
    ),
]
