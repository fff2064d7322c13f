"""Ctrl-C and SIGTERM while a command starts: recorded at once, acted on at safe points.

Python runs a signal handler between two bytecodes of the main thread, wherever that thread is.
A handler that raises KeyboardInterrupt there can be lost (inside an import that a library
wraps in a bare `except:`, or in a finaliser, where the exception is printed and dropped) or
abort the process (inside Python code called back from C++: pybind11 turns the exception into
a C++ one, and where nothing catches it: "terminate called after throwing an instance of
'pybind11::error_already_set'"). Importing torch and its extensions runs much such code.

So `pioneer.entry` calls `record()` first: from then on SIGINT and SIGTERM only note the
request. The command calls `check()` where raising is safe (after the imports, before and
while the image cache is built, before the first training iteration); it raises
KeyboardInterrupt, which the entry point turns into "interrupted" and exit status 130. Commands
other than `pioneer train` call `release()` once they start, which restores the ordinary
raising Ctrl-C. The training loop takes a recorded request over with `take()` when it
installs its own handlers (training/signals.py).

Signal handlers belong to the process, so this state does too: one module-level recorder.
Until `record()` is called (the library used from Python, tests) every function here does
nothing. Imports only the standard library: it runs before torch is imported.
"""

from __future__ import annotations

import signal
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Recorder:
    def __init__(self) -> None:
        self.recording = False           # record() installed the handlers and release() was not called
        self.signum: int | None = None   # the first signal received while recording, until taken

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum


_recorder = _Recorder()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def record() -> None:
    """From now on SIGINT and SIGTERM only record a stop request (call from the main thread)."""
    for sig in SIGNALS:
        signal.signal(sig, _recorder.handle)
    _recorder.recording = True


def recording() -> bool:
    """Whether signals are being recorded rather than raised."""
    return _recorder.recording


def requested() -> bool:
    """Whether a stop was recorded and not yet taken."""
    return _recorder.signum is not None


def check() -> None:
    """A safe point: raise KeyboardInterrupt when a stop was recorded."""
    if _recorder.signum is not None:
        _recorder.signum = None
        raise KeyboardInterrupt


def take() -> bool:
    """Whether a stop was recorded, forgetting it: the caller now owns the request."""
    pending, _recorder.signum = _recorder.signum is not None, None
    return pending


def release() -> None:
    """Back to the ordinary behaviour, SIGINT and SIGTERM raising KeyboardInterrupt wherever the
    program is (for commands that may run long outside the training loop, e.g. the demo's
    server). A request recorded before is raised now. Does nothing unless `record()` was called."""
    if not _recorder.recording:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _recorder.recording = False
    check()
