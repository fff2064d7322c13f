"""The latent space on the unit sphere: interpolation, layouts, attribute vectors and edits.

Pure tensor functions (no networks): codes are float tensors of shape (..., D), unit-norm as
the encoder and the prior produce them.

* `slerp` (spherical, the paper's choice) and `lerp` (linear, re-normalised onto the sphere);
* `interpolate` (a strip between two codes), `grid4` (four corners, bilinear slerp, the
  supplement's figures) and `hex6` (six corners of a hexagon, the layout of the paper's Fig. 1);
* `mean_difference` (an attribute vector, Sec. 3.4: mean code of images with the attribute
  minus mean code of images without), the `AttributeVector` file format, and `edit` /
  `edit_strip` (z + sum_i lambda_i v_i, re-normalised onto the sphere).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from safetensors.torch import save as st_save

from pioneer.atomic import atomic_write
from pioneer.run.checkpoint import read_safetensors

Method = Literal["slerp", "lerp"]
METHODS: tuple[str, ...] = ("slerp", "lerp")

VECTOR_FORMAT = "pioneer-attribute-vector"
VECTOR_VERSION = 1


def normalize(z: torch.Tensor) -> torch.Tensor:
    """Project codes (..., D) onto the unit sphere."""
    return F.normalize(z.float(), dim=-1)


def _weights(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    # t (...) -> (..., 1), so that it broadcasts against codes (..., D)
    return torch.as_tensor(t, dtype=like.dtype, device=like.device)[..., None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between codes a and b (..., D) at fractions t (broadcast to ...).

    The path runs along the great circle at constant angular speed: t = 0 gives a, t = 1 gives
    b, and every point is on the unit sphere. For (nearly) parallel codes it falls back to the
    normalised linear path (the same curve in the limit). Antipodal codes have no unique great
    circle; the result there is undefined (real codes are never antipodal).
    """
    a, b = normalize(a), normalize(b)
    t = _weights(t, a)
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)                                    # (..., 1) angle between a and b
    sin = torch.sin(omega)
    parallel = sin < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)   # avoid 0/0 in the unused branch
    wa = torch.where(parallel, 1.0 - t, torch.sin((1.0 - t) * omega) / safe)
    wb = torch.where(parallel, t, torch.sin(t * omega) / safe)
    out = wa * a + wb * b
    return torch.where(parallel, normalize(out), out)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation between codes a and b (..., D), projected back onto the sphere.

    The decoder was trained on unit-norm codes only, so the straight chord is re-normalised;
    unlike slerp its angular steps are uneven (faster in the middle).
    """
    a, b = normalize(a), normalize(b)
    return normalize(torch.lerp(a, b, _weights(t, a)))


def _interpolator(method: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | float], torch.Tensor]:
    if method == "slerp":
        return slerp
    if method == "lerp":
        return lerp
    raise ValueError(f"interpolation method {method!r} is unknown: use 'slerp' or 'lerp'")


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: Method = "slerp") -> torch.Tensor:
    """`steps` evenly spaced codes from a to b (D,), both included: (steps, D)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0.0, 1.0, steps)
    return _interpolator(method)(a[None], b[None], t)        # (steps, D)


def grid4(corners: torch.Tensor, rows: int, cols: int | None = None, method: Method = "slerp") -> torch.Tensor:
    """Bilinear interpolation between four corner codes (4, D): top-left, top-right,
    bottom-left, bottom-right. Each row interpolates along the top and bottom edges, then
    between them (with slerp: bilinear slerp). Returns (rows, cols, D); the corners are exact.
    """
    cols = rows if cols is None else cols
    if corners.ndim != 2 or corners.shape[0] != 4:
        raise ValueError(f"grid4 needs 4 corner codes (4, D), got shape {tuple(corners.shape)}")
    if rows < 2 or cols < 2:
        raise ValueError(f"an interpolation grid needs at least 2x2 cells, got {rows}x{cols}")
    fn = _interpolator(method)
    tx = torch.linspace(0.0, 1.0, cols)
    ty = torch.linspace(0.0, 1.0, rows)
    top = fn(corners[0:1], corners[1:2], tx)                  # (cols, D)
    bottom = fn(corners[2:3], corners[3:4], tx)               # (cols, D)
    return fn(top[None], bottom[None], ty[:, None])           # (rows, cols, D)


# Axial hexagon directions, clockwise from the top-left corner, in (q, r) = (column, row)
# coordinates of a hexagonal grid whose rows are offset by half a cell.
_HEX_DIRECTIONS: tuple[tuple[int, int], ...] = ((0, -1), (1, -1), (1, 0), (0, 1), (-1, 1), (-1, 0))


def hex_cells(radius: int) -> list[tuple[int, int]]:
    """The cells (q, r) of a hexagon of `radius` steps from centre to corner, row by row:
    3 * radius * (radius + 1) + 1 cells."""
    if radius < 1:
        raise ValueError(f"a hexagon needs a radius of at least 1, got {radius}")
    n = radius
    return [(q, r) for r in range(-n, n + 1) for q in range(max(-n, -n - r), min(n, n - r) + 1)]


def _hex_sector(q: int, r: int) -> tuple[int, int, int]:
    """Cell (q, r) = a * direction[k] + b * direction[k+1] with a, b >= 0: returns (k, a, b).

    Cells on a spoke belong to two sectors; both give the same code in hex6, the first wins."""
    for k in range(6):
        (x1, y1), (x2, y2) = _HEX_DIRECTIONS[k], _HEX_DIRECTIONS[(k + 1) % 6]
        det = x1 * y2 - x2 * y1                               # +-1: neighbouring directions form a basis
        a, b = (q * y2 - x2 * r) * det, (x1 * r - q * y1) * det
        if a >= 0 and b >= 0:
            return k, a, b
    raise AssertionError(f"cell {(q, r)} lies in no sector")  # unreachable: the sectors tile the plane


def hex6(corners: torch.Tensor, radius: int, method: Method = "slerp") -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolation over a hexagon with six corner codes (6, D), the layout of Fig. 1.

    Corners go clockwise from the top-left: top-left, top-right, right, bottom-right,
    bottom-left, left. The centre is the normalised mean of the corners; a cell in the triangle
    (centre, corner k, corner k+1) lies at fractions a/n and b/n along the two edges and takes
    slerp(centre, slerp(corner k, corner k+1, b / (a + b)), (a + b) / n). So the outline is the
    plain slerp between neighbouring corners and every spoke a slerp from the centre.

    Returns codes (M, D) and positions (M, 2) as (x, y) in cell units, x in [0, 2n] (rows are
    offset by half a cell), y in [0, 2n], M = 3n(n+1) + 1. See `pioneer.images.place_tiles`.
    """
    if corners.ndim != 2 or corners.shape[0] != 6:
        raise ValueError(f"hex6 needs 6 corner codes (6, D), got shape {tuple(corners.shape)}")
    fn = _interpolator(method)
    corners = normalize(corners)
    centre = normalize(corners.mean(0))                       # (D,)
    n = radius
    codes, positions = [], []
    for q, r in hex_cells(radius):
        k, a, b = _hex_sector(q, r)
        if a + b == 0:
            code = centre
        else:
            edge = fn(corners[k], corners[(k + 1) % 6], b / (a + b))
            code = fn(centre, edge, (a + b) / n)
        codes.append(code)
        positions.append((q + r / 2 + n, r + n))
    return torch.stack(codes), torch.tensor(positions, dtype=torch.float32)


def hex_corner_indices(radius: int) -> list[int]:
    """Indices into hex6's output of the six corners, in the order of its `corners`."""
    cells = hex_cells(radius)
    return [cells.index((dq * radius, dr * radius)) for dq, dr in _HEX_DIRECTIONS]


# ----------------------------------------------------------------------------------------------
# Attribute vectors and edits


def mean_difference(codes_with: torch.Tensor, codes_without: torch.Tensor) -> torch.Tensor:
    """Attribute vector (D,): mean code of images with the attribute (A, D) minus the mean code
    of images without it (B, D), as in the paper's Sec. 3.4. Not normalised: its length says
    how far apart the two groups are (the official vectors have norms 0.15-0.35)."""
    if codes_with.ndim != 2 or codes_without.ndim != 2 or codes_with.shape[1] != codes_without.shape[1]:
        raise ValueError(f"codes must be (A, D) and (B, D), got {tuple(codes_with.shape)} and {tuple(codes_without.shape)}")
    if len(codes_with) == 0 or len(codes_without) == 0:
        raise ValueError("an attribute vector needs at least one code with and one without the attribute")
    return codes_with.float().mean(0) - codes_without.float().mean(0)


def edit(z: torch.Tensor, vectors: torch.Tensor | Sequence[torch.Tensor], strengths: Sequence[float] | torch.Tensor
         ) -> torch.Tensor:
    """Move codes z (N, D) by sum_i strengths[i] * vectors[i] and project back onto the sphere.

    vectors: (K, D) or a sequence of K vectors (D,); strengths: K numbers. Returns (N, D).
    """
    if not isinstance(vectors, torch.Tensor):
        vectors = torch.stack(list(vectors)) if len(vectors) else torch.empty(0, z.shape[-1])
    v = vectors.reshape(-1, z.shape[-1]).to(z.device, torch.float32)      # (K, D)
    s = torch.as_tensor(strengths, dtype=torch.float32, device=z.device).reshape(-1)
    if len(s) != len(v):
        raise ValueError(f"{len(v)} vector(s) but {len(s)} strength(s): give one strength per vector")
    return normalize(z.float() + s @ v)


def edit_strip(z: torch.Tensor, vector: torch.Tensor, strengths: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Codes z (N, D) moved by each strength times one vector (D,): (N, S, D), re-normalised."""
    s = torch.as_tensor(strengths, dtype=torch.float32, device=z.device).reshape(-1)   # (S,)
    return normalize(z.float()[:, None, :] + s[None, :, None] * vector.to(z.device, torch.float32))


def parse_strengths(text: str) -> list[float]:
    """'-2:2:5' (start:stop:count, both ends included), '-1,0,1.5' or '2' -> a list of floats,
    each finite and within +-MAX_STRENGTH, at most MAX_STRIP of them."""
    from pioneer.validate import check_strengths

    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            ends = [start, stop]
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
            if not values:
                raise ValueError
            ends, count = values, len(values)
    except ValueError:
        raise ValueError(f"strength {text!r} is not understood: use START:STOP:COUNT (e.g. -2:2:5), "
                         "a comma-separated list (e.g. -1,0,1) or one number") from None
    try:
        check_strengths(ends, count)   # before linspace: a huge COUNT must not allocate
    except ValueError as e:
        raise ValueError(f"strength {text!r}: {e}; use START:STOP:COUNT (e.g. -2:2:5), a comma-separated "
                         "list or one number") from None
    if ":" in text:
        return [start] if count == 1 else torch.linspace(start, stop, count).tolist()
    return values


@dataclass
class AttributeVector:
    """A direction in the latent space and where it came from; saved as a small safetensors file."""

    vector: torch.Tensor                # (D,) mean code with the attribute minus mean code without
    attribute: str                      # e.g. "Smiling"
    count_with: int                     # images with the attribute that were averaged
    count_without: int                  # images without it
    model: str = ""                     # fingerprint of the snapshot whose encoder made the codes
    snapshot: str = ""                  # path of that snapshot, for people (not checked)
    source: str = ""                    # where the images came from (labels file, folders, synthetic)

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    @property
    def latent_dim(self) -> int:
        return int(self.vector.shape[-1])

    def save(self, path: str | Path) -> None:
        """Write the vector with its metadata (atomically)."""
        meta = {
            "format": VECTOR_FORMAT, "version": str(VECTOR_VERSION), "attribute": self.attribute,
            "count_with": str(self.count_with), "count_without": str(self.count_without),
            "model": self.model, "snapshot": self.snapshot, "source": self.source,
            "norm": repr(self.norm), "latent_dim": str(self.latent_dim),
        }
        data = st_save({"vector": self.vector.detach().float().cpu().contiguous()}, metadata=meta)
        atomic_write(path, lambda f: f.write(data))

    @staticmethod
    def load(path: str | Path) -> "AttributeVector":
        """Read a file written by `save`; ValueError naming the file when it is not one."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"attribute vector {path} does not exist: make one with `pioneer attributes`")
        meta, tensors = read_safetensors(path, "a pioneer attribute vector")
        vector = tensors.get("vector")
        if meta.get("format") != VECTOR_FORMAT or vector is None or vector.ndim != 1:
            raise ValueError(f"{path} is not a pioneer attribute vector (make one with `pioneer attributes`)")
        if not bool(torch.isfinite(vector).all()):
            raise ValueError(f"{path} holds NaN or infinite numbers: make the vector again with `pioneer attributes`")
        try:
            return AttributeVector(
                vector=vector.float(), attribute=meta.get("attribute", path.stem),
                count_with=int(meta["count_with"]), count_without=int(meta["count_without"]),
                model=meta.get("model", ""), snapshot=meta.get("snapshot", ""), source=meta.get("source", ""),
            )
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: damaged attribute vector metadata ({e})") from e

    def describe(self) -> str:
        return (f"{self.attribute}: |v| = {self.norm:.3f} from {self.count_with} images with and "
                f"{self.count_without} without ({self.source or 'unknown source'})")

