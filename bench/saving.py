"""Result files that are never half-written, never lost, never written over another run's.

pytest-benchmark writes its own JSON with a plain open-and-write; :func:`make_saving_atomic` makes
both of its writers (``--benchmark-json`` and autosave storage) write a temporary file, fsync and
rename it (common.files.write_atomic), so a reader never sees a half-written results file, and
refuses to write over a file that something else changed during the run. Replacing the writers is
done through bench/benchmark_api.py, as is everything else taken from pytest-benchmark beyond its
documented API; tests/test_disk_faults.py runs it against real full disks.
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
    json_target = benchmark_api.json_file(session)
    json_identity = file_identity(json_target) if json_target else None

    def save_json(output_json: dict) -> None:
        assert json_target is not None
        save_results(json_target, benchmark_api.dumps(output_json), json_identity)
        benchmark_api.note_saved(session, json_target)
        benchmark_api.say(session, f"Wrote benchmark data in: {json_target}", purple=True)

    def save_storage(output_json: dict, save: str) -> None:
        output_file = benchmark_api.next_storage_file(session, save)
        # An autosave never replaces an earlier run: the name it takes must still be free.
        save_results(output_file, benchmark_api.dumps(output_json), None)
        benchmark_api.note_saved(session, output_file)
        benchmark_api.say(session, f"Saved benchmark data in: {output_file}")

    benchmark_api.replace_writers(session, save_json, save_storage)
