"""An example workload file: SHA-256 of a buffer, the way a service hashes uploads.

Run it with the built-ins, or alone:

    pytest bench --workload-file examples/hashing.py --workloads sha256 --cases scaling

hashlib releases the GIL while it hashes more than 2047 bytes, so threads should scale like
processes here, without pickling the buffer (each task builds its own). The sizes are where
calibration starts (``scale=1``: the work grows with the byte count), so one serial task takes the
profile's target time on whatever host runs it (docs/guide.md, "The sampling plan"); with
``--sizes fixed`` they run as given (32 MiB: 38 ms on a 2-core x86-64 VM here, `timeit` best of 3).
"""

from __future__ import annotations

import hashlib

from workloads import Size, Workload

MIB = 2**20


def _buffer(n_bytes: int) -> bytes:
    # Deterministic and cheap to build: the hash, not the buffer, is what is measured.
    return bytes(range(256)) * (n_bytes // 256)


def sha256_task(n_bytes: int) -> str:
    """Hash ``n_bytes`` of data in one call (hashlib drops the GIL for the whole update)."""
    return hashlib.sha256(_buffer(n_bytes)).hexdigest()


def check_sha256(n_bytes: int, result: object) -> bool:
    """The same digest computed another way: in 1 MiB pieces through a fresh hash object."""
    piece = bytes(range(256)) * (MIB // 256)
    h = hashlib.new("sha256")
    whole, rest = divmod(n_bytes // 256 * 256, MIB)
    for _ in range(whole):
        h.update(piece)
    h.update(piece[:rest])
    return result == h.hexdigest()


WORKLOADS = [
    Workload(
        name="sha256",
        func=sha256_task,
        kind="cpu-native",
        gil="releases",
        sizes={"quick": Size(8 * MIB, 8, 1), "default": Size(32 * MIB, 16, 1), "full": Size(64 * MIB, 32, 1)},
        check=check_sha256,
        models="hashing uploads with hashlib (C code that releases the GIL)",
    ),
]
