"""LPIPS distances, the paper's face crop, and the `lpips_rec` metric.

Two networks, both AlexNet-based LPIPS (5 feature maps, unit-normalised per channel, squared
differences weighted by learned 1x1 heads, spatially averaged, summed):

  lpips-alex-v0.1          standard LPIPS (Zhang et al. 2018), what the paper used. Heads ship in
                           the `lpips` package; the ImageNet AlexNet backbone is torchvision's
                           download (`alexnet-owt-7be5be79.pth` in torch's hub cache), so it runs
                           only where that file was downloaded before (or with download=True).
  stlpips-alex-vST0.0      shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022): the full weights
                           (backbone + heads) ship in the `stlpips-pytorch` package, so it runs
                           offline and in CI. Its values are on a similar scale but are NOT the
                           paper's numbers.

`kind="auto"` picks standard LPIPS when its backbone is available locally, else ST-LPIPS. Every
result names the network it used. Neither package is imported: stlpips-pytorch imports IPython
and torchsummary at import time, so its weight file is loaded into the module defined here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from pioneer.errors import PioneerError
from pioneer.images import to_float
from pioneer.metrics.context import MetricContext, MetricError
from pioneer.metrics.registry import register

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"          # torchvision's IMAGENET1K_V1 AlexNet
ALEX_CHANNELS = (64, 192, 384, 256, 256)
NAMES = {"lpips": "lpips-alex-v0.1", "stlpips": "stlpips-alex-vST0.0"}


class PerceptualUnavailable(PioneerError, RuntimeError):
    """The weights of the requested perceptual network are not installed."""


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location).joinpath(*parts)
        if path.is_file():
            return path
    return None


def _alexnet_backbone_file() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    return path if path.is_file() else None


class BlurDown(nn.Module):
    """Reflect-pad by 2 and blur with [1 2 1]^2 / 16 at stride 2 (ST-LPIPS' `Downsample`, pad_more)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = a[:, None] * a[None, :]
        self.register_buffer("filt", (filt / filt.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _alex_slices(shift_tolerant: bool) -> nn.ModuleList:
    """The 5 AlexNet slices with the module indices of the released weight files."""
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    if shift_tolerant:     # conv1 at stride 1, blur-downsampling after each pooling
        layers = [nn.Conv2d(3, 64, 11, 1, 2), BlurDown(64), relu(),
                  nn.MaxPool2d(3, 1), BlurDown(64), nn.Conv2d(64, 192, 5, padding=2), relu(),
                  nn.MaxPool2d(3, 1), BlurDown(192), nn.Conv2d(192, 384, 3, padding=1), relu(),
                  nn.Conv2d(384, 256, 3, padding=1), relu(),
                  nn.Conv2d(256, 256, 3, padding=1), relu()]
        bounds = (0, 3, 7, 11, 13, 15)
    else:                  # torchvision alexnet().features[:12]
        layers = [nn.Conv2d(3, 64, 11, 4, 2), relu(),
                  nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), relu(),
                  nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), relu(),
                  nn.Conv2d(384, 256, 3, padding=1), relu(),
                  nn.Conv2d(256, 256, 3, padding=1), relu()]
        bounds = (0, 2, 5, 8, 10, 12)
    slices = nn.ModuleList()
    for lo, hi in zip(bounds, bounds[1:]):
        s = nn.Sequential()
        for i in range(lo, hi):
            s.add_module(str(i), layers[i])
        slices.append(s)
    return slices


class LPIPS(nn.Module):
    """LPIPS distance between float images in [-1, 1]: forward(a, b) -> (B,)."""

    def __init__(self, shift_tolerant: bool) -> None:
        super().__init__()
        self.name = NAMES["stlpips" if shift_tolerant else "lpips"]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        self.slices = _alex_slices(shift_tolerant)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in ALEX_CHANNELS)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.shift) / self.scale
        out = []
        for s in self.slices:
            h = s(h)
            out.append(h)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb, lin in zip(self.features(a), self.features(b), self.lins):
            fa = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((fa - fb).square()).mean(dim=(1, 2, 3))
        return total

    def load_released(self, backbone: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]) -> "LPIPS":
        """Load weights keyed as the released files: backbone `net.sliceK.I.*` (ST-LPIPS) or
        torchvision `features.I.*`; heads `linK.model.1.weight`; scaling buffers ignored (same)."""
        state: dict[str, torch.Tensor] = {"shift": self.shift, "scale": self.scale}
        index = {name.split(".")[0]: k for k, s in enumerate(self.slices) for name, _ in s.named_children()}
        for key, v in backbone.items():
            parts = key.split(".")
            if parts[0] == "net":                      # net.slice1.0.weight
                state[f"slices.{int(parts[1][5:]) - 1}.{'.'.join(parts[2:])}"] = v
            elif parts[0] == "features" and parts[1] in index:   # features.0.weight
                state[f"slices.{index[parts[1]]}.{'.'.join(parts[1:])}"] = v
        for k in range(len(ALEX_CHANNELS)):
            state[f"lins.{k}.weight"] = heads[f"lin{k}.model.1.weight"]
        self.load_state_dict(state)
        return self.eval().requires_grad_(False)


def load_lpips(kind: str = "auto", device: torch.device | str = "cpu", download: bool = False) -> LPIPS:
    """`kind`: "auto", "lpips" (standard, needs the AlexNet backbone) or "stlpips" (offline)."""
    if kind not in ("auto", "lpips", "stlpips"):
        raise MetricError(f"perceptual network {kind!r} is unknown: use auto, lpips or stlpips")
    if kind in ("auto", "lpips"):
        heads = _package_file("lpips", "weights", "v0.1", "alex.pth")
        backbone = _alexnet_backbone_file()
        if heads is not None and (backbone is not None or download):
            if backbone is not None:
                sd = torch.load(backbone, map_location="cpu", weights_only=True)
            else:                                     # online users: torchvision downloads it
                from torchvision.models import AlexNet_Weights
                sd = AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
            net = LPIPS(shift_tolerant=False).load_released(sd, torch.load(heads, map_location="cpu", weights_only=True))
            return net.to(device)
        if kind == "lpips":
            missing = "the lpips package (pip install lpips)" if heads is None else \
                f"torchvision's AlexNet weights ({ALEXNET_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'})"
            raise PerceptualUnavailable(f"standard LPIPS needs {missing}; online, allow a download (--download), "
                                        "offline use --perceptual stlpips")
    path = _package_file("stlpips_pytorch", "weights", "vST0.0", "alex_shift_tolerant.pth")
    if path is None:
        raise PerceptualUnavailable("no perceptual network is installed: pip install stlpips-pytorch "
                                    "(its weights run offline) or lpips plus torchvision's AlexNet weights")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return LPIPS(shift_tolerant=True).load_released(sd, sd).to(device)


def face_crop(x: torch.Tensor, size: int = 128) -> torch.Tensor:
    """The paper's face area: rows 3/8..7/8 and columns 2/8..6/8, resized to size x size.
    (B, 3, H, W) float -> (B, 3, size, size)."""
    h, w = x.shape[-2:]
    crop = x[..., 3 * h // 8: 7 * h // 8, 2 * w // 8: 6 * w // 8]
    if crop.shape[-2:] == (size, size):
        return crop
    mode = "area" if crop.shape[-1] > size else "bilinear"
    return F.interpolate(crop, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def perceptual_for(ctx: MetricContext) -> LPIPS:
    return load_lpips(ctx.options.get("perceptual", "auto"), ctx.device, bool(ctx.options.get("download", False)))


def use_face_crop(ctx: MetricContext) -> bool:
    """The face crop is on unless options["face_crop"] is False (LSUN: full images)."""
    return bool(ctx.options.get("face_crop", True))


@register("lpips_rec", "LPIPS between test images and their reconstructions (face crop 128x128)")
def lpips_rec(ctx: MetricContext) -> dict[str, Any]:
    from pioneer.metrics.fid import subset

    data = ctx.require_data("lpips_rec")
    net = perceptual_for(ctx)
    crop = use_face_crop(ctx)
    n = ctx.count(10_000, len(data.test))
    indices = subset(data.test, n, ctx.seed)
    dists = []
    with torch.inference_mode(), tqdm(total=n, unit="img", desc="lpips_rec", disable=not ctx.progress, leave=False) as bar:
        for x in ctx.real_images(indices):
            real = to_float(x)
            rec = ctx.model.reconstruct(x, batch_size=ctx.batch_size)
            if crop:
                real, rec = face_crop(real), face_crop(rec)
            dists.append(net(real.to(ctx.device), rec.to(ctx.device)).cpu())
            bar.update(len(x))
    d = torch.cat(dists).double().numpy()
    return {"lpips_rec": float(d.mean()), "std": float(d.std()), "num": n, "network": net.name,
            "face_crop": crop}


def distances(net: LPIPS, a: torch.Tensor, b: torch.Tensor, crop: bool, batch_size: int = 32) -> np.ndarray:
    """LPIPS between float image batches in [-1, 1] (optionally face-cropped): (N,) float64."""
    out = []
    with torch.inference_mode():
        dev = next(net.parameters()).device
        for xa, xb in zip(a.split(batch_size), b.split(batch_size)):
            if crop:
                xa, xb = face_crop(xa), face_crop(xb)
            out.append(net(xa.to(dev), xb.to(dev)).double().cpu())
    return torch.cat(out).numpy() if out else np.empty(0)
