"""Tests of pioneer.inference.latent (interpolation, layouts, attribute vectors, edits) and the tile layout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pioneer.inference import latent
from pioneer.images import make_grid, place_tiles
from pioneer.inference.latent import AttributeVector

D = 16


def _codes(n: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, D, generator=torch.Generator().manual_seed(seed)), dim=1)


def _angles(path: torch.Tensor) -> torch.Tensor:
    """Angles between consecutive unit vectors of a path (S, D): (S - 1,)."""
    cos = (path[1:] * path[:-1]).sum(-1).clamp(-1, 1)
    return torch.acos(cos.double())


# ------------------------------------------------------------------------------------------------
# slerp / lerp


def test_slerp_endpoints_norm_and_constant_angular_step():
    a, b = _codes(2)
    path = latent.interpolate(a, b, 9)
    assert path.shape == (9, D)
    torch.testing.assert_close(path[0], a, atol=1e-6, rtol=0)
    torch.testing.assert_close(path[-1], b, atol=1e-6, rtol=0)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9), atol=1e-6, rtol=0)
    total = math.acos(float((a * b).sum()))
    steps = _angles(path)
    assert torch.allclose(steps, torch.full_like(steps, total / 8), atol=1e-5)
    # the path stays on the great circle: every point is a combination of a and b only
    basis = torch.linalg.qr(torch.stack([a, b]).T).Q            # (D, 2)
    residual = path - (path @ basis) @ basis.T
    assert residual.abs().max() < 1e-5


def test_slerp_broadcasts_and_handles_parallel_codes():
    a, b = _codes(4, seed=1), _codes(4, seed=2)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    out = latent.slerp(a, b, t)                                  # one t per pair
    assert out.shape == (4, D)
    torch.testing.assert_close(out[0], a[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[3], b[3], atol=1e-6, rtol=0)
    same = latent.interpolate(a[0], a[0], 5)                     # zero angle: no 0/0
    assert torch.isfinite(same).all()
    torch.testing.assert_close(same, a[0].expand(5, D), atol=1e-6, rtol=0)
    # inputs off the sphere are projected first
    torch.testing.assert_close(latent.slerp(3 * a[0], 0.5 * b[0], 0.0), a[0], atol=1e-6, rtol=0)


def test_lerp_is_on_the_sphere_with_uneven_steps():
    a, b = _codes(2, seed=3)
    b = F.normalize(-a + 0.3 * b, dim=0)                          # a wide angle makes the difference visible
    path = latent.interpolate(a, b, 9, method="lerp")
    torch.testing.assert_close(path.norm(dim=1), torch.ones(9), atol=1e-6, rtol=0)
    torch.testing.assert_close(path[0], a, atol=1e-6, rtol=0)
    torch.testing.assert_close(path[-1], b, atol=1e-6, rtol=0)
    steps = _angles(path)
    assert steps[4] > 1.5 * steps[0]                             # faster in the middle than slerp
    with pytest.raises(ValueError, match="unknown"):
        latent.interpolate(a, b, 4, method="cubic")
    with pytest.raises(ValueError, match="at least 2"):
        latent.interpolate(a, b, 1)


# ------------------------------------------------------------------------------------------------
# layouts


def test_grid4_corners_edges_and_norms():
    corners = _codes(4, seed=4)
    grid = latent.grid4(corners, 5, 7)
    assert grid.shape == (5, 7, D)
    for (i, j), k in zip([(0, 0), (0, -1), (-1, 0), (-1, -1)], range(4)):
        torch.testing.assert_close(grid[i, j], corners[k], atol=1e-6, rtol=0)
    torch.testing.assert_close(grid.norm(dim=-1), torch.ones(5, 7), atol=1e-6, rtol=0)
    # the top and bottom rows are plain slerp strips; so is every column (bilinear slerp)
    torch.testing.assert_close(grid[0], latent.interpolate(corners[0], corners[1], 7), atol=1e-6, rtol=0)
    torch.testing.assert_close(grid[-1], latent.interpolate(corners[2], corners[3], 7), atol=1e-6, rtol=0)
    torch.testing.assert_close(grid[:, 3], latent.interpolate(grid[0, 3], grid[-1, 3], 5), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="4 corner"):
        latent.grid4(corners[:3], 4)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_hex6_layout(radius):
    corners = _codes(6, seed=5)
    codes, pos = latent.hex6(corners, radius)
    n = radius
    assert codes.shape == (3 * n * (n + 1) + 1, D) and pos.shape == (len(codes), 2)
    torch.testing.assert_close(codes.norm(dim=1), torch.ones(len(codes)), atol=1e-6, rtol=0)
    idx = latent.hex_corner_indices(radius)
    torch.testing.assert_close(codes[idx], corners, atol=1e-6, rtol=0)
    # rows of n+1 .. 2n+1 .. n+1 cells, each row offset by half a cell, within [0, 2n]
    rows = torch.unique(pos[:, 1], return_counts=True)[1].tolist()
    assert rows == [2 * n + 1 - abs(r) for r in range(-n, n + 1)]
    assert pos.min() == 0 and pos[:, 0].max() == 2 * n and pos[:, 1].max() == 2 * n
    # the top row runs from corner 0 to corner 1 by plain slerp; the centre is the mean direction
    top = codes[pos[:, 1] == 0]
    torch.testing.assert_close(top, latent.interpolate(corners[0], corners[1], n + 1), atol=1e-6, rtol=0)
    centre = codes[(pos[:, 0] == n) & (pos[:, 1] == n)][0]
    torch.testing.assert_close(centre, F.normalize(corners.mean(0), dim=0), atol=1e-6, rtol=0)


def test_place_tiles_puts_each_image_at_its_cell():
    images = torch.stack([torch.full((3, 8, 8), v) for v in (-1.0, 0.0, 1.0)])
    pos = torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.5, 1.0]])
    canvas = place_tiles(images, pos, min_cell=8, pad=2)
    step = 8 + 2
    assert canvas.shape == (2 + step * 2, 2 + int(round(1.5 * step)) + step, 3)
    assert (canvas[2:10, 2:10] == 0).all()                       # black tile at (0, 0)
    assert (canvas[2:10, 17:25] == 128).all()                    # grey tile at x = 1.5 cells
    assert (canvas[12:20, 7:15] == 255).all()
    grid = make_grid(images, 3, min_cell=8)
    assert grid.shape == (12, 32, 3)
    with pytest.raises(ValueError, match="positions"):
        place_tiles(images, pos[:2])


# ------------------------------------------------------------------------------------------------
# attribute vectors and edits


def test_mean_difference_and_edits():
    z_with, z_without = _codes(5, seed=6), _codes(7, seed=7)
    v = latent.mean_difference(z_with, z_without)
    torch.testing.assert_close(v, z_with.mean(0) - z_without.mean(0))
    z = _codes(3, seed=8)
    torch.testing.assert_close(latent.edit(z, [v], [0.0]), z, atol=1e-6, rtol=0)
    out = latent.edit(z, [v], [2.0])
    torch.testing.assert_close(out, F.normalize(z + 2 * v, dim=1))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    assert ((out - z) @ v > 0).all()                             # moved along the vector
    w = _codes(1, seed=9)[0]
    torch.testing.assert_close(latent.edit(z, torch.stack([v, w]), [1.0, -0.5]), F.normalize(z + v - 0.5 * w, dim=1))
    strip = latent.edit_strip(z, v, [-2.0, 0.0, 2.0])
    assert strip.shape == (3, 3, D)
    torch.testing.assert_close(strip[:, 1], z, atol=1e-6, rtol=0)
    torch.testing.assert_close(strip[:, 2], out)
    with pytest.raises(ValueError, match="strength"):
        latent.edit(z, [v], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        latent.mean_difference(z_with[:0], z_without)


def test_parse_strengths():
    assert latent.parse_strengths("-2:2:5") == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert latent.parse_strengths("-1, 0.5") == [-1.0, 0.5]
    assert latent.parse_strengths("1.5") == [1.5]
    assert latent.parse_strengths("3:9:1") == [3.0]
    for bad in ("", "a", "1:2", "1:2:0", "nan", "1:2:x"):
        with pytest.raises(ValueError, match="START:STOP:COUNT"):
            latent.parse_strengths(bad)


def test_attribute_vector_file_round_trip(tmp_path):
    vec = AttributeVector(torch.randn(D), "Smiling", 64, 60, model="abc123", snapshot="run/snapshot.safetensors",
                          source="synthetic faces")
    vec.save(tmp_path / "smile.safetensors")
    back = AttributeVector.load(tmp_path / "smile.safetensors")
    assert torch.equal(back.vector, vec.vector)
    assert (back.attribute, back.count_with, back.count_without, back.model, back.snapshot, back.source) == (
        "Smiling", 64, 60, "abc123", "run/snapshot.safetensors", "synthetic faces")
    assert back.norm == pytest.approx(float(vec.vector.norm())) and back.latent_dim == D
    assert "Smiling" in back.describe() and "64" in back.describe()
    with pytest.raises(ValueError, match="does not exist"):
        AttributeVector.load(tmp_path / "missing.safetensors")
    (tmp_path / "text.safetensors").write_text("not a tensor file")
    with pytest.raises(ValueError, match="text.safetensors"):
        AttributeVector.load(tmp_path / "text.safetensors")
    from safetensors.torch import save_file
    save_file({"weight": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a pioneer attribute vector"):
        AttributeVector.load(tmp_path / "other.safetensors")
