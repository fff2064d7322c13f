"""What training shows of itself at each grid: the held-out L1 of G_ema(E(x)), how far the
held-out codes are from the prior, and image grids of samples from fixed codes and of fixed
held-out images beside their reconstructions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pioneer.config import TrainConfig
from pioneer.data.batches import real_batch
from pioneer.images import interleave, make_grid, save_png
from pioneer.model.networks import sample_prior
from pioneer.run.files import RunFolder
from pioneer.run.oserrors import WriteGuard
from pioneer.run.stats import StatsWriter
from pioneer.model.diagnostics import cycle_kept, prior_distance
from pioneer.training.schedule import SchedulePoint
from pioneer.training.state import TrainingState


class Preview:
    """Fixed inputs, drawn once and never from the training generator: grid_size^2 prior codes
    for the samples grid, 256 more for the prior fit, and the first 256 held-out images."""

    def __init__(self, cfg: TrainConfig, test_indices: Any, device: torch.device,
                 warn: Callable[[str], None] = print) -> None:
        self.cfg, self.device = cfg, device
        self.grid_guard = WriteGuard(warn=warn, max_failures=1 << 30)
        self.n_grid = cfg.grid_size * cfg.grid_size
        self.grid_z = sample_prior(self.n_grid, cfg.model.latent_dim, torch.Generator().manual_seed(cfg.seed + 7))
        self.fit_z = sample_prior(256, cfg.model.latent_dim, torch.Generator().manual_seed(cfg.seed + 11))   # (256, D)
        self.heldout_idx = torch.as_tensor(test_indices[:256], dtype=torch.long)

    @torch.no_grad()
    def __call__(self, state: TrainingState, pyramid: Any, st: SchedulePoint, autocast: Any,
                 run: RunFolder | None = None, stats: StatsWriter | None = None) -> dict[str, float]:
        """The grid record's measures and, with `run`, the two grids (PNG, and TensorBoard
        through `stats`):
          heldout_l1  mean |G_ema(E(x)) - x| on the held-out images
          prior_fit   MMD^2 of their codes E(x) against the fixed prior codes (the metric of
                      the same name, pioneer.metrics.prior_fit)
          cycle_kept  the fraction of those prior codes z with cos(z, E(G_ema(z))) >= 0.9
        Networks run in eval mode, so spectral-norm vectors are not advanced: the training
        trajectory does not depend on when we look at it."""
        E, G_ema, cfg = state.E, state.G_ema, self.cfg
        E.eval()
        with autocast:
            x = real_batch(pyramid, self.heldout_idx, st.resolution, self.device, cfg.channels_last, st.alpha)
            real_z = E(x, st.phase, st.alpha)                                       # (256, D)
            rec = G_ema(real_z, st.phase, st.alpha).float()
            z = self.fit_z.to(self.device)
            back = E(G_ema(z, st.phase, st.alpha), st.phase, st.alpha)              # (256, D)
            measures = {"heldout_l1": (rec - x).abs().mean().item(), "prior_fit": prior_distance(real_z, z),
                        "cycle_kept": cycle_kept(z, back)}
            if run is not None:
                samples = G_ema(self.grid_z.to(self.device), st.phase, st.alpha)
                n_pairs = self.n_grid // 2  # input, reconstruction, input, ...
                grids = {kind: make_grid(images, cfg.grid_size)
                         for kind, images in (("samples", samples), ("reconstructions", interleave(x[:n_pairs], rec[:n_pairs])))}
                # Grids only show the run: a failed write warns and training goes on.
                if self.grid_guard.attempt(lambda: [save_png(run.grid(k, state.images_seen), g) for k, g in grids.items()],
                                           "writing the grids") and stats is not None:
                    for kind, grid in grids.items():
                        stats.add_image(kind, grid, state.images_seen)
        E.train()
        return measures
