"""Ctrl-C and SIGTERM ask training to stop at the next record, checkpoint and exit."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import torch

from pioneer import distributed as dist


class StopRequest:
    """Set by SIGINT / SIGTERM while installed (`stop_requests()`)."""

    def __init__(self) -> None:
        self.requested = False

    def agreed(self, device: torch.device) -> bool:
        """Whether any rank was asked to stop. Collective: every rank must agree to stop, or the
        others would wait forever in the next collective."""
        flag = torch.tensor([float(self.requested)], device=device)
        return dist.all_reduce_mean(flag).item() > 0


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Install the handlers for the block and give the previous ones back after it. Outside the
    main thread signals cannot be caught: the request then never fires."""
    request = StopRequest()

    def handle(signum: int, frame: Any) -> None:
        request.requested = True

    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handle)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield request
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
