"""Training batches: the shuffled index stream and real images as the networks take them."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from pioneer.images import to_float


class IndexStream:
    """An endless stream of shuffled training indices: one permutation per epoch, seeded by
    (seed, epoch) so that only (epoch, position) needs saving for an exact resume."""

    def __init__(self, indices: torch.Tensor, seed: int) -> None:
        self.indices = indices
        self.seed = seed
        self.epoch = 0
        self.pos = 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return self.indices[torch.randperm(len(self.indices), generator=g)]

    def take(self, n: int) -> torch.Tensor:
        out = []
        while n > 0:
            if self.pos == len(self._perm):
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation()
            k = min(n, len(self._perm) - self.pos)
            out.append(self._perm[self.pos:self.pos + k])
            self.pos, n = self.pos + k, n - k
        return torch.cat(out)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, s: dict[str, int]) -> None:
        self.epoch, self.pos = int(s["epoch"]), int(s["pos"])
        self._perm = self._permutation()


def fade_images(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images during fade-in: alpha * x + (1 - alpha) * upsample(downsample(x))."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, alpha)


def real_batch(pyramid: Any, idx: torch.Tensor, resolution: int, device: torch.device, channels_last: bool,
               alpha: float = 1.0, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Real images `idx` at `resolution` as the networks take them: (B, 3, r, r) float in
    [-1, 1] on `device`, mirrored where `flip` (B,) is true, faded by `alpha`."""
    images = pyramid.images(idx, resolution)                  # (B, 3, r, r) uint8 from the cache
    if device.type == "cuda":
        # Upload uint8 (4x fewer bytes) from pinned memory without blocking the host, so the
        # host queues the next kernels while the copy runs; convert on the GPU.
        images = images.pin_memory()
    x = to_float(images.to(device, non_blocking=True))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return fade_images(x, alpha)
