"""Nothing lost: a journal of finished cases, and result files that are never half-written.

The journal is JSON Lines beside the pytest-benchmark output (``OUT.journal.jsonl`` for
``--benchmark-json OUT.json``; ``journal-<time>-<pid>.jsonl`` in the autosave folder)::

    {"type": "run", "schema_version": 1, "datetime": ..., "machine_info": {...}}      first line
    {"type": "benchmark", ...one benchmark exactly as in pytest-benchmark's JSON...}  one per finished case

Each line is written with a single write and fsync'd as its case finishes, so a run killed at any
point (SIGKILL, a container's out-of-memory kill) keeps every finished case; at worst the last line
is cut short, and readers skip a cut-short last line. scripts/results.py reads journals.

The results files themselves are saved whole by bench/saving.py.
"""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import benchmark_api, stopping
from bench.saving import reason

JOURNAL_SCHEMA = 1


def journal_path(session: Any, explicit: str | None) -> Path | None:
    """Where this run's journal goes; None when the run saves nothing and no journal was asked for."""
    if explicit:
        return Path(explicit)
    if (out := benchmark_api.json_file(session)) is not None:
        return out.with_name(out.name.removesuffix(".json") + ".journal.jsonl")
    if benchmark_api.saves_to_storage(session):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return benchmark_api.storage_file(session, f"journal-{stamp}-{os.getpid()}.jsonl")
    return None


class Journal:
    """Appends one JSON line per finished benchmark of a pytest-benchmark session.

    A journal that cannot be written (a full disk, a folder made read-only, the file replaced or
    removed by something else during the run) is not written any more: :attr:`error` says why, and
    the suite stops the run (bench/conftest.py). What it holds stays whole: a line that failed
    half-way is cut off again, so readers never meet a damaged line in the middle.
    """

    def __init__(self, path: Path, session: Any) -> None:
        self.path = path
        self.session = session
        self.done = 0  # benchmarks of the session already journaled (or skipped as failed)
        self.written = 0  # benchmark lines written
        self.error: str | None = None
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)
        # An earlier run appending to this journal may have been killed in the middle of a line:
        # cut that fragment off, or it would sit between whole lines and make the file unreadable.
        if st.st_size:
            with open(self.path, "rb") as f:
                f.seek(max(0, st.st_size - 1 - 2**20))
                tail = f.read()
            if not tail.endswith(b"\n"):
                os.ftruncate(self._fd, st.st_size - len(tail) + tail.rfind(b"\n") + 1)

    def _write(self, record: dict) -> None:
        line = (json.dumps(record, default=str) + "\n").encode()
        if self._fd is None:
            self._open()
        st = os.stat(self.path) if self.path.exists() else None
        if st is None or (st.st_dev, st.st_ino) != self._identity:
            raise OSError(errno.ESTALE, "replaced or removed by something else during the run")
        offset = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "No space left on device")
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, offset)  # no half line left behind
            raise

    def catch_up(self) -> int:
        """Journal every benchmark that finished since the last call; returns how many were written."""
        written = 0
        with stopping.deferred():  # a line and its bookkeeping go together
            records = benchmark_api.benchmarks(self.session)
            while self.error is None and self.done < len(records):
                bench = records[self.done]
                if benchmark_api.passed(bench):
                    try:
                        if self._fd is None:
                            self._write(
                                {
                                    "type": "run",
                                    "schema_version": JOURNAL_SCHEMA,
                                    "datetime": datetime.now(UTC).isoformat(),
                                    "machine_info": benchmark_api.machine_info(self.session),
                                }
                            )
                        self._write({"type": "benchmark", **benchmark_api.as_record(bench)})
                    except OSError as exc:
                        self.error = f"journal {self.path}: could not be written ({reason(exc)})"
                        break
                    written += 1
                    self.written += 1
                self.done += 1
        return written

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
