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
"""

from __future__ import annotations

import torch


def effective_rank(z: torch.Tensor) -> float:
    """Effective rank of the centred code matrix z: (N, D). 0 for fewer than 2 codes."""
    z = z.detach().float()
    if z.shape[0] < 2:
        return 0.0
    s = torch.linalg.svdvals(z - z.mean(dim=0, keepdim=True))  # (min(N, D),)
    total = s.sum()
    if not total > 0:
        return 0.0                                               # all codes equal: no direction at all
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def code_variance(z: torch.Tensor) -> float:
    """Mean per-dimension batch variance of the codes z: (N, D) (biased)."""
    return float(z.detach().float().var(dim=0, unbiased=False).mean())


def cycle_error(z: torch.Tensor, e: torch.Tensor) -> float:
    """Mean 1 - cos(z, e) between rows of z and e: (N, D)."""
    cos = torch.nn.functional.cosine_similarity(z.detach().float(), e.detach().float(), dim=1)
    return float((1 - cos).mean())
