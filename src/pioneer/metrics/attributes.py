"""Attribute-edit benchmark on the built-in synthetic faces, whose attributes are known exactly.

1. An attribute classifier (a small CNN, multi-label) is trained on synthetic training images
   with their ground-truth labels, and cached in CACHE/attr-classifier/ per data set and resolution.
2. For each attribute, the vector is extracted as in the paper: mean code of `count` training
   images with the attribute minus the mean code of `count` without it.
3. It is applied (z' = normalize(E(x) + strength * v)) to held-out faces that lack the attribute.
   Reported: `gain` = share of edits the classifier sees gaining the attribute, and `kept` = share
   of the other attributes whose prediction is unchanged from the unedited reconstruction G(E(x)).
   (Some synthetic attributes exclude each other, e.g. the hair colours: `kept` is below 1 for
   those even for a perfect edit.)
4. `agreement`: share of (image, attribute) predictions equal on inputs and their reconstructions.

The core, `edit_benchmark`, takes plain callables (encode, decode, classify), so a perfect and a
random "model" can be scored in tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pioneer.metrics.context import MetricContext, MetricError
from pioneer.metrics.registry import register
from pioneer.inference.latent import edit as apply_edit
from pioneer.images import to_float
from pioneer.inference.latent import mean_difference

Fn = Callable[[torch.Tensor], torch.Tensor]


def edit_benchmark(encode: Fn, decode: Fn, classify: Fn, train_x: torch.Tensor, train_y: np.ndarray,
                   test_x: torch.Tensor, test_y: np.ndarray, names: Sequence[str], count: int = 64,
                   strength: float = 1.5, max_edits: int = 64) -> dict[str, Any]:
    """Score attribute edits. classify(images) -> (N, K) bool predictions; *_y (N, K) bool labels."""
    train_y, test_y = np.asarray(train_y, bool), np.asarray(test_y, bool)
    z_train = encode(train_x)                                      # (N, D)
    z_test = encode(test_x)
    rec_pred = classify(decode(z_test)).cpu().numpy().astype(bool)  # predictions on G(E(x))
    in_pred = classify(test_x).cpu().numpy().astype(bool)
    per: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        has, lacks = np.flatnonzero(train_y[:, k])[:count], np.flatnonzero(~train_y[:, k])[:count]
        targets = np.flatnonzero(~test_y[:, k])[:max_edits]
        if len(has) == 0 or len(lacks) == 0 or len(targets) == 0:
            continue
        v = mean_difference(z_train[has], z_train[lacks])          # (D,)
        pred = classify(decode(apply_edit(z_test[targets], [v], [strength]))).cpu().numpy().astype(bool)
        others = [j for j in range(len(names)) if j != k]
        per[name] = {"gain": float(pred[:, k].mean()),
                     "kept": float((pred[:, others] == rec_pred[targets][:, others]).mean()),
                     "edits": int(len(targets)), "vector_norm": float(v.norm())}
    if not per:
        raise MetricError("no attribute had images with and without it: use more images")
    return {"attr_edit_gain": float(np.mean([p["gain"] for p in per.values()])),
            "attr_edit_kept": float(np.mean([p["kept"] for p in per.values()])),
            "attr_agreement": float((in_pred == rec_pred).mean()),
            "per_attribute": per}


# ------------------------------------------------------------------------------------------------
# The attribute classifier


class AttributeNet(nn.Module):
    """Images (B, 3, r, r) in [-1, 1] -> logits (B, K); works at any r >= 8 (resized to 32)."""

    def __init__(self, num_attributes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),     # 16
            nn.Conv2d(32, 64, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),    # 8
            nn.Conv2d(64, 96, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),    # 4
            nn.Flatten(), nn.Linear(96 * 16, 128), nn.LeakyReLU(0.2), nn.Linear(128, num_attributes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=x.shape[-1] > 32)
        return self.body(x)


def train_classifier(images: torch.Tensor, labels: np.ndarray, epochs: int = 8, seed: int = 0,
                     batch_size: int = 64) -> AttributeNet:
    """Train on float images in [-1, 1] (N, 3, r, r) with bool labels (N, K); horizontal flips are
    not used as augmentation (Turned_Left / Turned_Right would swap)."""
    torch.manual_seed(seed)
    net = AttributeNet(labels.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    y = torch.as_tensor(np.asarray(labels, np.float32))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=gen).split(batch_size):
            loss = F.binary_cross_entropy_with_logits(net(images[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False)


def _synthetic_labels(ctx: MetricContext, positions: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    from pioneer.data import open_source
    from pioneer.data.faces import ATTRIBUTES, SyntheticFaces

    source = open_source(ctx.data_spec) if ctx.data_spec else None
    if not isinstance(source, SyntheticFaces):
        raise MetricError(f"attr_edit needs the built-in synthetic faces (ground-truth labels), not {ctx.data_spec!r}")
    data = ctx.require_data("attr_edit")
    return source.labels(data.pyramid.source_indices[positions]).astype(bool), ATTRIBUTES


def _float_images(ctx: MetricContext, positions: np.ndarray) -> torch.Tensor:
    return torch.cat([to_float(x) for x in ctx.real_images(positions)])


def cached_classifier(ctx: MetricContext, n_train: int = 3000, epochs: int = 8) -> tuple[AttributeNet, float]:
    """The classifier for this data set and resolution (trained once, cached) and its held-out accuracy."""
    from safetensors.torch import load_file, save_file

    data = ctx.require_data("attr_edit")
    pos = data.train[-min(n_train, len(data.train)):]            # the last training images
    labels, names = _synthetic_labels(ctx, pos)
    key = hashlib.blake2b(f"{data.pyramid.fingerprint}|{ctx.resolution}|{n_train}|{epochs}".encode(),
                          digest_size=8).hexdigest()
    path = Path(ctx.cache_dir) / "attr-classifier" / f"{ctx.resolution}px-{key}.safetensors"
    net = AttributeNet(len(names))
    if path.is_file():
        net.load_state_dict(load_file(str(path)))
        net.eval().requires_grad_(False)
    else:
        net = train_classifier(_float_images(ctx, pos), labels, epochs=epochs, seed=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    test_pos = data.test[:256]
    test_labels, _ = _synthetic_labels(ctx, test_pos)
    with torch.no_grad():
        acc = float(((net(_float_images(ctx, test_pos)) > 0).numpy() == test_labels).mean())
    return net, acc


@register("attr_edit", "attribute-edit benchmark on the synthetic faces: gain, others kept, rec. agreement")
def attr_edit(ctx: MetricContext) -> dict[str, Any]:
    data = ctx.require_data("attr_edit")
    count = int(ctx.options.get("attr_count", 64))
    strength = float(ctx.options.get("attr_strength", 1.5))
    net, acc = cached_classifier(ctx)
    n_edit = ctx.count(64)
    train_pos = data.train[: 16 * count]                         # enough to find `count` with and without
    test_pos = data.test[: min(len(data.test), 4 * n_edit)]
    train_y, names = _synthetic_labels(ctx, train_pos)
    test_y, _ = _synthetic_labels(ctx, test_pos)
    m = ctx.model

    def classify(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net(c) > 0 for c in x.split(256)])

    r = edit_benchmark(lambda x: m.encode(x, batch_size=ctx.batch_size), lambda z: m.decode(z, batch_size=ctx.batch_size),
                       classify, _float_images(ctx, train_pos), train_y, _float_images(ctx, test_pos), test_y, names,
                       count=count, strength=strength, max_edits=n_edit)
    return {"attr_edit": r.pop("attr_edit_gain"), **r, "classifier_accuracy": acc, "strength": strength,
            "count": count}
