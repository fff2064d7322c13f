"""Durable file writes: a file is either its old version or the complete new one, never half of it."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file, or a folder on POSIX (makes a rename inside it durable); best effort for folders."""
    path = Path(path)
    if path.is_dir():
        if os.name != "posix":
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems refuse fsync on folders; the data files were synced
        finally:
            os.close(fd)
    else:
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None],
                 before_replace: Callable[[], None] | None = None) -> None:
    """Write a file through `write(fileobj)`: into a hidden temporary file in the same folder,
    fsync'ed, then renamed over `path`. A killed process leaves the old file (and at worst a
    stray `.NAME.*.tmp`, removed by the next training start), never a half-written one.
    before_replace: called once the new file is complete, just before it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
