"""Everything that changes while a run trains, in one object, and the one place that says what a
checkpoint holds: `state_dict()` is what checkpoints write, `load_state_dict()` is how resume
and rollback put a run back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pioneer import distributed as dist
from pioneer.config import RESOLUTIONS, ModelConfig, TrainConfig
from pioneer.data.batches import IndexStream
from pioneer.model.networks import Decoder, Encoder
from pioneer.run.checkpoint import CheckpointError
from pioneer.training.image_pool import ImagePool, pool_size
from pioneer.training.schedule import state_at
from pioneer.training.step import build_networks, make_optimizer


@dataclass
class TrainingState:
    """The networks, the EMA decoder, both optimisers, the image pool, the random draws of the
    batches (`gen` for flips and codes, `stream` for the image order) and the counters."""

    cfg: TrainConfig
    E: Encoder
    G: Decoder
    G_ema: Decoder
    opt_E: torch.optim.Adam
    opt_G: torch.optim.Adam
    pool: ImagePool | None
    gen: torch.Generator
    stream: IndexStream
    images_seen: int = 0
    iteration: int = 0

    @classmethod
    def create(cls, cfg: TrainConfig, train_indices: Any, device: torch.device) -> "TrainingState":
        """A new run: networks initialised from cfg.seed (the global RNG is seeded, see
        build_networks), G_ema a copy of G, Adam at the first rule's lr, an empty pool."""
        E, G = build_networks(cfg, device, cfg.seed)
        G_ema = Decoder(cfg.model).to(device).eval().requires_grad_(False)
        G_ema.load_state_dict(G.state_dict())
        if cfg.channels_last:
            G_ema = G_ema.to(memory_format=torch.channels_last)
        lr = cfg.schedule.rules[0].lr
        pool = ImagePool(pool_size(cfg.image_pool, RESOLUTIONS[0])) if cfg.image_pool else None
        return cls(cfg, E, G, G_ema, make_optimizer(E, cfg, lr), make_optimizer(G, cfg, lr), pool,
                   gen=torch.Generator().manual_seed(cfg.seed),
                   stream=IndexStream(torch.as_tensor(train_indices, dtype=torch.long), cfg.seed))

    def state_dict(self) -> dict[str, Any]:
        """What a training-state checkpoint holds (tensors, numbers, strings, lists and dicts only)."""
        return {
            "config": self.cfg.to_dict(), "images_seen": self.images_seen, "iteration": self.iteration,
            "encoder": self.E.state_dict(), "decoder": self.G.state_dict(), "decoder_ema": self.G_ema.state_dict(),
            "opt_encoder": self.opt_E.state_dict(), "opt_decoder": self.opt_G.state_dict(),
            "generator": self.gen.get_state(), "stream": self.stream.state_dict(), "torch_rng": torch.get_rng_state(),
            "world_size": dist.world_size(), **({"image_pool": self.pool.state_dict()} if self.pool is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the training state") -> None:
        """Put the run back to `state` (resume and rollback); CheckpointError naming `source`
        when it was written for other networks. Sets the global RNG to the saved one."""
        if ModelConfig(**state["config"]["model"]) != self.cfg.model:  # fields added since fill in their defaults
            raise CheckpointError(f"{source} was written for another model configuration than this run's")
        try:
            self.E.load_state_dict(state["encoder"])
            self.G.load_state_dict(state["decoder"])
            self.G_ema.load_state_dict(state["decoder_ema"])
            self.opt_E.load_state_dict(state["opt_encoder"])
            self.opt_G.load_state_dict(state["opt_decoder"])
            if self.pool is not None and "image_pool" in state:
                self.pool.load_state_dict(state["image_pool"])
            elif self.pool is not None:  # an older state, or the pool newly switched on: start empty
                at = state_at(self.cfg.schedule, self.cfg.loss, int(state["images_seen"]))
                self.pool.reset(pool_size(self.cfg.image_pool, at.resolution))
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{source} does not fit the networks: {e}") from e
        self.gen.set_state(state["generator"])
        self.stream.load_state_dict(state["stream"])
        torch.set_rng_state(state["torch_rng"])
        self.images_seen, self.iteration = int(state["images_seen"]), int(state["iteration"])

    def broadcast(self) -> None:
        """Rank 0's networks (parameters and buffers, spectral-norm vectors included) on every rank."""
        for m in (self.E, self.G, self.G_ema):
            dist.broadcast_module(m)
