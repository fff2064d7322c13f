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

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from pioneer.config import ModelConfig
from pioneer.model.layers import LRELU_SLOPE, ConvPair, at_least_float32, conv_to_point, make_conv, rgb_conv, split_norm


class Decoder(nn.Module):
    """G: code on the unit sphere (B, D) -> image (B, 3, r, r) at level `level`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        weight_norm, pixel_norm = split_norm(cfg.decoder_norm)
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
            self.to_rgb[f"r{res}"] = rgb_conv(ch, 3, weight_norm == "eqlr")
            in_ch = ch

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        with _compiled_scope(self):
            return self._forward(z, level, alpha)

    def _forward(self, z: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
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
        with _compiled_scope(self):
            return self._forward(x, level, alpha)

    def _forward(self, x: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
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
        return F.normalize(at_least_float32(h), dim=1)            # (B, D) unit norm, float32 (or 64)


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
    without weight gradients). That limit is raised only while this network runs (see
    `_compiled_scope`), not for the whole process.
    """
    import torch._dynamo

    name = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    need = 4 * len(net.blocks) + 8
    net._dynamo_settings = {name: max(getattr(torch._dynamo.config, name), need)}
    for block in net.blocks.values():
        block.compile(mode=mode)


def _compiled_scope(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """The dynamo settings of a network whose blocks were compiled, for the length of a forward."""
    settings = net.__dict__.get("_dynamo_settings")
    if settings is None:
        return contextlib.nullcontext()
    import torch._dynamo

    return torch._dynamo.config.patch(settings)


def native_bf16_cpu() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX)."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((check and check()) or (amx and amx()))
