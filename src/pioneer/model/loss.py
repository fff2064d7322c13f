"""PIONEER losses with the effective weights of the authors' code.

The paper writes (Eqs. 1, 2, 5):
    L_E = max(-M, KL(q(z|x)) - KL(q(z|G(z')))) + lambda_X * |x - G(E(x))|_1
    L_G = KL(q(z|G(z'))) + lambda_Z * (1 - z'^T E(G(z')))
The official code multiplies every KL term by 0.1 (`LossConfig.kl_weight`) and averages the
latent dot product over the 512 dimensions with a factor 100, i.e. an effective weight of
100/512 on (1 - cos) (`LossConfig.latent_weight`). Our margin is in the paper's units and is
applied to the raw KL gap, so 0.1 * max(-M, gap) equals the code's max(-0.1 M, 0.1 gap).
KL terms are always computed in float32 (`upcast`), also under bf16 autocast; float64 stays float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pioneer.config import LossConfig
from pioneer.model.layers import at_least_float32 as upcast
Gather = Callable[[torch.Tensor], torch.Tensor]
# images (B, 3, r, r) -> (images (B, 3, r, r), fresh (B,) bool): what encoder_loss accepts as
# `pool` (training/image_pool.py makes one).
PoolFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _identity(z: torch.Tensor) -> torch.Tensor:
    return z


def kl_divergence(z: torch.Tensor) -> torch.Tensor:
    """Batch estimate of KL(N(m, diag s2) || N(0, I)), averaged over dimensions.

    z: (B, D) codes. Per dimension j, with batch mean m_j and biased batch variance s2_j:
    KL_j = (s2_j + m_j^2) / 2 - log(s2_j) / 2 - 1/2. Unit-norm codes have s2 ~ 1/D, so the
    value has a floor well above 0 (about 2.6 for D = 512).
    """
    z = upcast(z)
    mean = z.mean(dim=0)                                    # (D,)
    var = z.var(dim=0, unbiased=False).clamp_min(1e-12)      # (D,), guards a collapsed batch
    return ((var + mean.square()) / 2 - var.log() / 2 - 0.5).mean()


def perturb(codes: torch.Tensor, noise: torch.Tensor, scale: float) -> torch.Tensor:
    """Unit codes (B, D) moved by scale * noise / sqrt(D) (noise ~ N(0, I), so the step has norm
    about `scale`) and put back on the sphere."""
    return F.normalize(codes + scale / math.sqrt(codes.shape[1]) * noise.to(codes.dtype), dim=1)


def mmd(a: torch.Tensor, b: torch.Tensor, scales: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)) -> torch.Tensor:
    """Squared maximum mean discrepancy between code batches a: (N, D) and b: (M, D) with a sum of
    inverse multiquadratic kernels C / (C + |x - y|^2) (as WAE-MMD uses); unit codes lie within
    distance 2 of each other, so the scales C cover that range. Biased estimate (diagonals kept)."""
    a, b = upcast(a), upcast(b)
    x = torch.cat([a, b])                                       # (N + M, D)
    d2 = torch.cdist(x, x).square()                             # (N + M, N + M)
    k = sum(c / (c + d2) for c in scales)
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@dataclass
class EncoderLoss:
    total: torch.Tensor
    kl_real: torch.Tensor       # KL of E(x), raw (before kl_weight)
    kl_fake: torch.Tensor       # KL of E(G(z)), raw
    recon_l1: torch.Tensor      # mean |G(E(x)) - x|
    cycle: torch.Tensor         # mean (1 - cos(z, E(G(z)))) on the fake term's prior codes (fresh fakes only)
    real_z: torch.Tensor        # (B, D) E(x), detached: diagnostics
    fake_z: torch.Tensor        # (B, D) E(G(z)), detached
    recon_z: torch.Tensor       # (B, D) the codes G reconstructed x from (E(x), perturbed with code_noise), detached
    # Each term's weighted share of `total`, with its graph; the adversarial part is split into
    # its two KLs, both 0 while the hinge clamps. What training/grad_shares.py differentiates.
    terms: dict[str, torch.Tensor]

    def logged(self) -> dict[str, torch.Tensor]:
        """The values the stats record averages (training/records.py), detached scalars."""
        return {"loss_E": self.total.detach().float(), "kl_real": self.kl_real, "kl_fake": self.kl_fake,
                "gap": self.kl_real - self.kl_fake, "recon_l1": self.recon_l1, "cycle": self.cycle}


@dataclass
class DecoderLoss:
    total: torch.Tensor
    kl_fake: torch.Tensor       # KL of E(G(z)), raw
    latent_cos: torch.Tensor    # mean (1 - cos(z, E(G(z))))
    recon_l1: torch.Tensor      # mean |G(E(x)) - x| when the step had a reconstruction term, else 0
    terms: dict[str, torch.Tensor]   # each weighted term of `total`, with its graph (they sum to it)

    def logged(self) -> dict[str, torch.Tensor]:
        """The values the stats record averages (training/records.py), detached scalars."""
        return {"loss_G": self.total.detach().float(), "latent_cos": self.latent_cos}


def encoder_loss(E: nn.Module, G: nn.Module, x: torch.Tensor, z_prior: torch.Tensor, level: int,
                 alpha: float, margin: float, recon_weight: float, cfg: LossConfig,
                 gather: Gather = _identity, pool: PoolFn | None = None,
                 noise: torch.Tensor | None = None) -> EncoderLoss:
    """Loss of the encoder step. x: (B, 3, r, r) real images (faded), z_prior: (B, D).

    Gradients reach E directly and through G; the caller updates only E's parameters.
    `gather` concatenates codes from all ranks so the KL batch statistics cover the global batch.
    pool: replaces some fakes G(z_prior) by older ones (training/image_pool.py) and says which are fresh;
    the cycle term uses only the fresh ones, a pooled image was decoded from another code.
    noise: (B, D) N(0, I) draws; with cfg.code_noise > 0 x is reconstructed from
    perturb(E(x), noise, cfg.code_noise), so E must spread codes further apart than the noise.
    """
    real_z = E(x, level, alpha)                               # (B, D)
    code = perturb(real_z, noise, cfg.code_noise) if noise is not None and cfg.code_noise > 0 else real_z
    recon = G(code, level, alpha)                             # (B, 3, r, r)
    recon_l1 = (upcast(recon) - upcast(x)).abs().mean()
    with torch.no_grad():
        fake = G(z_prior, level, alpha)
        fresh = torch.ones(len(fake), dtype=torch.bool, device=fake.device)   # (B,)
        if pool is not None:
            fake, fresh = pool(fake)
    fake_z = E(fake, level, alpha)
    kl_real = kl_divergence(gather(real_z))
    kl_fake = kl_divergence(gather(fake_z))
    gap = kl_real - kl_fake
    # The hinge bounds the gap from below: no reward for pushing it past -margin.
    adversarial = gap.clamp(min=-margin) if margin > 0 else gap
    # The running total adds each term where it is built: the graph, and so every gradient bit
    # for bit, is the one the loss has always had.
    terms = {"adversarial": cfg.kl_weight * adversarial, "recon": recon_weight * recon_l1}
    total = terms["adversarial"] + terms["recon"]
    # Mean over the global batch's fresh entries: a rank's share then does not depend on how
    # many of its own entries are fresh (one gather of (B, 2)).
    per_image = 1 - (upcast(z_prior) * upcast(fake_z)).sum(dim=1)                    # (B,)
    c, f = gather(torch.stack([per_image, fresh.to(per_image.dtype)], dim=1)).unbind(1)  # (world*B,) each
    cycle = (c * f).sum() / f.sum().clamp_min(1.0)
    if cfg.encoder_cycle_weight > 0:
        terms["cycle"] = cfg.encoder_cycle_weight * cycle
        total = total + terms["cycle"]
    if cfg.encoder_prior_weight > 0:
        terms["prior"] = cfg.encoder_prior_weight * mmd(gather(real_z), gather(z_prior))
        total = total + terms["prior"]
    # For the gradient shares the adversarial term is split into its two KLs (outside the
    # total's graph); the hinge passes neither any gradient while it clamps.
    open_ = (gap.detach() > -margin).to(gap.dtype) if margin > 0 else 1.0
    del terms["adversarial"]
    terms = {"kl_real": open_ * cfg.kl_weight * kl_real, "kl_fake": -open_ * cfg.kl_weight * kl_fake, **terms}
    return EncoderLoss(total, kl_real.detach(), kl_fake.detach(), recon_l1.detach(), cycle.detach(),
                       real_z.detach(), fake_z.detach(), code.detach(), terms)


def decoder_loss(E: nn.Module, G: nn.Module, z: torch.Tensor, level: int, alpha: float,
                 cfg: LossConfig, gather: Gather = _identity,
                 real: tuple[torch.Tensor, torch.Tensor] | None = None) -> DecoderLoss:
    """Loss of one decoder step; z: (B, D) fresh prior codes. The caller updates only G.

    real: (codes (B, D), images x (B, 3, r, r)), the encoder step's EncoderLoss.recon_z and batch, adds cfg.decoder_recon_weight * |G(E(x)) - x|
    (codes held fixed) when that weight is > 0.
    """
    e = E(G(z, level, alpha), level, alpha)                   # (B, D)
    kl_fake = kl_divergence(gather(e))
    latent_cos = (1 - (upcast(z) * upcast(e)).sum(dim=1)).mean()  # both on the unit sphere
    terms = {"kl_fake": cfg.kl_weight * kl_fake, "latent": cfg.latent_weight * latent_cos}
    total = terms["kl_fake"] + terms["latent"]
    recon_l1 = torch.zeros((), device=z.device)
    if real is not None and cfg.decoder_recon_weight > 0:
        codes, x = real
        recon_l1 = (upcast(G(codes.detach(), level, alpha)) - upcast(x)).abs().mean()
        terms["recon"] = cfg.decoder_recon_weight * recon_l1
        total = total + terms["recon"]
    return DecoderLoss(total, kl_fake.detach(), latent_cos.detach(), recon_l1.detach(), terms)
