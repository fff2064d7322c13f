"""Collapse check: does the model encode different faces to different codes, and do its codes
survive a trip through the decoder?

On the first `count` held-out images x (default 256) and as many prior codes z (seeded):
  heldout_l1    mean |G(E(x)) - x| (images in [-1, 1], reconstructions clamped as saved)
  mean_face_l1  mean |mean(x) - x|: what a collapsed model, which draws the mean face, scores
  cycle         mean 1 - cos(z, E(G(z))): 0 for a perfect latent cycle, about 1 for a dead one
  rank_real     effective rank of E(x) (see pioneer.model.diagnostics); rank_fake of E(G(z))
  var_real      mean per-dimension variance of E(x); var_fake of E(G(z)); isotropic: 1/D
  rank_random   effective rank of as many random unit codes, for reference
The headline `collapse` is rank_real / rank_random: 1 for codes as spread as random ones,
near 0 for a collapsed encoder.
"""

from __future__ import annotations

from typing import Any

import torch

from pioneer.metrics.context import MetricContext
from pioneer.metrics.registry import register
from pioneer.model.diagnostics import code_variance, cycle_error, effective_rank
from pioneer.images import to_float
from pioneer.model.networks import sample_prior


def heldout_and_prior_codes(ctx: MetricContext, metric: str, default: int
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first n held-out images x (n, 3, r, r) and their codes E(x) (n, D), and n seeded prior
    codes z with E(G(z)) (n, D each); n = `default` (or ctx.num), at most the test set."""
    data = ctx.require_data(metric)
    m = ctx.model
    n = ctx.count(default, len(data.test))
    x = torch.cat([to_float(b) for b in ctx.real_images(data.test[:n])])        # (n, 3, r, r)
    real_z = m.encode(x, batch_size=ctx.batch_size)                              # (n, D)
    z = m.sample_codes(n, seed=ctx.seed)                                         # (n, D)
    fake_z = m.encode(m.decode(z, batch_size=ctx.batch_size), batch_size=ctx.batch_size)
    return x, real_z, z, fake_z


@register("collapse", "collapse check: code rank vs random codes, latent cycle, L1 vs the mean face")
def collapse(ctx: MetricContext) -> dict[str, Any]:
    m = ctx.model
    x, real_z, z, fake_z = heldout_and_prior_codes(ctx, "collapse", 256)
    n = len(x)
    rec = m.decode(real_z, batch_size=ctx.batch_size)                            # (n, 3, r, r)
    random_z = sample_prior(n, m.latent_dim, torch.Generator().manual_seed(ctx.seed + 1))
    rank_real, rank_random = effective_rank(real_z), effective_rank(random_z)
    return {
        "collapse": rank_real / rank_random if rank_random > 0 else 0.0,
        "heldout_l1": float((rec - x).abs().mean()),
        "mean_face_l1": float((x - x.mean(dim=0, keepdim=True)).abs().mean()),
        "cycle": cycle_error(z, fake_z),
        "rank_real": rank_real,
        "rank_fake": effective_rank(fake_z),
        "rank_random": rank_random,
        "var_real": code_variance(real_z),
        "var_fake": code_variance(fake_z),
        "var_isotropic": 1.0 / m.latent_dim,
        "num": n,
    }
