"""Improved precision and recall of generated samples (Kynkaanniemi et al. 2019, "Improved
Precision and Recall Metric for Assessing Generative Models"), in the Inception features FID uses.

Each real feature vector gets a ball whose radius is the distance to its k-th nearest real
neighbour (k = 3, itself not counted); the balls together estimate the support of the real
distribution. Precision is the fraction of samples inside at least one real ball (samples look
like data); recall is the fraction of real images inside at least one ball drawn the same way
around the samples (the data is covered by samples). A set against itself scores 1 and 1;
samples far from the data score 0 precision.

  pr1k, pr10k   1k (10k) prior samples vs as many training images; headline: precision
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pioneer.metrics.context import MetricContext
from pioneer.metrics.registry import register
from pioneer.metrics.fid import inception_of, real_subset_cache, sample_features
from pioneer.metrics.inception import InceptionFeatures

NEIGHBOURS = 3           # the paper's k
_BLOCK = 1024            # rows of a distance block: 1024 x 10k floats is 40 MB


def _kth_neighbour_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """(N, D) -> (N,): distance of each row to its k-th nearest other row."""
    if len(feats) <= k:
        raise ValueError(f"precision / recall with k = {k} needs more than {k} images per set, got {len(feats)}")
    radii = []
    for block in feats.split(_BLOCK):
        d = torch.cdist(block, feats)                           # (b, N); the row itself is at 0
        radii.append(d.kthvalue(k + 1, dim=1).values)           # k + 1: skip the zero to itself
    return torch.cat(radii)


def _covered(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(Q,) bool: whether each query lies in at least one ball (centres (N, D), radii (N,))."""
    inside = []
    for block in queries.split(_BLOCK):
        inside.append((torch.cdist(block, centres) <= radii[None]).any(dim=1))   # (b,)
    return torch.cat(inside)


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                     k: int = NEIGHBOURS) -> tuple[float, float]:
    """Precision and recall of `fake` (M, D) against `real` (N, D) feature sets, float64."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D), got {tuple(r.shape)} and {tuple(f.shape)}")
    precision = _covered(f, r, _kth_neighbour_radii(r, k)).double().mean().item()
    recall = _covered(r, f, _kth_neighbour_radii(f, k)).double().mean().item()
    return precision, recall


def real_features(ctx: MetricContext, n: int, inception: InceptionFeatures) -> np.ndarray:
    """Inception features (n, 2048) of n training images (FID's subset), cached as .npy."""
    indices, path = real_subset_cache(ctx, "train", n, inception, "inception-features", ".npy")
    if path.is_file():
        return np.load(path)
    feats = inception.of_batches(ctx.real_images(indices), len(indices), "reals (train)", ctx.progress)
    feats = feats.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, feats)
    tmp.replace(path)   # a killed write never leaves a cache that looks valid
    return feats


def precision_recall_generated(ctx: MetricContext, default: int) -> dict[str, Any]:
    """Precision and recall of `default` (or ctx.num) prior samples vs as many training images."""
    data = ctx.require_data("precision / recall")
    inception = inception_of(ctx)
    n_gen = ctx.count(default)
    n_real = min(n_gen, len(data.train))
    precision, recall = precision_recall(real_features(ctx, n_real, inception), sample_features(ctx, n_gen, inception))
    return {"precision": precision, "recall": recall, "num_gen": n_gen, "num_real": n_real, "k": NEIGHBOURS}


def _pr_metric(name: str, n: int) -> None:
    @register(name, f"precision / recall of {n // 1000}k prior samples vs training images (Inception, k = 3)")
    def metric(ctx: MetricContext) -> dict[str, Any]:
        r = precision_recall_generated(ctx, n)
        return {name: r["precision"], **r, "network": "inception-2015-12-05"}


for _name, _n in (("pr1k", 1000), ("pr10k", 10_000)):
    _pr_metric(_name, _n)
