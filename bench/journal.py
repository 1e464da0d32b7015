"""Nothing lost: a journal of finished cases, and result files that are never half-written.

The journal is JSON Lines beside the pytest-benchmark output (``OUT.journal.jsonl`` for
``--benchmark-json OUT.json``; ``journal-<time>-<pid>.jsonl`` in the autosave folder)::

    {"type": "run", "schema_version": 1, "datetime": ..., "machine_info": {...}}      first line
    {"type": "benchmark", ...one benchmark exactly as in pytest-benchmark's JSON...}  one per finished case

Each line is written with a single write and fsync'd as its case finishes, so a run killed at any
point (SIGKILL, a container's out-of-memory kill) keeps every finished case; at worst the last line
is cut short, and readers skip a cut-short last line. scripts/results.py reads journals.

pytest-benchmark writes its own JSON with a plain open-and-write; :func:`make_saving_atomic` makes
both of its writers (``--benchmark-json`` and autosave storage) write a temporary file and rename
it, so a reader never sees a half-written results file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JOURNAL_SCHEMA = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` under a temporary name, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dumps(output_json: dict) -> bytes:
    from pytest_benchmark.utils import safe_dumps  # noqa: PLC0415  (pytest-benchmark's own encoder)

    return safe_dumps(output_json, ensure_ascii=True, indent=4).encode()


def make_saving_atomic(session: Any) -> None:
    """Route pytest-benchmark's two writers through :func:`atomic_write` (same names, same content)."""

    def save_json(output_json: dict) -> None:
        atomic_write(Path(session.json), _dumps(output_json))
        session.logger.info(f"Wrote benchmark data in: {session.json}", purple=True)

    storage = session.storage

    def save_storage(output_json: dict, save: str) -> None:
        output_file = storage.get(f"{storage._next_num}_{save}.json")
        if output_file.exists():
            raise FileExistsError(f"{output_file}: exists; refusing to overwrite results")
        atomic_write(output_file, _dumps(output_json))
        session.logger.info(f"Saved benchmark data in: {output_file}")

    session.save_json = save_json
    if hasattr(storage, "get") and hasattr(storage, "_next_num"):
        storage.save = save_storage


def journal_path(session: Any, explicit: str | None) -> Path | None:
    """Where this run's journal goes; None when the run saves nothing and no journal was asked for."""
    if explicit:
        return Path(explicit)
    if session.json:
        out = Path(session.json)
        return out.with_name(out.name.removesuffix(".json") + ".journal.jsonl")
    if session.save or session.autosave:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Path(session.storage.get(f"journal-{stamp}-{os.getpid()}.jsonl"))
    return None


class Journal:
    """Appends one JSON line per finished benchmark of a pytest-benchmark session."""

    def __init__(self, path: Path, session: Any) -> None:
        self.path = path
        self.session = session
        self.done = 0  # benchmarks of the session already journaled (or skipped as failed)
        self._fd: int | None = None

    def _write(self, record: dict) -> None:
        line = (json.dumps(record, default=str) + "\n").encode()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, line)
        os.fsync(self._fd)

    def catch_up(self) -> int:
        """Journal every benchmark that finished since the last call; returns how many were written."""
        new = self.session.benchmarks[self.done :]
        self.done += len(new)
        written = 0
        for bench in new:
            if bench.has_error or not getattr(bench.fixture, "poolbench_passed", False):
                continue
            if self._fd is None:
                self._write(
                    {
                        "type": "run",
                        "schema_version": JOURNAL_SCHEMA,
                        "datetime": datetime.now(UTC).isoformat(),
                        "machine_info": self.session.get_machine_info(),
                    }
                )
            self._write({"type": "benchmark", **bench.as_dict(include_data=True)})
            written += 1
        return written

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
