"""The layers both networks are built from: convs with spectral norm, equalised learning rate
or neither, PixelNorm, the conv pair of every block, and the exact matrix-product forms of the
decoder's first conv and the encoder's last."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LRELU_SLOPE = 0.2


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """bf16 / fp16 -> float32, where codes and losses are computed (they need its range and
    precision); float32 and float64 pass unchanged, so a float64 run computes the same maths
    (the two-process gradient test does, to compare without float32's rounding)."""
    return t if t.dtype == torch.float64 else t.float()


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


def split_norm(decoder_norm: str) -> tuple[str, bool]:
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


def rgb_conv(in_ch: int, out_ch: int, equalized: bool) -> nn.Module:
    # 1x1 conv with bias, no activation; equalised LR when the decoder uses it, never SN.
    return EqualizedConv2d(in_ch, out_ch, 1, 0) if equalized else nn.Conv2d(in_ch, out_ch, 1)
