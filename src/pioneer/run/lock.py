"""An exclusive lock on a run folder for the life of a training process (rank 0 holds it).

The lock is `RUN/.lock`: an flock()ed file holding the holder's pid, host and start time. The
operating system drops an flock when its process dies, however it dies, so a lock left by a
killed process is free at once; its file still names the dead holder, and the next process
takes it over with a message. A lock file naming a process on another host whose flock is free
is refused (we cannot see that process; on some network file systems flocks are local), with the
fix in the message.

Holding is re-entrant within a process: the CLI takes the lock before it touches the folder and
the training loop takes it again, as the library's entry for Python users.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pioneer.errors import PioneerError

LOCK_FILE = ".lock"


class RunLockError(PioneerError, RuntimeError):
    """The run folder is in use by another process (the message names it and the fix)."""


@dataclass
class _Held:
    fd: int
    count: int


# Locks this process holds, by resolved folder: flock is per open file, so a second open by the
# same process would otherwise lock itself out.
_HELD: dict[Path, _Held] = {}


def _holder_info() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _read_info(fd: int) -> dict[str, object]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        info = json.loads(data.decode()) if data.strip() else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def describe_holder(info: dict[str, object]) -> str:
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} (since {info.get('started', '?')})"


def _acquire(folder: Path, note: Callable[[str], None]) -> int:
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            os.close(fd)
            raise RunLockError(f"run folder {folder} is in use by {describe_holder(info)}: wait for that training "
                               f"to finish or stop it (kill {info.get('pid', 'PID')}), or train into another folder")
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise RunLockError(f"cannot lock {path}: this file system does not support locks ({e.strerror}); "
                                   f"train into a folder on a local disk") from e
            raise
        # The previous holder may have removed the file between our open and our flock: then we
        # hold a lock on a deleted file, so start again on the new one.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_info(fd)
    if previous:
        here = socket.gethostname()
        pid = previous.get("pid")
        if previous.get("host") != here:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise RunLockError(f"run folder {folder} is locked by {describe_holder(previous)}, another machine: if no "
                               f"training runs there any more, delete {path} and start again")
        state = "no longer running" if not (isinstance(pid, int) and _pid_alive(pid)) else "its lock was released"
        note(f"taking over the lock of {folder} left by {describe_holder(previous)}, {state}")
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(_holder_info()) + "\n").encode())
        os.fsync(fd)
    except OSError as e:  # a full or read-only disk: give the lock back and name the file
        _release(folder, fd)
        raise OSError(e.errno, e.strerror, str(path)) from e
    return fd


def _release(folder: Path, fd: int) -> None:
    # Remove the file while still holding the lock, so nobody reads a stale holder from it.
    with contextlib.suppress(OSError):
        (folder / LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def hold(folder: str | Path, enabled: bool = True, note: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the lock of `folder` (created if needed) for the body; RunLockError when another
    process holds it. enabled=False (ranks other than 0) does nothing."""
    if not enabled:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    held = _HELD.get(key)
    if held is None:
        held = _HELD[key] = _Held(_acquire(folder, note), 0)
    held.count += 1
    try:
        yield
    finally:
        held.count -= 1
        if held.count == 0:
            del _HELD[key]
            _release(folder, held.fd)


def is_lock_file(path: Path) -> bool:
    return path.name == LOCK_FILE
