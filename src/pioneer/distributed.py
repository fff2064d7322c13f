"""The same training code on CPU, one GPU, many GPUs and many nodes.

Launch with torchrun for more than one process; it sets RANK / WORLD_SIZE / LOCAL_RANK and we
initialise NCCL on GPU or gloo on CPU. Gradients are averaged explicitly after each backward
(no DDP wrapper): the encoder and decoder steps update one network each while gradients flow
through the other, which a DDP wrapper handles poorly. Spectral-norm vectors stay identical on
every rank because their power iteration depends only on the (identical) weights; we also
broadcast all parameters and buffers from rank 0 at start and after a resume.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn


def init(device: str | None = None) -> torch.device:
    """Start the process group when launched by torchrun; return this process's device."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            device = f"cuda:{local}" if world > 1 else "cuda"
        torch.cuda.set_device(torch.device(device))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        # Generous timeout: the other ranks wait in a barrier while rank 0 decodes the data set
        # into its cache once (tens of minutes for LSUN-sized data).
        dist.init_process_group(backend=backend, timeout=timedelta(hours=3))
    return torch.device(device)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def print0(*args: object, **kwargs: object) -> None:
    if is_main():
        print(*args, **kwargs)  # type: ignore[arg-type]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers (SN vectors included) to every rank."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """All-reduce and average the gradients of `params` over ranks, in one flat buffer."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradients over ranks and keeps this rank's
    slice (all-reduce based, so it works on gloo as well as NCCL)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.batch = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = rank() * ctx.batch
        return grad[start:start + ctx.batch]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) on each rank -> (world * B, ...), differentiable; identity on one process.

    Used for the batch statistics of the KL estimate, so that they cover the global batch as
    in the official single-device (DataParallel) setup. With gradients averaged over ranks
    afterwards, the result equals the single-process gradient on the same global batch.
    """
    if world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (for logging)."""
    if world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / world_size()
