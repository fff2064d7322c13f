"""The short learning run of tests/test_training.py::test_reconstruction_error_falls and its
measures, shared with benchmarks/test_margins.py, which measures their spread over seeds (the
test's thresholds come from there)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from conftest import tiny_config
from pioneer.config import Rule, ScheduleConfig, TrainConfig, with_recipe
from pioneer.data import open_dataset
from pioneer.images import to_float
from pioneer.model.networks import Decoder, Encoder
from pioneer.run.stats import read_stats
from pioneer.training.loop import train


def learning_config(seed: int = 0) -> TrainConfig:
    """tiny_config on 300 synthetic faces, 2.5 kimg from 4 to 8 px at batch 16, small recipe."""
    sched = ScheduleConfig(rules=(Rule(0.0, 0, 2e-3, 0.0), Rule(0.2, 1, 2e-3, 0.0)), fade_kimg=0.2,
                           batch_sizes={4: 16, 8: 16, 16: 16}, total_kimg=2.5)
    cfg = dataclasses.replace(tiny_config(), schedule=sched, data="synthetic:300", grid_kimg=1.0, seed=seed)
    return with_recipe(cfg, "small")


def learning_measures(cfg: TrainConfig, run_dir: Path, cache_dir: Path) -> dict[str, float]:
    """Train `cfg` into run_dir; held-out L1 at init (`before`), after training (`after`,
    G_ema(E(x))) and of the mean training face (`mean_face`), and the mean training L1 of the
    first and last quarter of the last phase's stable records (`first`, `last`; `records`)."""
    res = train(cfg, run_dir, cache_dir=cache_dir, progress=False)
    split = open_dataset(cfg.data, 8, cache_dir, progress=False)
    x = to_float(split.pyramid.images(split.test, 8))                 # (N, 3, 8, 8)
    torch.manual_seed(cfg.seed)
    E0, G0 = Encoder(cfg.model).eval(), Decoder(cfg.model).eval()
    with torch.no_grad():
        before = (G0(E0(x, 1), 1) - x).abs().mean().item()
        res.encoder.eval()
        after = (res.decoder_ema(res.encoder(x, 1), 1) - x).abs().mean().item()
    train_x = to_float(split.pyramid.images(split.train, 8))
    mean_face = (x - train_x.mean(0)).abs().mean().item()   # the best constant image, a blurry baseline
    stable = [r["recon_l1"] for r in read_stats(run_dir)
              if "recon_l1" in r and r["resolution"] == 8 and r["alpha"] >= 1.0]
    q = max(1, len(stable) // 4)
    return dict(before=before, after=after, mean_face=mean_face, records=len(stable),
                first=sum(stable[:q]) / q, last=sum(stable[-q:]) / q)
