"""How far real codes are from the prior the samples are drawn from.

The balanced game is meant to make E(x) distributed as the prior, so that samples,
interpolations and edits all stay on the data. On the first `count` held-out images
(default 1000, at most all) and as many seeded prior codes z:
  prior_fit     MMD^2 between E(x) and z: inverse multiquadratic kernels C / (C + |x - y|^2),
                C = 0.2, 0.5, 1, 2, 5 (the loss's prior term), biased estimate
  mmd_floor     the same between two independent prior samples of that size: what a perfect
                fit scores (the estimate's sampling noise)
  cycle_kept    fraction of prior codes with cos(z, E(G(z))) >= 0.9: the part of the sphere
                the decoder maps to images the encoder can place
  cycle         mean 1 - cos(z, E(G(z)))
"""

from __future__ import annotations

from typing import Any

import torch

from pioneer.metrics.context import MetricContext
from pioneer.metrics.registry import register
from pioneer.metrics.collapse import heldout_and_prior_codes
from pioneer.model.networks import sample_prior
from pioneer.model.diagnostics import cycle_error, cycle_kept, prior_distance


@register("prior_fit", "how far real codes are from the prior: MMD of E(x) vs prior codes, codes kept by the cycle")
def prior_fit(ctx: MetricContext) -> dict[str, Any]:
    _, real_z, z, fake_z = heldout_and_prior_codes(ctx, "prior_fit", 1000)       # (n, D) each
    n = len(z)
    other = sample_prior(n, ctx.model.latent_dim, torch.Generator().manual_seed(ctx.seed + 1))
    return {
        "prior_fit": prior_distance(real_z, z),
        "mmd_floor": prior_distance(other, z),
        "cycle_kept": cycle_kept(z, fake_z),
        "cycle": cycle_error(z, fake_z),
        "kernel": "IMQ C/(C+d^2), C=0.2,0.5,1,2,5",
        "num": n,
    }
