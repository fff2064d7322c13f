"""Conversions between uint8 images and network tensors, and image grids saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pioneer.atomic import atomic_write


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


def place_tiles(images: torch.Tensor, positions: torch.Tensor, min_cell: int = 64, pad: int = 2) -> np.ndarray:
    """Place float images (N, 3, r, r) in [-1, 1] at positions (N, 2) = (x, y) in cell units
    (fractions allowed, e.g. the half-cell offsets of a hexagonal layout) on a white canvas:
    an (H, W, 3) uint8 array. Small images are enlarged as in `make_grid`."""
    n, _, r, _ = images.shape
    if positions.shape != (n, 2):
        raise ValueError(f"positions must be ({n}, 2), got {tuple(positions.shape)}")
    if r < min_cell:
        images = F.interpolate(images.float(), scale_factor=min_cell // r, mode="nearest")
        r = images.shape[-1]
    step = r + pad
    xy = (positions.double() - positions.double().min(0).values) * step + pad
    corners = xy.round().long().tolist()                      # top-left pixel of each tile
    width = max(x for x, _ in corners) + r + pad
    height = max(y for _, y in corners) + r + pad
    canvas = torch.full((3, height, width), 255, dtype=torch.uint8)
    tiles = to_uint8(images.cpu())
    for tile, (x, y) in zip(tiles, corners):
        canvas[:, y:y + r, x:x + r] = tile
    return canvas.permute(1, 2, 0).numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Float images (N, 3, H, W) in [-1, 1] (or one image (3, H, W)) -> PIL RGB images."""
    if images.ndim == 3:
        images = images[None]
    return [Image.fromarray(a) for a in to_uint8(images.cpu()).permute(0, 2, 3, 1).numpy()]
