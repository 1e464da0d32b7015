"""The one way poolbench writes a whole file: never half-written, never lost on a crash."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` beside ``path`` under a temporary name, fsync, then rename it over ``path``.

    A reader never sees half a file; if the write fails (a full disk, an interruption) the
    temporary file is removed and ``path`` is left as it was. The file gets the permissions
    ``open()`` would give it (mkstemp's are 0600).
    """
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
