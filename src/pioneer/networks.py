"""Progressive encoder and decoder, built per resolution from the channel table.

Both networks are built up to `ModelConfig.max_resolution` once; the level being trained and
the fade-in `alpha` are arguments of forward(), not module state. Blocks are named by
resolution (`blocks.b64`, `to_rgb.r64`) so state dicts read like the architecture.

Normalisation variants (the paper's ablation axis), applied to the decoder's 3x3/4x4 convs:
spectral norm ("sn", Balanced PIONEER), PixelNorm ("pn"), equalised learning rate ("eqlr"),
both ("eqlr+pn", baseline PIONEER) or none. The encoder always uses spectral norm. The 1x1
to_rgb / from_rgb convs are never spectral-normalised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .config import ModelConfig

LRELU_SLOPE = 0.2


class EqualizedConv2d(nn.Module):
    """Conv whose N(0, 1) weights are scaled by He's constant at run time (PGGAN's equalised LR)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = math.sqrt(2.0 / (in_ch * kernel * kernel))
        self.padding = padding

    @property
    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit RMS over channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def make_conv(in_ch: int, out_ch: int, kernel: int, padding: int, weight_norm: str) -> nn.Module:
    """A conv with the given weight normalisation: "sn", "eqlr" or "none"."""
    if weight_norm == "eqlr":
        return EqualizedConv2d(in_ch, out_ch, kernel, padding)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding)
    nn.init.zeros_(conv.bias)
    if weight_norm == "sn":
        # One power iteration per training forward; u and v live in the state dict.
        return spectral_norm(conv)
    if weight_norm == "none":
        return conv
    raise ValueError(f"unknown weight normalisation {weight_norm!r}")


def conv_weight(conv: nn.Module) -> torch.Tensor:
    """The weight a conv applies: after spectral normalisation or the equalised-LR scale."""
    return conv.effective_weight if isinstance(conv, EqualizedConv2d) else conv.weight


def conv_from_point(conv: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """A k x k conv with padding k-1 applied to a 1x1 input, computed as one matrix product.

    z: (B, C) -> (B, O, k, k). Only one kernel tap meets the single non-zero input pixel at
    each output position, so the direct conv spends k*k times the necessary FLOPs (16x for
    the decoder's first 4x4 conv). out[b, o, i, j] = sum_c z[b, c] W[o, c, k-1-i, k-1-j] + bias.
    """
    w = conv_weight(conv)                                              # (O, C, k, k)
    o, c, k, _ = w.shape
    m = w.permute(0, 2, 3, 1).reshape(o * k * k, c)                    # rows ordered (o, k-1-i, k-1-j)
    out = F.linear(z, m).view(-1, o, k, k).flip(2, 3)                  # flip the (smaller) output, not W
    return out + conv.bias.view(1, o, 1, 1)


def conv_to_point(conv: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """A k x k conv without padding applied to a k x k input: one matrix product.

    h: (B, C, k, k) -> (B, O).
    """
    w = conv_weight(conv)                                              # (O, C, k, k)
    return F.linear(h.flatten(1), w.flatten(1), conv.bias)


def _split_norm(decoder_norm: str) -> tuple[str, bool]:
    """Decoder norm name -> (weight normalisation, PixelNorm on?)."""
    return {
        "sn": ("sn", False),
        "pn": ("none", True),
        "eqlr": ("eqlr", False),
        "eqlr+pn": ("eqlr", True),
        "none": ("none", False),
    }[decoder_norm]


class ConvPair(nn.Module):
    """conv -> LReLU [-> PixelNorm] -> conv -> LReLU [-> PixelNorm], the body of every block."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, weight_norm: str, pixel_norm: bool,
                 first_kernel: int = 3, first_padding: int = 1) -> None:
        super().__init__()
        self.conv1 = make_conv(in_ch, mid_ch, first_kernel, first_padding, weight_norm)
        self.conv2 = make_conv(mid_ch, out_ch, 3, 1, weight_norm)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A 2-D input is a code (B, C): the first conv sees a single pixel (decoder level 0).
        x = conv_from_point(self.conv1, x) if x.dim() == 2 else self.conv1(x)
        x = self.norm(F.leaky_relu(x, LRELU_SLOPE))
        return self.norm(F.leaky_relu(self.conv2(x), LRELU_SLOPE))


def _rgb_conv(in_ch: int, out_ch: int, equalized: bool) -> nn.Module:
    # 1x1 conv with bias, no activation; equalised LR when the decoder uses it, never SN.
    return EqualizedConv2d(in_ch, out_ch, 1, 0) if equalized else nn.Conv2d(in_ch, out_ch, 1)


class Decoder(nn.Module):
    """G: code on the unit sphere (B, D) -> image (B, 3, r, r) at level `level`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        weight_norm, pixel_norm = _split_norm(cfg.decoder_norm)
        self.blocks = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict()
        in_ch = cfg.latent_dim
        for level in range(cfg.num_levels):
            res = cfg.resolution(level)
            ch = cfg.channels(res)
            if level == 0:  # (B, D, 1, 1) -> 4x4 through a 4x4 conv with padding 3
                block = ConvPair(in_ch, ch, ch, weight_norm, pixel_norm, first_kernel=4, first_padding=3)
            else:
                block = ConvPair(in_ch, ch, ch, weight_norm, pixel_norm)
            self.blocks[f"b{res}"] = block
            self.to_rgb[f"r{res}"] = _rgb_conv(ch, 3, weight_norm == "eqlr")
            in_ch = ch

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        self._check_level(level)
        h = z * self.cfg.code_gain if self.cfg.code_gain != 1.0 else z  # (B, D): b4 reads it as a 1x1 image
        skip = None
        for i in range(level + 1):
            res = self.cfg.resolution(i)
            if i > 0:
                if i == level and alpha < 1.0:
                    # to_rgb commutes with nearest upsampling: apply it at the lower resolution.
                    skip = F.interpolate(self.to_rgb[f"r{res // 2}"](h), scale_factor=2.0, mode="nearest")
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, C, res, res)
            h = self.blocks[f"b{res}"](h)
        out = self.to_rgb[f"r{self.cfg.resolution(level)}"](h)     # (B, 3, r, r)
        if skip is not None:
            out = torch.lerp(skip, out, alpha)
        return out

    def _check_level(self, level: int) -> None:
        if not 0 <= level < self.cfg.num_levels:
            raise ValueError(f"level {level} is outside 0..{self.cfg.num_levels - 1}")


class Encoder(nn.Module):
    """E: image (B, 3, r, r) at level `level` -> code on the unit sphere (B, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        for level in range(cfg.num_levels):
            res = cfg.resolution(level)
            ch = cfg.channels(res)
            self.from_rgb[f"r{res}"] = nn.Conv2d(3, ch, 1)
            if level > 0:  # not an exact mirror of G: the first conv already widens
                out = cfg.channels(res // 2)
                self.blocks[f"b{res}"] = ConvPair(ch, out, out, "sn", False)
        ch4 = cfg.channels(4)
        self.final_conv = make_conv(ch4, ch4, 3, 1, "sn")
        self.to_code = make_conv(ch4, cfg.latent_dim, 4, 0, "sn")

    def forward(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        if not 0 <= level < self.cfg.num_levels:
            raise ValueError(f"level {level} is outside 0..{self.cfg.num_levels - 1}")
        res = self.cfg.resolution(level)
        if x.shape[-1] != res or x.shape[-2] != res:
            raise ValueError(f"encoder level {level} expects {res}x{res} images, got {tuple(x.shape[-2:])}")
        h = self.from_rgb[f"r{res}"](x)                          # (B, C, r, r)
        for i in range(level, 0, -1):
            r = self.cfg.resolution(i)
            h = F.avg_pool2d(self.blocks[f"b{r}"](h), 2)           # (B, C', r/2, r/2)
            if i == level and alpha < 1.0:
                skip = self.from_rgb[f"r{r // 2}"](F.avg_pool2d(x, 2))
                h = torch.lerp(skip, h, alpha)
        h = F.leaky_relu(self.final_conv(h), LRELU_SLOPE)         # (B, C, 4, 4)
        h = conv_to_point(self.to_code, h)                        # (B, D)
        if self.cfg.encoder_last_activation:
            h = F.leaky_relu(h, LRELU_SLOPE)
        return F.normalize(h.float(), dim=1)                      # (B, D) unit norm, float32


def sample_prior(n: int, dim: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """z ~ N(0, I) projected onto the unit sphere: (n, dim)."""
    z = torch.randn(n, dim, generator=generator)
    return F.normalize(z, dim=1).to(device)


def compile_blocks(net: nn.Module, mode: str | None = None) -> None:
    """torch.compile every conv block of an Encoder or Decoder in place.

    Blocks, not whole networks: level and alpha steer Python control flow in forward(), and a
    whole-network graph would recompile for every alpha of a fade-in. The blocks share one
    forward(), so dynamo's per-function recompile limit must cover every block twice (with and
    without weight gradients).
    """
    import torch._dynamo

    need = 4 * len(net.blocks) + 8
    name = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), need))
    for block in net.blocks.values():
        block.compile(mode=mode)


def native_bf16_cpu() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX)."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check and check()) or (amx and amx()))
