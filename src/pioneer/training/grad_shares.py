"""Which loss term drives each network: every term's share of the network's gradient norm.

At grid time the training loop calls `gradient_shares` on its last real batch. For each term t
of a network's loss it takes g_t = d t / d theta over that network's own parameters
(torch.autograd.grad) and reports

    gnorm_{E|G}_{t} = |g_t|        gshare_{E|G}_{t} = |g_t| / sum of |g_s| over the network's terms

The terms are the ones model/loss.py builds (EncoderLoss.terms, DecoderLoss.terms); this module
only differentiates them. Today they are, for E (its loss in the encoder step):
    kl_real   kl_weight * KL(E(x))          } the adversarial part, after the hinge: both are 0
    kl_fake   -kl_weight * KL(E(G(z)))      } while the margin clamps the gap
    recon     lambda_X * |G(E(x)) - x|
    cycle     encoder_cycle_weight * (1 - cos(z, E(G(z))))      only when that weight is > 0
    prior     encoder_prior_weight * MMD^2(E(x), z)               only when that weight is > 0
and for G (its loss in a decoder step):
    kl_fake   kl_weight * KL(E(G(z)))
    latent    latent_weight * (1 - cos(z, E(G(z))))
    recon     decoder_recon_weight * |G(E(x)) - x|, codes held fixed   only when that weight is > 0

Nothing the training trajectory depends on changes: no optimiser step, no .grad written, the
networks run in eval mode (spectral norm does no power iteration, so its u/v buffers stay),
prior codes come from a private generator (the global RNG and the loop's generator are not
drawn from), and every parameter's requires_grad and each network's train flag are put back.
The KL statistics cover the local batch only (no collectives): the loop calls this on rank 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from pioneer.config import LossConfig
from pioneer.model.loss import decoder_loss, encoder_loss
from pioneer.model.networks import sample_prior


def _grad_norm(term: torch.Tensor, params: list[nn.Parameter]) -> float:
    """|d term / d params| (L2 over all parameters); 0 when the term does not reach them."""
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    squares = [g.float().square().sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def _report(net: str, terms: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, float]:
    norms = {name: _grad_norm(t, params) for name, t in terms.items()}
    total = sum(norms.values())
    out = {f"gnorm_{net}_{k}": v for k, v in norms.items()}
    out.update({f"gshare_{net}_{k}": (v / total if total > 0 else 0.0) for k, v in norms.items()})
    return out


@contextlib.contextmanager
def _diagnostic_mode(nets: Iterable[nn.Module]):
    """Eval mode and gradients on for every parameter; both put back afterwards."""
    nets = list(nets)
    modes = [n.training for n in nets]
    flags = [(p, p.requires_grad) for n in nets for p in n.parameters()]
    try:
        for n in nets:
            n.eval().requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for n, mode in zip(nets, modes):
            n.train(mode)
        for p, flag in flags:
            p.requires_grad_(flag)


def gradient_shares(E: nn.Module, G: nn.Module, x: torch.Tensor, level: int, alpha: float, margin: float,
                    recon_weight: float, cfg: LossConfig, seed: int,
                    autocast: contextlib.AbstractContextManager[Any] | None = None) -> dict[str, float]:
    """gnorm_* and gshare_* of every loss term of E and of G (see the module docstring).

    x: (B, 3, r, r) real images as the encoder step took them (faded); seed: the private
    generator of the fresh prior codes (the loop passes one derived from images seen);
    margin and recon_weight (lambda_X): the schedule's values at this point.
    """
    B, D = x.shape[0], E.cfg.latent_dim
    gen = torch.Generator().manual_seed(seed)
    z_enc = sample_prior(B, D, gen, x.device)                    # (B, D) the encoder step's fake term
    z_dec = sample_prior(B, D, gen, x.device)                    # (B, D) a decoder step's codes
    out: dict[str, float] = {}
    with _diagnostic_mode((E, G)):
        # The training step's own losses (no pool, no code noise, local batch statistics).
        with autocast or contextlib.nullcontext():
            le = encoder_loss(E, G, x, z_enc, level, alpha, margin, recon_weight, cfg)
        out.update(_report("E", le.terms, list(E.parameters())))
        with autocast or contextlib.nullcontext():
            lg = decoder_loss(E, G, z_dec, level, alpha, cfg, real=(le.real_z, x))
        out.update(_report("G", lg.terms, list(G.parameters())))
    return out
