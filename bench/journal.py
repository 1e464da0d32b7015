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

import errno
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import stopping
from common.files import write_atomic

JOURNAL_SCHEMA = 1


class SaveError(Exception):
    """A results file could not be saved, or would have replaced one that changed under the run.

    The message is one line for the user: the file, the reason and what to do.
    """


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def writable_folder(folder: Path, what: str) -> str | None:
    """Why results cannot be written in ``folder`` (None: they can). Tried by creating a file there.

    ``os.access`` is not enough: it says yes to root on a read-only file system.
    """
    if not folder.is_dir():
        return f"{what}: folder {str(folder)!r} does not exist; create it first"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".poolbench-write-test.", dir=folder)
    except OSError as exc:
        return f"{what}: cannot write in folder {str(folder)!r} ({_reason(exc)}); choose a writable folder"
    os.close(fd)
    os.unlink(tmp)
    return None


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from another: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _dumps(output_json: dict) -> bytes:
    from pytest_benchmark.utils import safe_dumps  # noqa: PLC0415  (pytest-benchmark's own encoder)

    return safe_dumps(output_json, ensure_ascii=True, indent=4).encode()


def save_results(path: Path, data: bytes, expected: tuple | None) -> None:
    """Save one results file whole, or raise :class:`SaveError` and leave ``path`` untouched.

    ``expected`` is the identity ``path`` had when the run started: if something else wrote or
    replaced it meanwhile (another run given the same file), it is not overwritten.
    """
    if file_identity(path) != expected:
        raise SaveError(
            f"{path}: changed during this run (another run writing the same file?); left as it is, "
            "this run's results not saved there; give each run its own --benchmark-json"
        )
    try:
        with stopping.deferred():
            write_atomic(path, data)
    except OSError as exc:
        raise SaveError(
            f"{path}: could not be saved ({_reason(exc)}); any earlier file there is untouched; "
            "free space or choose a writable folder"
        ) from None


def make_saving_atomic(session: Any) -> None:
    """Route pytest-benchmark's two writers through :func:`save_results` (same names, same content)."""
    json_target = Path(session.json) if session.json else None
    json_identity = file_identity(json_target) if json_target else None

    def save_json(output_json: dict) -> None:
        save_results(Path(session.json), _dumps(output_json), json_identity)
        session.logger.info(f"Wrote benchmark data in: {session.json}", purple=True)

    storage = session.storage

    def save_storage(output_json: dict, save: str) -> None:
        output_file = storage.get(f"{storage._next_num}_{save}.json")
        # An autosave never replaces an earlier run: the name it takes must still be free.
        save_results(output_file, _dumps(output_json), None)
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
            while self.error is None and self.done < len(self.session.benchmarks):
                bench = self.session.benchmarks[self.done]
                if not bench.has_error and getattr(bench.fixture, "poolbench_passed", False):
                    try:
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
                    except OSError as exc:
                        self.error = f"journal {self.path}: could not be written ({_reason(exc)})"
                        break
                    written += 1
                    self.written += 1
                self.done += 1
        return written

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
