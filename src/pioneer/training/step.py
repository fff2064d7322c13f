"""One PIONEER iteration, and what it needs: the networks, their optimisers, autocast.

The loop (loop.py) and the speed benchmark (speed.py) both train through these functions, so
the benchmark times exactly what training runs.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch.nn.utils import parametrize

from pioneer import distributed as dist
from pioneer.config import LossConfig, TrainConfig
from pioneer.model.loss import DecoderLoss, EncoderLoss, decoder_loss, encoder_loss
from pioneer.model.networks import Decoder, Encoder, compile_blocks
from pioneer.training.image_pool import PoolFn
from pioneer.training.schedule import SchedulePoint


def build_networks(cfg: TrainConfig, device: torch.device, seed: int) -> tuple[Encoder, Decoder]:
    """Encoder and decoder initialised from `seed`, on `device`, in the config's memory format,
    their conv blocks compiled when the config asks for it. Seeds the global RNG (the layers
    draw their initial weights from it): call it inside torch.random.fork_rng() to keep the
    caller's."""
    torch.manual_seed(seed)
    E, G = Encoder(cfg.model).to(device), Decoder(cfg.model).to(device)
    if cfg.channels_last:
        E, G = E.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    if cfg.compile:
        compile_blocks(E), compile_blocks(G)
    return E, G


def autocast_for(cfg: TrainConfig, device: torch.device) -> torch.autocast:
    """bf16 autocast when the config asks for it, else a disabled one."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp)


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Adam:
    """Adam as in the paper; on GPU the fused kernel (one launch per step, not one per tensor)."""
    fused = next(net.parameters()).device.type == "cuda"
    return torch.optim.Adam(net.parameters(), lr=lr, betas=cfg.lr_betas, eps=cfg.adam_eps, fused=fused or None)


def set_lr(optimizers: tuple[torch.optim.Optimizer, ...], lr: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = lr


def training_iteration(E: torch.nn.Module, G: torch.nn.Module, opt_E: torch.optim.Optimizer,
                       opt_G: torch.optim.Optimizer, x: torch.Tensor, z: torch.Tensor, z_dec: list[torch.Tensor],
                       st: SchedulePoint, lcfg: LossConfig, autocast: Any, gather: Any = dist.gather_with_grad,
                       sn_cache: bool = False, pool: PoolFn | None = None,
                       noise: torch.Tensor | None = None) -> tuple[EncoderLoss, DecoderLoss]:
    """One PIONEER iteration: an encoder step on real images x (B, 3, r, r) with prior codes z
    (B, D) for its fake term, then one decoder step per code batch in z_dec. Gradients are
    averaged over ranks before each optimiser step.

    sn_cache: compute each spectral-normalised weight once per step instead of once per
    forward. The encoder step runs E and G twice each with unchanged weights, so this halves
    the power iterations and weight divisions there (one power iteration per step, not two).
    pool: passes the encoder step's fakes through the image pool (see encoder_loss).
    noise: (B, D) draws for LossConfig.code_noise (see encoder_loss); None when it is off.
    """
    cached = parametrize.cached if sn_cache else contextlib.nullcontext
    # Encoder step: E's parameters only; gradients flow through G.
    E.requires_grad_(True), G.requires_grad_(False)
    with autocast, cached():
        le = encoder_loss(E, G, x, z, st.phase, st.alpha, st.margin, st.recon_weight, lcfg, gather, pool, noise)
    opt_E.zero_grad(set_to_none=True)
    le.total.backward()
    dist.average_gradients(E.parameters())
    opt_E.step()

    # Decoder steps: G's parameters only; gradients flow through E.
    E.requires_grad_(False), G.requires_grad_(True)
    for i, zg in enumerate(z_dec):
        with autocast:
            # The first step also reconstructs the encoder step's real batch (decoder_recon_weight).
            lg = decoder_loss(E, G, zg, st.phase, st.alpha, lcfg, gather, real=(le.recon_z, x) if i == 0 else None)
        opt_G.zero_grad(set_to_none=True)
        lg.total.backward()
        dist.average_gradients(G.parameters())
        opt_G.step()
    return le, lg
