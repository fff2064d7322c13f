"""Perceptual path length on the sphere, as in the paper (after StyleGAN's full-path PPL).

For each pair: two prior codes z0, z1 and t ~ U(0, 1); the endpoints slerp(z0, z1, t) and
slerp(z0, z1, t + eps) (eps = 1e-4) are decoded; the LPIPS distance between the two images
(face-cropped to 128x128 for face data) divided by eps^2 is one sample. The metric is the mean
after dropping samples outside the 1st..99th percentile (StyleGAN's filtering), reported with
the unfiltered mean and the median. The same seed gives the same pairs and the same value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pioneer.metrics.context import MetricContext
from pioneer.metrics.registry import register
from pioneer.inference.latent import slerp
from pioneer.model.networks import sample_prior
from pioneer.metrics.perceptual import LPIPS, face_crop, perceptual_for, use_face_crop

EPSILON = 1e-4


def path_lengths(decode: Any, net: LPIPS, latent_dim: int, pairs: int, *, seed: int = 0, epsilon: float = EPSILON,
                 crop: bool = True, batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """(pairs,) samples of LPIPS(G(slerp(z0, z1, t)), G(slerp(z0, z1, t + eps))) / eps^2.
    `decode(codes (B, D)) -> images (B, 3, r, r)` in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    dev = next(net.parameters()).device
    out = []
    with torch.inference_mode(), tqdm(total=pairs, unit="pair", desc="ppl", disable=not progress, leave=False) as bar:
        for start in range(0, pairs, batch_size):
            b = min(batch_size, pairs - start)
            z0 = sample_prior(b, latent_dim, gen)                   # (b, D)
            z1 = sample_prior(b, latent_dim, gen)
            t = torch.rand(b, generator=gen)
            za, zb = slerp(z0, z1, t), slerp(z0, z1, t + epsilon)   # both on the sphere
            images = decode(torch.cat([za, zb]))                    # (2b, 3, r, r)
            if crop:
                images = face_crop(images)
            xa, xb = images.to(dev).chunk(2)
            out.append((net(xa, xb) / epsilon**2).double().cpu())
            bar.update(b)
    return torch.cat(out).numpy()


def summarize(samples: np.ndarray) -> dict[str, float]:
    lo, hi = np.percentile(samples, [1, 99], method="lower"), np.percentile(samples, [1, 99], method="higher")
    kept = samples[(samples >= lo[0]) & (samples <= hi[1])]
    return {"ppl": float(kept.mean()), "mean_unfiltered": float(samples.mean()), "median": float(np.median(samples))}


@register("ppl", "perceptual path length, slerp on the sphere, eps 1e-4 (face crop 128x128)", needs_data=False)
def ppl(ctx: MetricContext) -> dict[str, Any]:
    net = perceptual_for(ctx)
    crop = use_face_crop(ctx)
    pairs = ctx.count(int(ctx.options.get("ppl_pairs", 100_000)))
    samples = path_lengths(lambda z: ctx.model.decode(z, batch_size=2 * ctx.batch_size), net, ctx.model.latent_dim,
                           pairs, seed=ctx.seed, crop=crop, batch_size=ctx.batch_size, progress=ctx.progress)
    return {**summarize(samples), "pairs": pairs, "epsilon": EPSILON, "network": net.name, "face_crop": crop}
