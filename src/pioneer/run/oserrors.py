"""Operating-system errors a user meets (disk full, permissions, read-only folders), as one line
naming the path and the fix; and the policy for checkpoint writes that fail during a run.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_FIXES = {
    errno.ENOSPC: ("no space left on the device", "free some space or write somewhere else"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write somewhere else"),
    errno.EROFS: ("the file system is read-only", "write to a writable folder"),
    errno.EACCES: ("permission denied", "fix its permissions or write to a folder you own"),
    errno.EPERM: ("operation not permitted", "fix its permissions or write to a folder you own"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.EISDIR: ("it is a folder, not a file", "give a file name"),
    errno.EIO: ("input/output error (a failing disk or a lost network mount)", "check the device"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n)"),
    errno.ENAMETOOLONG: ("the file name is too long", "use a shorter path"),
}


def one_line(e: OSError, doing: str = "", where: str | Path | None = None) -> str:
    """'cannot write PATH: disk full; free some space ...' from an OSError. where: named instead
    of the path when the error has none (a failed flush of an open file)."""
    path = e.filename if e.filename is not None else (f"in {where}" if where is not None else "")
    what, fix = _FIXES.get(e.errno or 0, (e.strerror or str(e), "check the path and try again"))
    head = f"{doing} {path}".strip() if doing else (f"{path}" if path else "")
    return f"{head + ': ' if head else ''}{what}; {fix}"


@dataclass
class WriteGuard:
    """Checkpoint writes during a run: a failed write warns and keeps the previous checkpoint (the
    writes are atomic), the next interval retries, and after `max_failures` failures in a row
    the run asks to stop (`exhausted`). `warn` prints a line."""

    warn: Callable[[str], None]
    max_failures: int = 3
    failures: int = 0
    last_error: str | None = None

    def attempt(self, write: Callable[[], None], what: str) -> bool:
        try:
            write()
        except OSError as e:
            self.failures += 1
            self.last_error = one_line(e, "cannot write")
            left = self.max_failures - self.failures
            then = ("retrying at the next interval" + (f" ({left} more tries)" if left < 100 else "")
                    if left > 0 else "stopping the run")
            self.warn(f"warning: {what} failed: {self.last_error}; the previous files are kept; {then}")
            return False
        self.failures, self.last_error = 0, None
        return True

    @property
    def exhausted(self) -> bool:
        return self.failures >= self.max_failures
