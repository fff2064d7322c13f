"""Conversions between uint8 images and network tensors, and image grids saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .checkpoint import atomic_write


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) in [0, 255] -> float32 in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (B, 3, H, W) in [-1, 1] -> uint8 in [0, 255] (clamped)."""
    return ((images.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, cols: int, min_cell: int = 64, pad: int = 2) -> np.ndarray:
    """Tile float images (N, 3, r, r) in [-1, 1] into an (H, W, 3) uint8 array.

    Small images are enlarged (nearest) to at least `min_cell` pixels so that 4x4 and 8x8
    phases can still be looked at.
    """
    n, _, r, _ = images.shape
    if r < min_cell:
        images = F.interpolate(images.float(), scale_factor=min_cell // r, mode="nearest")
        r = images.shape[-1]
    rows = (n + cols - 1) // cols
    canvas = torch.full((3, rows * (r + pad) + pad, cols * (r + pad) + pad), 255, dtype=torch.uint8)
    tiles = to_uint8(images.cpu())
    for i in range(n):
        y, x = divmod(i, cols)
        canvas[:, pad + y * (r + pad): pad + y * (r + pad) + r, pad + x * (r + pad): pad + x * (r + pad) + r] = tiles[i]
    return canvas.permute(1, 2, 0).numpy()


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Save an (H, W, 3) uint8 array as PNG, atomically."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, ...) and (N, ...) -> (2N, ...) as a0, b0, a1, b1, ... (input next to reconstruction)."""
    return torch.stack([a, b], dim=1).flatten(0, 1)
