"""What the facade accepts as images, and how it turns them into network inputs.

Inputs may be file paths, PIL images, numpy arrays (H, W, 3) / (N, H, W, 3) (uint8, or float
in [0, 1]), torch tensors (3, H, W) / (N, 3, H, W) (uint8, or float in [-1, 1] as the networks
use), or lists of these. They are center-cropped to a square and resized to the model's
resolution r with the same decoding as the training data (`pioneer.data.sources`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps

from pioneer.errors import PioneerError
from pioneer.data.sources import decode_image, square_resize, to_rgb  # the training data's decoding
from pioneer.images import to_float, to_uint8

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]
Images = Union[ImageInput, Sequence[ImageInput]]


class InputError(PioneerError, ValueError):
    """An input that cannot be used as an image or a code; the message names it."""


def resolve_device(device: torch.device | str | None) -> torch.device:
    """None -> the GPU when there is one, else the CPU; InputError for an unusable device."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise InputError(f"device {device!r} is not understood: use 'cpu', 'cuda' or 'cuda:N'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} is not available here (no CUDA GPU): use 'cpu'")
    return dev


def as_sequence(images: Images) -> Sequence[Any]:
    """One image or many -> something with len() and slicing: a batched tensor or a list."""
    if isinstance(images, torch.Tensor):
        return images if images.ndim == 4 else [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return [images]
    if isinstance(images, Sequence):
        return list(images)
    raise InputError(f"cannot use a {type(images).__name__} as images: give a path, a PIL image, an array, "
                     "a tensor or a list of these")


def array_to_pil(a: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 3) or (H, W, 4) array, uint8 or float in [0, 1] -> PIL image."""
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise InputError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)   # skimage / matplotlib convention
    elif a.dtype != np.uint8:
        raise InputError(f"image arrays must be uint8 or float in [0, 1], got {a.dtype}")
    return Image.fromarray(np.ascontiguousarray(a))


def to_batches(images: Images, r: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Images (any accepted kind) -> float batches (B, 3, r, r) in [-1, 1] on the CPU,
    converting only one batch at a time."""
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size} must be at least 1")
    items = as_sequence(images)
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        if isinstance(chunk, torch.Tensor):
            yield convert_tensor(chunk, r)
        else:
            yield torch.stack([convert_one(item, r) for item in chunk])


def convert_one(item: ImageInput, r: int) -> torch.Tensor:
    """One image -> (3, r, r) float in [-1, 1]."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise InputError(f"image file {path} does not exist")
        array = decode_image(path, r, name=str(path))   # ImageError names the file
    elif isinstance(item, Image.Image):
        array = np.asarray(square_resize(to_rgb(ImageOps.exif_transpose(item)), r))
    elif isinstance(item, np.ndarray):
        array = np.asarray(square_resize(to_rgb(array_to_pil(item)), r))
    elif isinstance(item, torch.Tensor):
        return convert_tensor(item[None], r)[0]
    else:
        raise InputError(f"cannot use a {type(item).__name__} as an image: give a file path, a PIL image, "
                         "an (H, W, 3) array or a (3, H, W) tensor")
    return to_float(torch.from_numpy(array.copy()).permute(2, 0, 1))


def convert_tensor(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C, H, W) uint8 or float tensor -> (B, 3, r, r) float in [-1, 1]."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        hint = " (channels last? use .permute(0, 3, 1, 2))" if x.ndim == 4 and x.shape[-1] in (1, 3) else ""
        raise InputError(f"an image tensor must be (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}{hint}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise InputError(f"image tensors must be uint8 or float, got {x.dtype}")
    x = x.detach().cpu().expand(-1, 3, -1, -1)
    if x.shape[-2:] == (r, r):
        return to_float(x) if x.dtype == torch.uint8 else x.float()
    # Another size: resize like every other input (center crop, Lanczos) through 8 bits.
    u8 = x if x.dtype == torch.uint8 else to_uint8(x)
    arrays = [np.asarray(square_resize(Image.fromarray(a), r)) for a in u8.permute(0, 2, 3, 1).numpy()]
    return to_float(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2))
