"""When a stop request (SIGINT / SIGTERM) takes effect.

On one process the training loop reads its stop flag after every iteration: a Python bool, no
host-device sync. Across ranks every process must leave the loop at the same iteration, or the
others would wait forever in the next collective, so the ranks agree with one all-reduce of the
flag every STOP_CHECK_EVERY iterations (and at every stats record): a stop takes effect within
STOP_CHECK_EVERY iterations there. One small all-reduce per 4 iterations costs well under 1 % of
an iteration at the sizes multi-GPU runs use.
"""

from __future__ import annotations

import torch

from pioneer import distributed as dist

STOP_CHECK_EVERY = 4


def stop_agreed(flag: bool, iteration: int, device: torch.device) -> bool:
    """True when every rank should stop after this iteration (same answer on every rank)."""
    if dist.world_size() == 1:
        return flag
    if iteration % STOP_CHECK_EVERY:
        return False
    return dist.all_reduce_mean(torch.tensor([float(flag)], device=device)).item() > 0
