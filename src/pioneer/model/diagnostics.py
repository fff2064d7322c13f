"""Signals that tell a learning model from a collapsed one.

A collapsed PIONEER has a smooth loss and a low KL while every input maps to nearly the same
code: the codes span few directions, vary little per dimension, and E(G(z)) no longer points
back at z. These functions measure that on a batch of codes; the training loop logs them and
the divergence monitor watches them.

* `effective_rank(z)`: exp of the entropy of the normalised singular values of the centred
  code matrix (Roy & Vetterli 2007). About 1 for codes that differ along one direction; for
  N random unit codes in D dimensions close to min(N, D) (256 in 512-d: about 236).
* `code_variance(z)`: mean over dimensions of the per-dimension batch variance. Isotropic
  unit codes have 1/D.
* `cycle_error(z, e)`: mean 1 - cos(z, e), 0 for a perfect latent cycle, about 1 for none.
* `cycle_kept(z, e)`: the fraction of codes that come back within cos 0.9 (prior codes that
  decode to an image the encoder can place).
* `prior_distance(real_z, prior_z)`: MMD^2 between real codes and prior codes, with the
  loss's kernel (pioneer.model.loss.mmd: inverse multiquadratics C / (C + |x - y|^2),
  C = 0.2, 0.5, 1, 2, 5); 0 when real codes are distributed as the prior, up to sampling noise.
* `batch_signals(real_z, fake_z)`: the first two for one training batch as one tensor, without a
  host sync, in the order of `SIGNAL_KEYS` (what the training loop logs per record).

The effective rank is scale-free: codes that vary very little, but in many directions, still
have a high rank. `code_variance` tells that case apart.
"""

from __future__ import annotations

import torch

from pioneer.model.loss import mmd  # the kernel of the loss's prior term

SIGNAL_KEYS = ("rank_real", "rank_fake", "var_real", "var_fake")


def effective_rank_tensor(z: torch.Tensor) -> torch.Tensor:
    """Effective rank of the centred code matrix z: (N, D) as a 0-d float32 tensor on z's device.
    0 for fewer than 2 codes or identical codes; NaN when z holds non-finite values (SVD would fail)."""
    z = z.detach().float()
    if z.shape[0] < 2:
        return torch.zeros((), device=z.device)
    finite = torch.isfinite(z).all()
    z = torch.where(finite, z, torch.zeros_like(z))              # no data-dependent branch: no host sync
    s = torch.linalg.svdvals(z - z.mean(dim=0, keepdim=True))    # (min(N, D),)
    total = s.sum()
    p = s / total.clamp_min(torch.finfo(s.dtype).tiny)
    entropy = -torch.special.xlogy(p, p).sum()                   # 0 log 0 = 0
    # Identical codes leave only rounding noise in s: no direction at all.
    rank = torch.where(total > 1e-6 * z.abs().max().clamp_min(1e-30) * z.shape[0], entropy.exp(),
                       torch.zeros_like(entropy))
    return torch.where(finite, rank, torch.full_like(rank, float("nan")))


def effective_rank(z: torch.Tensor) -> float:
    """Effective rank of the centred code matrix z: (N, D). 0 for fewer than 2 codes."""
    return float(effective_rank_tensor(z))


def code_variance_tensor(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension batch variance of the codes z: (N, D) (biased), a 0-d tensor."""
    return z.detach().float().var(dim=0, unbiased=False).mean()


def code_variance(z: torch.Tensor) -> float:
    """Mean per-dimension batch variance of the codes z: (N, D) (biased)."""
    return float(code_variance_tensor(z))


def cycle_error(z: torch.Tensor, e: torch.Tensor) -> float:
    """Mean 1 - cos(z, e) between rows of z and e: (N, D)."""
    cos = torch.nn.functional.cosine_similarity(z.detach().float(), e.detach().float(), dim=1)
    return float((1 - cos).mean())


def cycle_kept(z: torch.Tensor, e: torch.Tensor, cos: float = 0.9) -> float:
    """Fraction of rows with cos(z, e) >= `cos`; z, e: (N, D)."""
    c = torch.nn.functional.cosine_similarity(z.detach().float(), e.detach().float(), dim=1)
    return float((c >= cos).float().mean())


def prior_distance(real_z: torch.Tensor, prior_z: torch.Tensor) -> float:
    """MMD^2 (biased estimate) between real codes (N, D) and prior codes (M, D)."""
    return float(mmd(real_z.detach(), prior_z.detach()))


def batch_signals(real_z: torch.Tensor, fake_z: torch.Tensor) -> torch.Tensor:
    """(4,) tensor: rank_real, rank_fake, var_real, var_fake (SIGNAL_KEYS) of one batch's codes
    E(x) and E(G(z)), both (B, D). Stays on the device: the caller syncs once per record."""
    return torch.stack([effective_rank_tensor(real_z), effective_rank_tensor(fake_z),
                        code_variance_tensor(real_z), code_variance_tensor(fake_z)])
