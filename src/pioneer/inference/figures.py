"""Figure layouts of the paper, from Python as from the command line: an interpolation strip, a
grid framed by its four inputs, the hexagon of Fig. 1 with its six inputs below. Each returns an
(H, W, 3) uint8 image (`pioneer.images.save_png` writes it)."""

from __future__ import annotations

import numpy as np
import torch

from pioneer.images import make_grid, place_tiles


def strip_figure(strip: torch.Tensor, inputs: torch.Tensor | None = None) -> np.ndarray:
    """Images (S, 3, r, r) in a row, between the two inputs (2, 3, r, r) when given."""
    if inputs is not None:
        strip = torch.cat([inputs[:1], strip, inputs[1:]])
    return make_grid(strip, len(strip))


def grid_figure(grid: torch.Tensor, inputs: torch.Tensor | None = None) -> np.ndarray:
    """A (rows, cols, 3, r, r) grid; with the four corner inputs (4, 3, r, r) beside their corners."""
    rows, cols = grid.shape[:2]
    if inputs is None:
        return make_grid(grid.flatten(0, 1), cols)
    return make_grid(frame_corners(grid, inputs), cols + 2)


def hex_figure(images: torch.Tensor, positions: torch.Tensor, inputs: torch.Tensor | None = None) -> np.ndarray:
    """The hexagon's images (M, 3, r, r) at their cell positions (M, 2); the six inputs in a row below."""
    if inputs is not None:
        images, positions = inputs_below(images, positions, inputs)
    return place_tiles(images, positions)


def frame_corners(grid: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """(rows, cols, 3, r, r) -> rows x (cols + 2) images, flattened: each input beside its corner,
    white elsewhere in the side columns."""
    rows = grid.shape[0]
    side = torch.ones_like(grid[:, :1])                       # (rows, 1, 3, r, r) white in [-1, 1]
    left, right = side.clone(), side.clone()
    left[0, 0], right[0, 0], left[rows - 1, 0], right[rows - 1, 0] = inputs[0], inputs[1], inputs[2], inputs[3]
    return torch.cat([left, grid, right], dim=1).flatten(0, 1)


def inputs_below(images: torch.Tensor, positions: torch.Tensor, inputs: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the six inputs as a row under the hexagon (as in Fig. 1)."""
    width = float(positions[:, 0].max())
    gap = max(1.0, width / 5)
    x0 = (width - 5 * gap) / 2
    below = torch.tensor([[x0 + gap * i, float(positions[:, 1].max()) + 1.25] for i in range(6)])
    return torch.cat([images, inputs]), torch.cat([positions, below])
