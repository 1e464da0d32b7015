"""Result files that are never half-written, never lost, never written over another run's.

pytest-benchmark writes its own JSON with a plain open-and-write; :func:`make_saving_atomic` makes
both of its writers (``--benchmark-json`` and autosave storage) write a temporary file, fsync and
rename it (common.files.write_atomic), so a reader never sees a half-written results file, and
refuses to write over a file that something else changed during the run. This patches two
attributes of pytest-benchmark's session objects (``save_json`` and ``storage.save``), the only
private surface poolbench touches; tests/test_disk_faults.py runs it against real full disks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench import benchmark_api, stopping
from common.files import write_atomic


class SaveError(Exception):
    """A results file could not be saved, or would have replaced one that changed under the run.

    The message is one line for the user: the file, the reason and what to do.
    """


def reason(exc: OSError) -> str:
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
        return f"{what}: cannot write in folder {str(folder)!r} ({reason(exc)}); choose a writable folder"
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
            f"{path}: could not be saved ({reason(exc)}); any earlier file there is untouched; "
            "free space or choose a writable folder"
        ) from None


def make_saving_atomic(session: Any) -> None:
    """Route pytest-benchmark's two writers through :func:`save_results` (same names, same content)."""
    json_target = Path(session.json) if session.json else None
    json_identity = file_identity(json_target) if json_target else None

    session.poolbench_saved = []  # the files written, for the end-of-run summary

    def save_json(output_json: dict) -> None:
        save_results(Path(session.json), _dumps(output_json), json_identity)
        session.poolbench_saved.append(Path(session.json))
        session.logger.info(f"Wrote benchmark data in: {session.json}", purple=True)

    storage = session.storage

    def save_storage(output_json: dict, save: str) -> None:
        output_file = benchmark_api.next_storage_file(storage, save)
        # An autosave never replaces an earlier run: the name it takes must still be free.
        save_results(output_file, _dumps(output_json), None)
        session.poolbench_saved.append(output_file)
        session.logger.info(f"Saved benchmark data in: {output_file}")

    session.save_json = save_json
    if benchmark_api.is_file_storage(storage):  # its internals were checked at start (benchmark_api.check)
        storage.save = save_storage
