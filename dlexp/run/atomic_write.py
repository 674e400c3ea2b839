"""Files written atomically: a reader, or a run killed mid-write, sees the old file or the new.

Checkpoints, metrics.json and environment.json are written this way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temp path beside `path` to write; then fsync, rename over `path`, fsync the folder.
    If the body raises, the temp file is removed and `path` is left as it was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)  # fsync flushes the file, whichever descriptor wrote it
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide checkpoints from a shared group
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # no directory fds on Windows; the rename still stands
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_atomically(path: Path, parts) -> None:
    """Write the byte strings `parts` to `path` atomically."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        for part in parts:
            f.write(part)
