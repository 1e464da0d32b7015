"""I/O-bound tasks: the worker mostly waits, with the GIL released while it does.

Module-level functions only, so they pickle by reference under every start method.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib

from workloads.cpu_bound import compressible_bytes

#: The folder ``file_roundtrip`` writes under (the suite sets it from ``--io-dir``); unset: the
#: system's temporary folder, which in a container is often a tmpfs, where fsync costs nothing.
IO_DIR_ENV = "POOLBENCH_IO_DIR"


def sleep_for(seconds: float) -> float:
    """Sleep ``seconds`` and return the time actually slept (``time.sleep`` releases the GIL).

    The classic I/O stand-in: a network call or a database query whose latency is pure waiting.
    Its ideal wall time on W threads is known exactly: ceil(N / W) × seconds for N tasks.
    """
    start = time.perf_counter()
    time.sleep(seconds)
    return time.perf_counter() - start


def file_roundtrip(spec: tuple[int, int]) -> int:
    """Write ``files`` files of ``kib`` KiB each, flushing and fsyncing each, and read them back.

    ``spec`` is ``(kib, files)``; returns the CRC-32 of everything read back. Models disk-bound
    work (logs, spooling, small files). The files live in a temporary folder of their own under
    ``$POOLBENCH_IO_DIR`` (else ``tempfile.gettempdir()``) that is removed before the task returns.
    """
    kib, files = spec
    data = compressible_bytes(kib * 1024)
    crc = 0
    with tempfile.TemporaryDirectory(prefix="poolbench-", dir=os.environ.get(IO_DIR_ENV) or None) as folder:
        for i in range(files):
            path = os.path.join(folder, f"task-{i}.bin")
            with open(path, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            with open(path, "rb") as back:
                crc = zlib.crc32(back.read(), crc)
    return crc
