"""Spectral-norm vectors that fit the weights they normalise.

torch's parametrizations.spectral_norm divides a weight W by sigma = u^T W v, where u and v
(buffers `_u`, `_v`) advance by one power iteration per forward in training mode only. So
vectors can lag their weights: the EMA decoder never runs a training forward (eval mode, its
weights averaged, not trained), and a trained network's vectors come from the forward before
its last optimiser step. Here:

* refresh_spectral_norm: power iterations on a module's own weights, no forward pass; the
  EMA update runs one per iteration, so G_ema's vectors track its slowly moving weights.
* exact_spectral_vectors: the top singular vectors (float64), for snapshots; sigma = u^T W v is
  then the exact largest singular value.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm


def spectral_norm_layers(module: nn.Module) -> Iterator[tuple[str, nn.Module, _SpectralNorm]]:
    """(state-dict prefix of its vectors, layer, parametrization) of every spectral-normalised
    weight in `module`; the vectors are `prefix + "._u"` and `prefix + "._v"`. Assumes spectral
    norm is the weight's only parametrization (as make_conv builds it): it reads `original`."""
    for name, sub in module.named_modules():
        if parametrize.is_parametrized(sub, "weight"):
            for i, p in enumerate(sub.parametrizations.weight):
                if isinstance(p, _SpectralNorm) and hasattr(p, "_u"):  # 1-d weights have no vectors
                    yield f"{name}.parametrizations.weight.{i}".lstrip("."), sub, p


def weight_matrix(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """The matrix spectral norm works on: `dim` (the output channels) first, the rest flattened.
    (O, C, k, k) -> (O, C*k*k) for a conv."""
    return weight.movedim(dim, 0).flatten(1)


@torch.no_grad()
def power_iteration(layer: nn.Module, sn: _SpectralNorm, iterations: int = 1) -> None:
    """Advance one layer's u, v in place by power iterations on its own weight, as a
    training-mode forward would (u from v, then v from u)."""
    w = weight_matrix(layer.parametrizations.weight.original, sn.dim)      # (O, N)
    for _ in range(iterations):
        sn._u.copy_(F.normalize(torch.mv(w, sn._v), dim=0, eps=sn.eps))
        sn._v.copy_(F.normalize(torch.mv(w.H, sn._u), dim=0, eps=sn.eps))


def refresh_spectral_norm(module: nn.Module, iterations: int = 1) -> None:
    """Advance every spectral-norm u, v of `module` by `iterations` power iterations on the
    module's own weights. Deterministic: no random numbers, no forward pass, any mode."""
    for _, layer, sn in spectral_norm_layers(module):
        power_iteration(layer, sn, iterations)


def sn_buffer_names(module: nn.Module) -> set[str]:
    """State-dict names of the spectral-norm vectors of `module`."""
    return {f"{prefix}.{v}" for prefix, _, _ in spectral_norm_layers(module) for v in ("_u", "_v")}


def top_singular_vectors(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit u (O,), v (N,) with u^T w v = the largest singular value of w (O, N).

    From the eigenvectors of the smaller Gram matrix: a full SVD of a 512 x 8192 conv matrix
    takes seconds on a CPU, eigh of 512 x 512 a fraction of that. In float64 the squared
    condition costs nothing that matters: sigma = |w^T u| is exact to ~1e-15 relative even when
    the top singular values are nearly equal (then any u in their span gives the same sigma).
    """
    if w.shape[0] <= w.shape[1]:
        u = torch.linalg.eigh(w @ w.T).eigenvectors[:, -1]        # eigenvalues ascend
        return u, F.normalize(w.T @ u, dim=0)
    v = torch.linalg.eigh(w.T @ w).eigenvectors[:, -1]
    return F.normalize(w @ v, dim=0), v


@torch.no_grad()
def exact_spectral_vectors(module: nn.Module) -> dict[str, torch.Tensor]:
    """State-dict entries `..._u`, `..._v` holding the exact top singular vectors of each
    spectral-normalised weight of `module` (CPU, the buffers' dtype); the module is not changed.

    With them, sigma = u^T W v is the largest singular value (float64), so W / sigma has
    spectral norm 1 up to float32 rounding.
    """
    out = {}
    for prefix, layer, sn in spectral_norm_layers(module):
        w = weight_matrix(layer.parametrizations.weight.original.detach(), sn.dim).double()  # (O, N)
        u, v = top_singular_vectors(w)
        out[f"{prefix}._u"] = u.to("cpu", sn._u.dtype).contiguous()
        out[f"{prefix}._v"] = v.to("cpu", sn._v.dtype).contiguous()
    return out


def effective_sigmas(module: nn.Module) -> dict[str, float]:
    """Per spectral-normalised layer: the exact spectral norm of the weight it applies in eval
    mode, W / (u^T W v). 1.0 when u, v fit W; above 1 when sigma is underestimated."""
    out = {}
    for prefix, layer, sn in spectral_norm_layers(module):
        w = weight_matrix(layer.parametrizations.weight.original.detach(), sn.dim).double()
        sigma_est = torch.vdot(sn._u.double(), torch.mv(w, sn._v.double()))
        out[prefix.split(".parametrizations")[0]] = float(torch.linalg.matrix_norm(w / sigma_est, ord=2))
    return out
