"""One training step's gradients on a fixed batch, for comparing one process with several:
tests/test_training.py::test_two_process_gloo_matches_single_process and
benchmarks/gradient_agreement.py (which measures the tolerance that test uses)."""

from __future__ import annotations

from typing import Callable

import torch

from pioneer.config import TrainConfig
from pioneer.distributed import average_gradients
from pioneer.model.loss import decoder_loss, encoder_loss
from pioneer.model.networks import Decoder, Encoder


def global_batch(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """8 images (8, 3, 8, 8) in [-1, 1] and 8 prior codes (8, D), the same on every rank."""
    g = torch.Generator().manual_seed(5)
    return torch.rand(8, 3, 8, 8, generator=g) * 2 - 1, torch.nn.functional.normalize(
        torch.randn(8, cfg.model.latent_dim, generator=g), dim=1)


def step_gradients(x: torch.Tensor, z: torch.Tensor, cfg: TrainConfig, gather: Callable[[torch.Tensor], torch.Tensor],
                   dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Gradients of one encoder step plus one decoder step of fresh networks (seed 0) at 8 px
    halfway through the fade-in, averaged over ranks; float64 unless asked otherwise (see the
    two-process test for why)."""
    torch.manual_seed(0)
    E, G = Encoder(cfg.model).to(dtype), Decoder(cfg.model).to(dtype)
    x, z = x.to(dtype), z.to(dtype)
    encoder_loss(E, G, x, z, 1, 0.5, 0.0, 1.0, cfg.loss, gather).total.backward()
    decoder_loss(E, G, z, 1, 0.5, cfg.loss, gather).total.backward()
    average_gradients(list(E.parameters()) + list(G.parameters()))
    return {n: p.grad.clone() for n, p in list(E.named_parameters()) + list(G.named_parameters())
            if p.grad is not None}
